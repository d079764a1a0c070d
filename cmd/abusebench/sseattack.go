package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/hindsight-dev/hindsight/internal/benchserver"
)

// -transport sse: the attackers send each request of the catalogue as an
// SSE POST (graphql-sse's distinct connections mode, Accept:
// text/event-stream). A request refused before execution is answered with
// a status and a JSON body, as over POST; one that runs with a "next" event
// and a "complete".
func sseDo(ctx context.Context, c *benchserver.Client, a attack, n int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/graphql", bytes.NewReader(a.body(n)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body []byte
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		if body, err = nextEvent(resp.Body); err != nil {
			return err
		}
	} else if body, err = io.ReadAll(resp.Body); err != nil {
		return err
	}
	got, err := outcome(body)
	if err != nil {
		return fmt.Errorf("sse: status %d, %.300s: %w", resp.StatusCode, body, err)
	}
	if got != a.want {
		return fmt.Errorf("sse: got %s, want %s: status %d, %.300s", got, a.want, resp.StatusCode, body)
	}
	return nil
}

// nextEvent returns the data of a stream's first "next" event, and reads
// the stream to its end.
func nextEvent(r io.Reader) ([]byte, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var event string
	var data []byte
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			if data != nil && err == io.EOF {
				return data, nil
			}
			return nil, fmt.Errorf("sse: the stream ended without a next event: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case bytes.HasPrefix(line, []byte("event: ")):
			event = string(line[len("event: "):])
		case bytes.HasPrefix(line, []byte("data: ")) && event == "next" && data == nil:
			data = append([]byte(nil), line[len("data: "):]...)
		}
	}
}
