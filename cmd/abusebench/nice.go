package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hindsight-dev/hindsight/internal/benchserver"
)

// -nice-clients: on this machine the attacking clients and the store share
// the cores with the server they measure, and a client decoding a page of
// 1,000 events or the store scanning for one takes a core the server would
// otherwise have. In production the clients are other machines and the
// store usually is too. With -nice-clients the attackers run in a process of
// their own at nice 19 (this binary again, started with attackEnv set, under
// nice(1)) and the separate store's threads are set to nice 19, so that the
// kernel gives the server and the `{ headPosition }` probe (nice 0) a core
// first. The figure then says how much of the probe's latency is the
// server's own doing; the default run, everything at nice 0, stays the
// figure the target is judged on.
const (
	attackEnv = "ABUSEBENCH_ATTACK"
	niceness  = 19
)

// attackSpec is what the attacker process needs: where, how many, over
// which transport, and which catalogue entries to leave out.
type attackSpec struct {
	base      string
	attackers int
	transport string
	exclude   string
}

func (s attackSpec) String() string {
	return strings.Join([]string{s.base, strconv.Itoa(s.attackers), s.transport, s.exclude}, "\t")
}

func parseAttack(spec string) (attackSpec, error) {
	f := strings.Split(spec, "\t")
	if len(f) != 4 {
		return attackSpec{}, fmt.Errorf("%s=%q: want BASE, ATTACKERS, TRANSPORT and EXCLUDE, tab-separated", attackEnv, spec)
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 1 {
		return attackSpec{}, fmt.Errorf("%s: attackers %q", attackEnv, f[1])
	}
	return attackSpec{base: f[0], attackers: n, transport: f[2], exclude: f[3]}, nil
}

// attackMain is main for the attacker process: it loops over the catalogue
// until its standard input closes, then prints how many requests were
// answered.
func attackMain(spec string) int {
	s, err := parseAttack(spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "abusebench attackers:", err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	c := benchserver.NewClient(s.base, s.attackers)
	answered, err := attackLoop(ctx, c, contentionLoop(attacks(), s.exclude), s.attackers, s.transport)
	fmt.Println(answered)
	if err != nil {
		fmt.Fprintln(os.Stderr, "abusebench attackers:", err)
		return 1
	}
	return 0
}

// niceAttackers starts the attacker process under nice(1); stop ends it and
// returns how many requests it had answered.
func niceAttackers(ctx context.Context, s attackSpec) (stop func() (int64, error), err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "nice", "-n", strconv.Itoa(niceness), exe)
	cmd.Env = append(os.Environ(), attackEnv+"="+s.String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	var out, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() (int64, error) {
		stdin.Close()
		err := cmd.Wait()
		n, perr := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
		if err != nil || perr != nil {
			return n, errors.Join(err, perr, errors.New(strings.TrimSpace(stderr.String())))
		}
		return n, nil
	}, nil
}

// attackLoop runs n attackers over loop until ctx ends; it returns how many
// requests were answered and the first error.
func attackLoop(ctx context.Context, c *benchserver.Client, loop []attack, n int, transport string) (int64, error) {
	var (
		wg       sync.WaitGroup
		answered atomic.Int64
		firstErr error
		errOnce  sync.Once
	)
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send, err := attacker(ctx, c, transport)
			if err != nil {
				errOnce.Do(func() { firstErr = err })
				return
			}
			for i := w; ctx.Err() == nil; i++ {
				if err := send(loop[i%len(loop)], next()); err != nil {
					if ctx.Err() == nil {
						errOnce.Do(func() { firstErr = err })
					}
					return
				}
				answered.Add(1)
			}
		}()
	}
	wg.Wait()
	return answered.Load(), firstErr
}

// contentionLoop is the catalogue the attackers loop over: no writes, and
// nothing exclude names.
func contentionLoop(catalogue []attack, exclude string) []attack {
	var loop []attack
	for _, a := range catalogue {
		if !a.write && !excluded(a.name, exclude) {
			loop = append(loop, a)
		}
	}
	return loop
}
