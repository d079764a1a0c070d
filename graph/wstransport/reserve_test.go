package wstransport_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/hindsight-dev/hindsight/graph/wstransport"
)

// TestReserveBeforeTheRest: a message that goes past SmallMessage is
// admitted (Config.Reserve) before more of it is read, for its size when its
// frame is the last, else for ReadLimit; a client that then stops sending
// is closed with 1008 once MessageTimeout has passed, and the reservation
// is released, so that a slow client cannot hold a share of the budget.
func TestReserveBeforeTheRest(t *testing.T) {
	const small, limit = 1 << 10, 64 << 10
	for _, c := range []struct {
		name   string
		fin    bool
		length int64 // of the frame
		want   int64 // reserved
	}{
		{"the last frame: its size", true, 4 << 10, 4 << 10},
		{"a fragment: the limit", false, 4 << 10, limit},
	} {
		t.Run(c.name, func(t *testing.T) {
			reserved := make(chan int64, 1)
			released := make(chan struct{})
			tr := wstransport.New(wstransport.Config{
				InitTimeout: time.Minute, KeepAlive: time.Minute, WriteTimeout: time.Minute,
				ReadLimit: limit, SmallMessage: small, MessageTimeout: 50 * time.Millisecond,
				Open: func(w http.ResponseWriter, r *http.Request) (context.Context, func(), bool) {
					return context.Background(), func() {}, true
				},
				Reserve: func(ctx context.Context, n int64) (func(), bool) {
					reserved <- n
					return func() { close(released) }, true
				},
			})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tr.Do(w, r, nil) }))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			nc, br, _, err := ws.Dialer{Protocols: []string{wstransport.ProtocolTransportWS}}.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if br == nil {
				br = bufio.NewReader(nc)
			}
			// A header and half of the payload, then nothing.
			h := ws.Header{Fin: c.fin, OpCode: ws.OpText, Length: c.length, Masked: true, Mask: ws.NewMask()}
			if err := ws.WriteHeader(nc, h); err != nil {
				t.Fatal(err)
			}
			if _, err := nc.Write(make([]byte, c.length/2)); err != nil {
				t.Fatal(err)
			}
			if n := <-reserved; n != c.want {
				t.Fatalf("reserved %d bytes, want %d", n, c.want)
			}
			code, reason := readClose(t, nc, br)
			if code != wstransport.ClosePolicyViolation {
				t.Fatalf("closed with %d %q, want %d", code, reason, wstransport.ClosePolicyViolation)
			}
			select {
			case <-released:
			case <-ctx.Done():
				t.Fatal("the reservation was not released")
			}
		})
	}
}

// readClose reads frames until a close frame and returns its code and reason.
func readClose(t *testing.T, nc net.Conn, br *bufio.Reader) (ws.StatusCode, string) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	r := wsutil.NewClientSideReader(br)
	for {
		h, err := r.NextFrame()
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if h.OpCode != ws.OpClose {
			_ = r.Discard()
			continue
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(r, p); err != nil {
			t.Fatal(err)
		}
		return ws.ParseCloseFrameData(p)
	}
}
