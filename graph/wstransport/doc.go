// Package wstransport is Hindsight's websocket transport for gqlgen: a
// graphql.Transport (gqlgen's documented seam, added with srv.AddTransport)
// that owns each websocket alone and speaks both GraphQL subprotocols,
// graphql-transport-ws (graphql-ws's PROTOCOL.md) and the legacy graphql-ws
// of subscriptions-transport-ws.
//
// # Why our own transport
//
// gqlgen's websocket transport keeps four goroutines and net/http's buffers
// per connection, and writes every message through json.Marshal twice. To
// share one encoding of an event among thousands of subscribers, the previous
// design slipped placeholders past gqlgen, reflected over its unexported
// message types and wrote frames between the websocket library's own. That
// shipped two bugs and could not get under 62 KB per subscriber. Here one
// connection has one owner: operations still run through gqlgen's executor
// (CreateOperationContext, DispatchOperation), so validation, complexity,
// extensions and response interceptors behave exactly as over POST, and the
// transport writes the responses itself.
//
// # Why gobwas/ws
//
// The websocket library is github.com/gobwas/ws, chosen over coder/websocket
// and lxzan/gws for what the fan-out target needs (≤ 30 KB and ≤ 2 goroutines
// per subscriber at 10,000):
//
//   - It is a frame toolkit, not a connection object: it reads and writes
//     RFC 6455 headers on our net.Conn and keeps no buffers or goroutines of
//     its own. An idle connection here holds no read or write buffer at all:
//     frame headers are read into a few bytes of the connection, payloads
//     (rare: subscribe, complete, ping) into a buffer of their exact size,
//     and unsent messages sit in a pooled buffer only until they are flushed.
//     coder/websocket keeps net/http's 4 KiB reader and writer per
//     connection and takes two channel locks per message; gws keeps a read
//     buffer per connection and a goroutine per connection for asynchronous
//     writes.
//   - Framing is ours, so a shared encoding is framed straight into the
//     connection's write buffer next to its message envelope: one copy, and
//     the messages of one wake-up leave in one system call.
//   - The upgrade is a plain function on the hijacked connection, after
//     which net/http's serving goroutine returns and its per-request state
//     is garbage.
//
// # Goroutines and memory
//
// A connection has one goroutine that reads it and, per running operation,
// one that runs gqlgen's response handler and writes what it returns: a
// connection with one subscription has two. Timers (init timeout,
// keep-alive, the end of a credential) are time.AfterFunc and cost no
// goroutine while they wait. Writes from every goroutine go through one mutex
// into one buffer; a subscription that says more responses are ready at once
// (ReportBacklog) leaves them in the buffer, so they leave together.
//
// A client's message is read whole before it is decoded, so what a reader
// holds is bounded by admission, as a POST body is: up to
// Config.SmallMessage bytes (1 MiB under graph) it reads without asking;
// before it reads more of a message, Config.Reserve admits the most the
// message can be (its size, when the header of its last frame says it, else
// ReadLimit), and the rest must come within MessageTimeout. Eight clients
// sending 8 MiB messages thus wait for the budget with at most 1 MiB each
// read, instead of holding 64 MiB of buffers before any admission.
//
// A client that stops reading blocks the write of its own connection only:
// the socket write has a deadline (Config.WriteTimeout), after which the
// connection is dropped. What a subscriber has not yet been sent stays in the
// store, not here; ending a subscriber that falls too far behind is the
// subscription's business (graph's slow-consumer policy), not the
// transport's.
package wstransport
