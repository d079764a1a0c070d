// Package eventstore is Hindsight's event log: an append-only log of events
// on MongoDB, reached only through the official driver, with a memory image,
// bounded by a budget, that serves reads.
//
// # Storage layout
//
// One append is one document in the "commits" collection:
//
//	{ _id: <global position of its first event>,
//	  stream: "order-42", version: <version of its first event>,
//	  lastPosition: <global position of its last event>,
//	  recordedAt: <date, ms>, recordedAtNs: <Unix ns, exact>,
//	  events: [ { id, type, data: "<JSON text>", metadata: "<JSON text>", hash }, ... ] }
//
// A single document is written atomically by every MongoDB-compatible store,
// so an append is all-or-nothing without transactions (FerretDB has none).
// Data and metadata are stored as the client's JSON text with insignificant
// whitespace removed: the hash covers exactly those bytes, and numbers keep
// their precision.
//
// # Indexes, and why they carry correctness
//
//   - _id (the first position) is unique: two appends can never take the same
//     position. A writer always writes at head+1 of the log it has seen, and
//     every head it can have seen is a commit boundary, so a stale writer's
//     first position is the _id of an existing commit and fails with E11000.
//     Positions are therefore unique, strictly increasing and gap-free without
//     any counter (FerretDB's $inc is not atomic, as measured).
//   - (stream, version) is unique, named "stream_version": two appends to the
//     same stream version conflict in the store, across processes, by the same
//     boundary argument.
//   - lastPosition, named "last_position": range reads of the global log on
//     MongoDB (position > P) are index scans.
//   - snapshots: (stream, projection, schemaVersion, version), as the _id
//     "len:stream|len:projection|schemaVersion|version" (the two strings
//     length-prefixed, so no stream id or projection spells another's _id;
//     snapshots saved before that used the fields joined with "|" and keep
//     it). DeleteSnapshots removes one schema version of a projection, or of
//     every projection with a prefix.
//
// On a duplicate-key error the writer reads the new commits (see pull) and
// checks the appends again against the fresh state, so an expected-version
// mismatch is reported with the true actual version.
//
// # Event ids
//
// An event id is unique in the whole log, and the store enforces it, not
// only the memory image of one process. A unique index on the ids inside
// commit documents would be the natural tool, and MongoDB honours one across
// documents, but FerretDB v1.24 accepts the index and does not enforce it
// (TestEventIDIndexProbe). So the writer reserves every id before it writes
// the commit that holds it, with one unordered insert command per group
// commit (split past 8 MiB; encoded by the store, see insertcmd.go) into the
// "eventids" collection: { _id: <event id>, stream, version, sum:
// <digest of type, data and metadata>, at }. The unique _id makes two
// reservations of one id conflict on any store, without transactions.
//
// A reservation binds the id to a place, (stream, version), and the place's
// commit settles it: (stream, version) is unique among commits, and a writer
// writes an id only into the place its reservation names. On a conflict the
// writer reads the id's reservation and
//
//   - takes it up if it names the same place and content: a retry racing
//     with its original; whichever fills the place holds the id;
//   - refuses the append with ErrDuplicateEventID if the place holds the id;
//   - takes it over if it is stale: its place holds another event (its writer
//     lost the place), or it stayed empty for reservationTTL (2 minutes; its
//     writer died or gave up, and a writer gives up a commit after the op
//     timeout, 5 s). A takeover inserts the next generation, _id
//     "<id>/1", "<id>/2", ..., and never updates one in place: updates are
//     not atomic on FerretDB, inserts of a unique _id are, so of two writers
//     taking over one reservation only one wins;
//   - otherwise (its place is empty and it is recent: an append in flight
//     elsewhere) refuses with ErrStoreUnavailable: retry.
//
// The crash story: a writer that dies between the reservation and the
// commit leaves a reservation whose place stays empty; its id is free again
// when another event fills the place, or after reservationTTL, and a retry of
// the same append to the same version takes it up at once. A writer whose
// commit failed for a known reason (it lost the position or the version to
// another writer) moves its own reservations to the new places. A commit of
// a writer that was cut off for longer than reservationTTL and then lands
// anyway is the one case this does not cover.
//
// The cost is one more round trip per group commit (an unordered
// insertMany of the batch's ids), and one small document per event.
//
// Import reserves the ids of what it writes the same way and refuses a file
// that uses an id twice. Logs written before reservations existed have none
// for their events, so ids stored then are not protected against reuse.
//
// Retries: an append gives an id to every event or to none (ErrInvalidArgument
// otherwise). An id generated by the store differs on every try, so a retry
// of an append that mixed the two could not be recognised: it would fail
// with ErrDuplicateEventID although the original was committed.
//
// # Group commit
//
// Appends from concurrent callers queue for one writer goroutine, which
// checks each against the image plus the appends planned before it in the
// same batch, assigns versions, positions, recordedAt (never before the head's,
// guarantee 4) and hashes, and writes the whole batch with one ordered
// insertMany. Everything before the first failed document is stored; the rest
// is planned again. A result is returned only after the commit is durable and
// applied to the image. If the outcome of a write is unknown (a timeout), the
// appends fail with ErrStoreUnavailable and the next batch re-reads the log
// first; a client resending with the same event ids gets the original result.
//
// # The memory image, and why reads come from memory
//
// FerretDB, the embedded and test store, answers every query by scanning the
// collection, even by _id (about 60 µs per stored commit measured here). So
// each process holds a memory image of the log, built at Open by one
// sequential read (progress is logged, Ready reports false until it is done)
// and fed only with commits that are durable, strictly in position order. It
// is never ahead of the store and never behind what this process
// acknowledged. Heads, stream pages, global log pages, points in time and
// subscription catch-up are all answered from it. VerifyStream is the one
// deliberate exception: it checks the stored documents, because that is where
// tampering happens.
//
// The image has two layers:
//
//   - The skeleton, which is never evicted: every stream's head (version, last
//     position, last hash, created and updated times) and a compact index of
//     the whole log, one 40-byte slot per event in position order (its stream,
//     position, version, interned type, recordedAt, and its offset in its
//     commit document), plus a 4-byte version-to-slot entry per event in its
//     stream. That is about 45 bytes per event and about 350 per stream.
//     Heads, PositionAt, ResolveVersion, the writer's planning (a stream's
//     last version and hash), subscription cursors and the decision which
//     events a page holds all work from the skeleton alone, so none of them
//     ever reads the store.
//   - Payloads, which are evictable: the full Events of each stream, as a
//     window of versions in which missing entries are not resident.
//
// # The memory budget and eviction
//
// WithMemoryBudget (HINDSIGHT_MEMORY_BUDGET in the server) bounds the
// skeleton and the payloads together. The bytes are accounted from the
// allocator's size classes (the Event struct, ID, data, metadata and hash,
// the stream's window, the index chunks); measured with runtime.MemStats
// they are within a few percent of the heap the image takes, and the image
// costs about 1.3x the JSON size of the events it holds (see
// BenchmarkImageBytes). When an append, a read back or the build at Open
// takes the image over its budget, one eviction pass brings it down to 90%
// of it, so passes are rare:
//
//  1. streams not read or written since the previous pass go whole, least
//     recently used first (cold streams);
//  2. then the old history of the streams used since, all but their last 32
//     versions, least recently used first (recent versions are what
//     current-state reads and live subscribers need; older versions are
//     reached through snapshots);
//  3. then those streams whole.
//
// A stream pinned by an append with client ids keeps its history (below).
// A build at Open over a log larger than the budget therefore keeps the
// skeleton and the most recently written payloads. If the skeleton alone
// exceeds the budget, every payload goes and a warning is logged.
//
// # Misses
//
// A read of evicted events falls back to one indexed store read, located
// exactly by the skeleton, and never runs while the image lock is held or
// inside the writer's planning:
//
//   - A stream page reads {stream, version in [first version of the commit
//     holding the page's first event, last version]} sorted by version, the
//     stream_version index, and puts the page back into the image if it takes
//     at most a quarter of the budget, so the next read hits.
//   - A global page (ReadAll) reads the missing events with one range on _id
//     (from the first position of the commit holding the first of them to
//     the last of them), sorted by _id, and merges them with the resident
//     ones. It does not fill the image: a reader paging through the log would
//     flush everything else.
//   - A subscription catching up over evicted positions reads them in
//     windows: a range on _id (or on the stream's versions, for a stream
//     subscription) over at most MaxReplyBytes of commits, by the sizes the
//     image keeps, then the next window or the image. One cursor up to the
//     head would be one query, but FerretDB's SQLite backend gathers and
//     sorts every match of a find in memory before it returns the first: a
//     catch-up from 0 over 16,384 events of 4 KiB grew the embedded
//     server's live heap by 156 MiB, over 32,768 by 263 MiB, without bound.
//     Windows hold that to about 60 MiB at any length, at the price of a
//     collection scan per window on FerretDB (a catch-up of 32,768 events of
//     4 KiB from the store: 750 events/s against 7,700); on MongoDB a window
//     is an indexed range. It does not fill the image either.
//   - The writer's idempotency check looks event ids up in the stream's whole
//     history, from memory. So Append first pins the stream: it loads the
//     evicted part of the history with one stream read and keeps it until the
//     append is answered, and eviction skips pinned streams.
//
// Stats counts reads served from memory (Hits) and reads that went to the
// store (Misses; a subscription counts one per catch-up cursor), the bytes
// held and the evictions. On MongoDB a miss is an index range; on FerretDB
// it is a scan, slow but correct.
//
// # Reading the store: replies bounded by bytes
//
// Never rely on the store to bound what it sends back. MongoDB caps one
// reply at 16 MiB whatever the batch size; FerretDB does not, and a commit
// may hold 4 MiB (MaxAppendBytes), so 1,000 commits in one reply can pass the
// driver's 48 MB message limit ("length of read message too large"): the
// image could not be built, and neither export nor verify could run. So
// every read of the commits collection goes through one helper, the
// commitCursor of reads.go, which sets the batch size of every reply (the
// driver's Cursor.SetBatchSize before each getMore) so that the reply holds
// at most MaxReplyBytes (12 MiB) even if every commit it may hold is as
// large as it can be:
//
//   - The image records the size of every commit above 64 KiB (a bound
//     computed from its fields; 16 bytes per such commit in the skeleton).
//     Over positions the image holds, a reply may then hold the next known
//     large commits while their sum fits, and 64 KiB for each other commit:
//     192 small commits per reply, and one or two where commits are at the
//     limit. A read of one stream walks that stream's commits in the
//     skeleton and counts each at its size.
//   - Beyond the image's head nothing is known, so each commit counts as
//     MaxCommitBytes (about 5.1 MiB: the 4 MiB of data plus 1,000 events'
//     ids, types and hashes): 2 per reply. That is the image build at Open
//     and the tailer's read of new commits. Measured on FerretDB (SQLite),
//     where the per-document cost dominates, reading 30,000 small commits
//     took 2.8 s in replies of 3 and 2.7 s in replies of 1,000 (1 per reply:
//     6.6 s). cmd/imagebench at 1,000,000 events (517 MiB as JSON, 65,640
//     commits, among them 64 KiB events and appends of 4 MiB) measured the
//     raw driver read with the same bound at 131 s and start → ready at
//     149 s, 1.13×.
//
// The other collections are bounded the same way: a snapshot holds at most
// MaxSnapshotBytes (4 MiB) of state, a beacon at most 256 KiB of commits.
// TestReadsBoundedByBytes measures every reply of every read path.
//
// # Other instances
//
// Each instance keeps a beacon in the tiny "instances" collection: its head,
// a heartbeat (every 250ms), whether it announces every commit, and copies of
// its latest commits (a ring of at most 64 commits, 64 KiB and 500ms, but
// always the whole latest batch up to 256 KiB). Reading that collection is
// cheap on any store, while reading the log by position is a scan of the
// whole log on FerretDB. So (beacon.go, tailer.go, relearn.go):
//
//   - While peers are alive, the writer announces each batch before it
//     acknowledges it. So a live peer's beacon accounts for every commit it
//     acknowledged, and Sync and WaitForPosition on another instance are
//     answered from the beacons (guarantee 8) without reading the log.
//   - The tailer reads the beacons at an adaptive interval and applies the
//     peers' recent commits. It reads the log only when the beacons cannot
//     account for everything: a peer is further ahead than its ring reaches,
//     a position is missing, or a peer stopped heartbeating (liveness 1.5s,
//     judged on our own clock) — its last commit may be durable but never
//     announced. That bounds the delay a crashed writer causes (guarantee 5).
//   - A writer that loses the race for head+1 learns the winning commit from
//     one read of the beacons, not the log. Before, each lost race cost a
//     scan, and a writer could lose every race to a busy peer. A writer that
//     loses twice in a row marks itself contending in its beacon, and peers
//     hold back their next batch (up to 100ms) until it has had its turn.
//   - An unknown outcome (a timeout) is still settled by reading the log.
//
// When a round trip finds the store unreachable, appends fail at once with
// ErrStoreUnavailable, instead of each waiting out its own timeout, until a
// ping every 250ms reaches the store again.
//
// # Subscriptions
//
// A Subscription is a cursor over the image: Recv returns the next matching
// event after the cursor and otherwise waits for the head to move (over
// evicted positions it reads from the store, see Misses). Catch-up
// and live delivery are the same loop over the same gap-free log, so nothing is
// lost or repeated at the handover, and a slow reader only lags its own cursor:
// it holds no buffer and blocks nobody (guarantee 7).
//
// A subscription normally wakes on every commit. One made for fanning out to
// many clients (SubscribeOptions.Batched) is woken by the waker of wake.go
// instead, which, while commits keep coming, goes round the batched
// subscriptions in groups and wakes each at most once per window (30 µs per
// batched subscription, at most 100 ms), with everything committed since.
// That bounds the wake-ups, and so the socket writes, of all of them to
// about 33,000 a second up to 3,334 subscriptions (then 10 a second each),
// and spreads them evenly.
// Only when changes; what is delivered does not. The projector's
// subscription is not batched, so read-your-writes never waits for it.
//
// # Hash chain
//
// See chainHash for the exact canonical encoding, so that other programs can
// verify a stream.
//
// # The verifiable log
//
// A chain cannot see a stream's or the log's tail removed, or commits of
// different streams swapped. The verifiable log (package tlog) covers that:
// an RFC 6962 Merkle tree over every event in position order with signed
// checkpoints. It is its own type, not part of the Store: it follows the log
// through the commit observer (WithCommitObserver, observe.go), which sees
// every commit the image applies, in position order, and fills
// AppendResult.TreeSize and RootHash through WithAppendReceipt. Its leaf
// encoding, checkpoint format and guarantees are documented in package tlog.
//
// # Errors
//
// Errors wrap the sentinel errors of this package, usually inside an *Error
// carrying the operation and stream; a conflict is a
// *WrongExpectedVersionError carrying the actual version. Use errors.Is and
// errors.As.
package eventstore
