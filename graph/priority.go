package graph

// Heavy work at a lower OS priority. The heavy lane (lane.go) lets one
// heavy operation at a time have a Go P, but the kernel shares the cores
// among threads, not Ps: the thread executing a page of 1,000 events
// competed on equal terms with the thread that would answer a cheap
// request, and with everything else on the machine. cmd/abusebench
// (8 attackers, -exclude verify, 2 shared cores) measured the `{
// headPosition }` p99 under attack at a median of 5.7 ms (14× idle, 11
// runs) with executions at nice 0 and 1.9 ms (5.2×, 20 runs) at nice 10,
// interleaved in the same session (README, Security). The cost is that
// heavy operations get what the cheap ones leave: under attack the
// attackers got 42% fewer answers.
//
// Only execution is lowered, in InterceptResponse, which every transport
// goes through. Lowering parsing, validation and body decoding as well
// (each plain POST on a goroutine of its own, lowered when it entered the
// lane) measured no better (median 1.8 ms), at a goroutine per request.

// heavyPriority is the priority heavy executions run at.
var heavyPriority = lowPriority{nice: 10}

// lowPriority runs work on an OS thread of its own at a nice value of
// nice (priority_linux.go; elsewhere it runs work as it is). An
// unprivileged process cannot raise a thread's priority again, so the
// thread is used once and discarded: the goroutine ends locked to it,
// and the runtime then ends the thread instead of reusing it. Goroutines
// the work starts run on the runtime's other threads, at their priority.
type lowPriority struct{ nice int }
