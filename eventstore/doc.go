// Package eventstore is Hindsight's event log: an append-only log of events
// on MongoDB, reached only through the official driver, with a memory image
// that serves every read.
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
//   - snapshots: (stream, projection, schemaVersion, version).
//
// On a duplicate-key error the writer reads the new commits (see pull) and
// checks the appends again against the fresh state, so an expected-version
// mismatch is reported with the true actual version.
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
// # The memory image, and why reads never query the store
//
// FerretDB, the embedded and test store, answers every query by scanning the
// collection, even by _id (about 60 µs per stored commit measured here). So
// each process holds the log in memory: the global log in position order and
// every stream's history, built at Open by one sequential read (progress is
// logged, Ready reports false until it is done) and fed only with commits that
// are durable, strictly in position order. It is never ahead of the store and
// never behind what this process acknowledged. Heads, stream pages, global log
// pages, points in time and subscription catch-up are all answered from it.
// VerifyStream is the one deliberate exception: it checks the stored documents,
// because that is where tampering happens.
//
// The image is not yet bounded by a memory budget: it holds the whole log.
// Stats reports its size.
//
// # Other instances
//
// Each instance announces its head in the tiny "instances" collection after
// every batch and as a heartbeat. The tailer reads that collection (cheap on
// any store) at an adaptive interval, and reads the log by position (a scan on
// FerretDB, an index range on MongoDB) only when a peer is ahead, when a reader
// asks for a position it does not have (WaitForPosition, Sync), and every
// safety-poll interval while peers are alive, to pick up a commit whose writer
// died before announcing it. That bounds the delay a crashed writer causes
// (guarantee 5) without scanning the log when an instance runs alone.
//
// # Subscriptions
//
// A Subscription is a cursor over the image: Recv returns the next matching
// event after the cursor and otherwise waits for the head to move. Catch-up
// and live delivery are the same loop over the same gap-free log, so nothing is
// lost or repeated at the handover, and a slow reader only lags its own cursor:
// it holds no buffer and blocks nobody (guarantee 7).
//
// # Hash chain
//
// See chainHash for the exact canonical encoding, so that other programs can
// verify a stream.
//
// # Errors
//
// Errors wrap the sentinel errors of this package, usually inside an *Error
// carrying the operation and stream; a conflict is a
// *WrongExpectedVersionError carrying the actual version. Use errors.Is and
// errors.As.
package eventstore
