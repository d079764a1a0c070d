// Package tlog is Hindsight's verifiable log: an RFC 6962 Merkle tree over
// every event of the log, in position order, signed checkpoints of it, and
// inclusion and consistency proofs that anyone can check with standard tools
// (transparency-dev/merkle's proof package, Go's golang.org/x/mod/sumdb/note,
// or a few lines of any language with SHA-256 and Ed25519). It is the
// transparency-log design of Certificate Transparency, Trillian and Go's
// checksum database, applied to an event store.
//
// # Why a tree as well as hash chains
//
// Each stream's hash chain (eventstore) catches an event altered, removed in
// the middle of a stream or reordered within it. It cannot see a stream's or
// the log's tail removed, nor two commits of different streams swapped,
// because nothing outside the database remembers how long the log was or in
// what order its streams interleaved. The tree covers the whole log in
// position order, and a checkpoint signed with a key the database does not
// hold, kept by others (witnesses, backups, clients' receipts), is that
// memory.
//
// # The leaf
//
// Leaf i (0-based) is the event at position i+1. Its data is (LeafData)
//
//	F("hindsight-event-v1") || F(position) || F(stream) || F(version) ||
//	F(id) || F(type) || F(data) || F(metadata) || F(recordedAt) || F(hash)
//
// where F(x) is the length of x as a 4-byte big-endian unsigned integer
// followed by the bytes of x:
//   - position and version: decimal ASCII, e.g. "42";
//   - stream, id, type: UTF-8, as stored (id in canonical lowercase UUID form);
//   - data: the stored JSON bytes (the client's JSON without insignificant
//     whitespace), exactly as an export line holds them;
//   - metadata: the stored JSON bytes, or empty when there is none;
//   - recordedAt: RFC 3339 in UTC with nanoseconds, trailing zeros of the
//     fraction dropped (Go's time.RFC3339Nano), e.g.
//     "2026-11-23T10:00:00.123456789Z";
//   - hash: the event's stream-chain hash, 64 lowercase hex digits.
//
// The leaf hash is SHA-256(0x00 || leaf data) and an interior node is
// SHA-256(0x01 || left || right), the tree shape of RFC 6962 section 2.1
// (RFC 9162 section 2.1). Every field of the leaf is a field of an export
// line, so a backup can be checked by rebuilding the tree from it
// (testdata/verify_export.py does, with Python's standard library and the
// cryptography package).
//
// # Checkpoints
//
// A checkpoint is a C2SP tlog-checkpoint in a C2SP signed note, signed with
// Ed25519 (golang.org/x/mod/sumdb/note):
//
//	hindsight/hindsight/0b12686f                      origin: the signing key's name
//	11                                                tree size (events)
//	MLfnGAZNlO+WtKw7fYCOH98paKXSFyeEBszxWE+dP0w=      root hash, base64
//
//	— hindsight/hindsight/0b12686f LvOQzo9k…           signature: base64(key hash[4] || Ed25519 signature[64])
//
// The origin line is the signing key's name. A key generated for the
// embedded store is named hindsight/<database>/<8 random hex digits>; a key
// given with HINDSIGHT_SIGNING_KEY_FILE carries its own name (note's key
// format: PRIVATE+KEY+<name>+<hash>+<key>). The verifier key
// (<name>+<hash>+<key>) is logged at start and served at
// /checkpoint/verifier-key and in the GraphQL checkpoint.
//
// The server signs a checkpoint every N events or T seconds, whichever comes
// first, and at shutdown, and stores it in the "checkpoints" collection, one
// document per tree size ({_id: size, root: hex, note, signedAt}), never
// updated or deleted. Several instances sharing a key may sign the same
// size; the first one stored stays.
//
// # Checks
//
//   - At start, once the memory image (and with it the tree) is built, Start
//     compares the tree with every stored checkpoint, smallest first, and
//     records the first disagreement as a Fault naming positions: the ones
//     missing (the log is shorter than a checkpoint), or the ones between the
//     last checkpoint that matches and the first that does not. A
//     checkpoint whose signature does not verify is a fault too. The server
//     then does not report ready, /readyz says which positions, and no new
//     checkpoint is signed: a signature over a tampered log would launder it.
//   - A commit applied after a gap in positions (the tailer's bounded wait
//     for a lost commit) is a fault: the tree stops before the gap.
//   - hindsight verify recomputes the tree from the stored events, checks the
//     hash chains and every stored checkpoint and one given with
//     --checkpoint, and reports the first bad position.
//   - hindsight witness follows a server's checkpoints and checks that each
//     is consistent with the last one it trusted.
//
// # What it guarantees, and what not
//
// Given a checkpoint you trust (signed by the key you trust, and kept
// outside the database: by a witness, in a backup's trailer, or as an
// AppendResult's tree size and root), any change to the first treeSize
// events (altered, removed, inserted, reordered, within a stream or across
// streams, a tail cut) is detected: the root of the log as stored no longer
// matches, or no consistency proof from that checkpoint exists. Inclusion
// proofs show that an event is in the log a checkpoint commits to.
//
// It does not stop someone who can rewrite the database and also holds the
// signing key: they can rewrite history and sign new checkpoints for it.
// Only a party that kept an earlier checkpoint (a witness, a backup, a
// client's receipt) can then show the rewrite, by the missing consistency
// proof; history no witness has seen can be rewritten undetectably. Events
// after the latest checkpoint are protected only by the hash chains until the
// next one. Checking the signature with a verifier key served by the same
// server proves nothing against that server: keep the key elsewhere. The
// tree is in memory (about 37 bytes per event: the leaf hashes and the
// subtrees of 16 leaves and up) and rebuilt at every start by hashing every
// event once.
package tlog
