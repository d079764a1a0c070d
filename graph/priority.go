package graph

// Heavy work at a lower OS priority. The heavy lane (lane.go) lets one
// heavy operation at a time have a Go P, but the kernel shares the cores
// among threads, not Ps: the thread executing a page of 1,000 events
// competed on equal terms with the thread that would answer a cheap
// request, and with everything else on the machine. cmd/abusebench
// (8 attackers, -exclude verify, 2 shared cores; README, Security)
// measured the `{ headPosition }` p99 under attack, interleaved in one
// session, at a median of 5.4 ms (12× idle, 15 runs) with executions at
// nice 0, 1.9 ms (4.7×, 29 runs) at nice 10 and 0.35 ms (1.1×, 9 runs) at
// nice 19.
//
// The price, first: gqlgen marshals each element of a list on a goroutine
// of its own, which the locked thread cannot run, so it hands its P over
// and back for every element. A page of 1,000 events took 31-33 ms of CPU
// and as long to answer on an idle server, against 10-12 ms and 7-11 ms
// (abusebench's cost phase). The same thread locked at nice 0 costs as
// much and brought the p99 under attack to 2.4 ms against 4.1 ms at nice 0
// unlocked and 1.3 ms at nice 19 (5 runs each): part of the gain is that
// heavy work is slower. Lowering only the root fields' resolvers (the
// store's reads) cost 1.1-1.4× and did not lower the p99 (4.1 against
// 3.7 ms). HINDSIGHT_HEAVY_LOW_PRIORITY=false (HeavyAtNormalPriority)
// executes in place. Second: when the cores are all busy, a heavy
// execution gets what the nice-0 threads leave (at nice 19 about 1.5% of
// a core against one busy nice-0 thread), so under attack the attackers
// got 42% fewer answers, and a legitimate heavy query on a saturated
// machine waits for the cheap ones.
// A lowered thread that holds a lock others wait for (the store's image
// lock while it reads a page, which an append's apply then waits for, and
// readers behind it) delays them as long; appends were not part of the
// measurement. When cores are idle the nice value changes nothing.
//
// So a heavy execution is lowered only when it has company, an operation
// executing or waiting for the lane (heavyLane.contended): under attack
// that is nearly always, and the p99 was the same (2.02 ms, 6.5×, against
// 2.10 ms, 7.1×, lowering every one; medians of 10 interleaved runs, see
// cmd/abusebench/README.md), while a heavy query alone, a client paging
// through the log, costs what it did (a page of 1,000 events: 12.7 ms).
//
// Lowering leaves most of the heavy work at nice 0: a runtime trace under
// attack (cmd/abusebench README) showed the lowered thread running 0.20-0.28 s
// of the server's 1.6-1.9 s of CPU per 2 s, the elements of its lists
// marshalled on the runtime's other threads, the handoffs of the P between
// them and the locked thread costing runtime.futex 29-30% of the CPU, and
// the GC's marking 0.31-0.44 s. The heavy lane's rest (lanerest.go) is what
// lowers that work.
//
// Only execution is lowered, in InterceptResponse, which every transport
// goes through. Lowering parsing, validation and body decoding as well
// (each plain POST on a goroutine of its own, lowered when it entered the
// lane) measured no better at nice 10, at a goroutine per request.

// heavyPriority is the priority heavy executions run at.
var heavyPriority = lowPriority{nice: 19}

// lowPriority runs work on an OS thread of its own at a nice value of
// nice (priority_linux.go; elsewhere it runs work as it is). An
// unprivileged process cannot raise a thread's priority again, so the
// thread is used once and discarded: the goroutine ends locked to it,
// and the runtime then ends the thread instead of reusing it (or, for the
// main thread, parks it for good). Goroutines the work starts, such as
// gqlgen's for the elements of a list, run on the runtime's other
// threads at their priority.
type lowPriority struct{ nice int }
