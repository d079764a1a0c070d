// Package projections turns the event log into state: the generic JSON state
// of any stream, the order domain (commands, events, state at any point in
// time) and a temporal read model that answers lists and statistics "as
// they were".
//
// # Projections
//
// A Projection[S] has a name, a schema version, an initial state and a pure
// Apply(state, event) that returns the next state. Projections are held in a
// Registry, filled explicitly (DefaultRegistry registers the two the Service
// uses); there is no registration in init().
//
//   - MergeProjection ("merge", schema 1) folds any stream's event data as
//     RFC 7386 JSON merge patches: objects merge recursively, a null member
//     deletes its key, anything else replaces the state. It powers
//     Service.StreamState.
//   - OrderProjection ("order", schema 1) folds an order stream into an Order.
//
// # Order events
//
// An order lives in the stream "order-<id>", where "order-<id>" must be a
// valid stream id (eventstore.ValidateStreamID). Its events and their data:
//
//	OrderCreated      {"customerId":"c-1","items":[{"sku":"A","quantity":2,"unitPriceCents":150}]}
//	OrderItemAdded    {"sku":"A","quantity":1,"unitPriceCents":150}
//	OrderItemRemoved  {"sku":"A"}
//	OrderPlaced       {}
//	OrderPaid         {"amountCents":450}
//	OrderShipped      {"trackingNumber":"1Z999AA10123456784"}
//	OrderCancelled    {"reason":"customer changed their mind"}
//
// The payload types are OrderCreatedData and its siblings. createdAt,
// placedAt, paidAt, shippedAt and cancelledAt are the recordedAt of the
// events that set them, so the order read at paidAt is PAID. Every event
// advances version, position and updatedAt, so an order's version is its
// stream's version. The fold records events as facts and never rejects one;
// the rules below are checked by the commands before an event is written.
//
// # Business rules
//
// Input outside these limits is ErrInvalidInput; a command the order's
// current state forbids is a *RuleError (errors.Is(err, ErrInvalidState))
// with a message for people; an unknown order is ErrNotFound.
//
//   - customerId is 1 to 256 characters; sku 1 to 64; trackingNumber 1 to
//     256; a cancel reason 1 to 1,024.
//   - quantity is 1 to 10,000 and unitPriceCents 0 to 1,000,000,000.
//   - Items change only while the order is DRAFT. Adding a sku the order
//     holds adds to its quantity; the sum must stay within 10,000, and the
//     unit price must be the line's price (a different price is
//     INVALID_STATE: remove the line first). Removing a sku the order does
//     not hold is INVALID_STATE. An order holds at most 1,000 different
//     skus. Items given to createOrder that repeat a sku are merged the same
//     way.
//   - place: a DRAFT order with at least one item becomes PLACED.
//   - pay: only a PLACED order, and amountCents must equal totalCents.
//   - ship: only a PAID order. cancel: a DRAFT, PLACED or PAID order.
//   - Revenue is the sum of totalCents over PAID and SHIPPED orders.
//
// createOrder with an orderId is idempotent: its event id is a UUIDv5 of the
// order id and it is appended with expected state NoStream, so the store
// answers a repeat with the original result (and the service returns the
// order as it is now), while a create of an existing id with other content
// is INVALID_STATE "already exists". Without an orderId the order gets a
// UUIDv7.
//
// # Commands and concurrency
//
// A command validates its input, loads the order's current state, decides
// (pure functions, tested without a store) and appends with the exact
// version it decided on. A caller's expectedVersion is used as given and a
// mismatch is the store's *eventstore.WrongExpectedVersionError (use
// errors.As). Without one, a conflict means another writer won the race: the
// command is decided again on fresh state, up to Options.MaxCommandAttempts
// (50) times, with a short jittered backoff. Concurrent commands on one
// order are thereby serialized without locks, across instances too.
//
// An accepted command is always checked against the store (the append's
// expected version), but a rejection is decided on this instance's memory
// image, which can miss a write another instance took a moment ago. So a
// command that finds no order first waits briefly (up to 500 ms) for the
// log to bring one, and an expectedVersion beyond what this instance has
// seen is waited for (up to LagWait) before it is called a conflict. If the
// store offers Sync(ctx) error (an optional capability found by type
// assertion), every rejection is confirmed after a Sync.
//
// # Why everything is read from memory
//
// The embedded store, FerretDB, scans a whole collection for every query,
// even a lookup by _id. So the eventstore keeps a memory image of the log
// (stream histories, the global log, snapshots), and this package reads only
// through it: ReadStream pages, Head, ResolveVersion, PositionAt, LoadSnapshot
// and subscriptions. This package never queries MongoDB itself. The only
// writes it makes are the commands' appends, snapshots and an optional
// checkpoint document.
//
// The image is bounded by a memory budget. Heads, versions, positions and
// times come from its skeleton, which is never evicted; event payloads of
// cold streams and old history are. A fold over evicted events (an order at
// an old version, a history) is therefore served by the eventstore from an
// indexed store read, and so is the projector's first pass over the log
// when the budget is smaller than the log. Snapshots keep such folds short:
// no fold reads more than SnapshotEvery events or about 8 MiB of data.
//
// # Time travel: snapshots plus a bounded fold
//
// The state of a stream at version v is the nearest usable start at or
// before v plus a fold of the events after it. The start is a snapshot of the
// same projection name and schema version, or a state from the LRU cache,
// whichever is closer; snapshots of other schema versions are never loaded,
// so bumping a projection's SchemaVersion invalidates all of its snapshots at
// once. Whenever a fold passes a version that is a multiple of K
// (Options.SnapshotEvery, default 100) and no snapshot exists there, one is
// queued. A bounded queue drained by one goroutine writes them, so a command
// never waits for a snapshot, and a full queue drops them (they are an
// optimization; the next fold offers them again). A fold also offers one
// whenever it has folded 8 MiB of event data since the last such point
// (snapshotEveryBytes), because K events at the 4 MiB append limit are 400
// MiB. Hence reading any version folds fewer than K events and at most 8 MiB
// plus one event of data once a stream's snapshots are written: version
// 9,999 of a 10,000-event stream costs what version 99 of a 100-event stream
// costs.
//
// A merged state (Stream.state) is limited to MaxStreamStateBytes (4 MiB) as
// JSON, the most a snapshot holds: a larger one could not be snapshotted, so
// every read past it would refold the stream from before it. It is limited
// to MaxStreamStateValues (65,536) JSON values too, since each read decodes
// and writes every value of the state. The merge
// projection keeps each state's exact size as it folds (measuring only each
// patch and what it removes), and the fold ends with a *StateTooLargeError
// at the first event that passes the limit; every later version of that
// stream is refused the same way, since each would fold through it.
//
// # The current-state cache
//
// Current order states (and merge states) sit in an LRU bounded by a count
// (Options.CacheSize) and by an estimate of their memory (Options.CacheBytes,
// 64 MiB per cache: the state's JSON plus 64 bytes per value). It needs no
// invalidation: events are immutable and streams only grow, so a
// state cached at version v is right for version v forever. A reader compares
// it with the stream's head in the memory image, which writes of other
// instances reach through the eventstore's tailer, and folds only the events
// after v.
//
// # The temporal read model
//
// Lists and statistics at a point in time would need a replay of the whole
// log per query. Instead a projector follows the global log from its
// checkpoint and keeps, for every order, each state it has had together with
// the position from which it is valid; a state is valid until the position of
// the order's next state. "Orders at position P" is then one binary search
// per order, and aggregates are kept as a timeline of running totals with
// one point per position that changed them, so "stats at P" is one binary
// search. Orders are listed in the order of the position that created them,
// then id; that key never changes, so opaque cursors stay valid at every
// point in time.
//
// The read model lives in memory and is rebuilt from the memory image at
// start, with progress logged; Ready reports when the first pass is done. Its
// checkpoint can also be stored (Options.Checkpoints, {projector,
// schemaVersion, position}), which tells a restarting projector whether its
// schema version, the order projection's, changed; it rebuilds either way.
// The projector also writes order snapshots as it passes multiples of K, so
// orders written by other instances or after a schema change get them.
//
// # Read your writes
//
// An append returns only once its events are in this instance's memory
// image. A plain query therefore takes the store's head when it arrives and
// waits (up to Options.LagWait, 5 s) until the read model has reached it, so
// it reflects every write this instance acknowledged. A query at position P
// first waits for P to reach this instance's image (the eventstore reads the
// log at once), then for the read model; past LagWait it fails with
// ErrProjectionLagging. A time is turned into the last position recorded at
// or before it (store.PositionAt), since recordedAt never decreases along the
// log.//
// # Declarative projections
//
// Declarative (Service.Declarative) runs read models defined at run time: a
// Definition names a stream prefix and event types, a partition key (the
// stream id, or a jq expression over the event), an initial state (a JSON
// object) and a jq reducer from {state, event} to the next state, compiled
// with github.com/itchyny/gojq. No expression language of our own, and no
// environment: jq's $ENV is empty and input is not allowed.
//
// Definitions are events: version N of projection NAME is the N-th
// ProjectionDefined event of the stream "hindsight.projections.NAME", so
// definitions have versions, history and an audit trail, and every instance
// learns them by following the log. Define checks a definition first (it
// compiles, and it folds the most recent matching events without a fault,
// each partition from the initial state; the answer reports what that dry
// run produced) and only then appends it.
//
// Each version is built by a runner (declared_runner.go) that follows the
// whole log from position 0, like the order projector, into the same
// temporal read model (temporal.go): every partition keeps each state it has
// had with the position it is valid from, so a partition at a position or a
// time is one binary search, at its n-th event an index, and a page of
// partitions at a point one binary search per partition. That is why
// version 9,999 of a partition costs what version 99 costs without
// snapshots: the states are in memory, like the order read model's, kept as
// their JSON (no garbage to scan, no encoding on read), and rebuilt from the
// memory image at start. Options.ProjectionMemoryBudget bounds them: past it
// the JSON of old states is evicted (declared_evict.go), each partition
// keeping its latest state and every SnapshotEvery-th, and a read of an
// evicted state folds it again from the kept one before it, over at most
// SnapshotEvery events read back by position. A version whose next state
// would pass the budget with nothing left to evict faults (MEMORY_BUDGET); a
// replaced version drops its states.
//
// The kept states are also eventstore snapshots, named by projection,
// definition version and a digest of the definition, so a redefinition never
// reads another version's; and a built version records how far it got. An
// instance that starts on a log where that record exists restores the
// version up to there (declared_resume.go): it computes partition keys only,
// with no reducer, and folds a state when it is read or its partition's
// next event comes, from the snapshot at or before it. In the background a
// refill (declared_refill.go) then folds the restored states once more, in
// one pass over the log, and puts their JSON back within the budget: the
// version answers sooner, and the fold's work is done off the critical
// path.
//
// A partition key from jq that is null (or no value) sends the event to the
// partition its stream's last keyed event went to, or skips it if there was
// none: order events carry the customer only in OrderCreated, and the
// OrderPaid of that order still belongs to the customer.
//
// Redefinition: a new version is built in the background while the active
// one answers; once the new one has reached the head the two switch
// atomically (Declarative.promote). A query takes the answering
// runner once and reads only from it, so no answer mixes versions; the old
// runner follows the log a little longer for queries already waiting on it.
// A version defined while another is still being built supersedes it.
// A replaced version deletes its snapshots.
//
// A runner folds through one gojq run for all its events
// (declared_stream.go): the compiled expression is "feed | REDUCER | emit",
// where feed asks the runner for the next {state, event} only once the
// reducer is done with the previous one and emit hands each value back, so
// each event keeps the per-event contract (one value, an object, its own
// time limit) without paying for a new gojq machine per event. The folds
// off the runner's goroutine go through streams too, taken from a pool of
// the program's (program.fold): the dry run, a read that folds evicted or
// restored states again (whose events are read ahead in one page, not one
// read each) and the refill. A fault there is contained: the dry run
// refuses the definition naming the event, a read fails with a
// *FaultError naming it, the refill stops and logs it. Event data
// and states are decoded for jq by declared_decode.go: numbers keep their
// digits (json.Number, as gojq's fromjson), so large integers stay exact.
//
// Faults are contained per version. Each reducer call runs under a context
// with Options.ReducerTimeout (gojq checks it between instructions;
// declared_clock.go makes that check free until the limit passes), and the
// state's JSON size is estimated and checked against Options.MaxStateBytes.
// A time-out (three in a row: the limit is wall-clock time, which a starved
// process can use up), a state too large, a jq error, a non-object result, a
// bad partition key or the memory budget stops that runner just before the
// event: its checkpoint
// stays at the previous position, queries at or after the event fail with a
// *FaultError (ErrProjectionFaulted), earlier points still answer, and the
// other runners, the order projector and appends are not affected.
//
// Access: a projection keyed by stream id is scoped like streams (Scope,
// which auth.Principal implements); a partition keyed by jq mixes events of
// many streams, so it is readable only by a caller allowed every stream the
// projection reads.
//
// Subscriptions are a cursor over the runner's position-ordered list of
// recorded states (and a wait on its checkpoint), so catch-up and live are
// one loop and nothing is lost or repeated; across a switch they go on from
// the same position with the new version's states.
package projections
