package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hindsight-dev/hindsight/auth"
	"github.com/hindsight-dev/hindsight/graph/ssetransport"
	"github.com/hindsight-dev/hindsight/graph/wstransport"
)

// Websockets are served by our own gqlgen transport, wstransport; this file
// gives it the endpoint's rules: the connection cap and shutdown (the stream
// hub), authentication at connection_init, the limit of operations per
// connection and the check of client text.

// SubscriberLags calls f with how many positions each live subscription is
// behind the head (for the lag metric).
func (e *Endpoint) SubscriberLags(f func(lag int64)) { e.cfg.Resolver.slow().lags(f) }

// WebsocketHeld returns how many bytes the websocket transport holds for
// clients that it has not yet written to their sockets.
func (e *Endpoint) WebsocketHeld() int64 { return e.ws.Held() }

func (e *Endpoint) websocketTransport() *wstransport.Transport {
	e.ws = wstransport.New(wstransport.Config{
		InitTimeout:   e.cfg.InitTimeout,
		KeepAlive:     e.cfg.KeepAlive,
		WriteTimeout:  e.cfg.StreamWriteTimeout,
		ReadLimit:     e.cfg.MaxBodyBytes,
		MaxOperations: e.cfg.MaxSubscriptionsPerConn,
		TooMany:       e.tooManySubscriptions,
		Open:          e.openWebsocket,
		Init:          e.authenticateWebsocket,
		Acked:         acked,
		CheckText:     CheckJSONText,
		Params:        decodeWebsocketParams,
		// A message is admitted as a POST body of unknown length is: its
		// memory (the body budget) before it is read past largeBody, its
		// decoding (the heavy lane) once it is read whole.
		Reserve:        e.admitBytes,
		SmallMessage:   largeBody,
		MessageTimeout: messageReadTimeout,
		Admit:          e.admitMessageDecoding,
		Log:            e.log,
	})
	return e.ws
}

// openWebsocket admits a websocket as pending for its client address (until
// connection_ack) and registers it with the hub, which caps connections and
// ends them at shutdown. The connection outlives the request (the transport
// serves it from its own goroutine once upgraded), so its context is the
// request's without the request's end.
func (e *Endpoint) openWebsocket(w http.ResponseWriter, r *http.Request) (context.Context, func(), bool) {
	pctx, unpend, ok := e.lim.admitPending(w, r)
	if !ok {
		return nil, nil, false
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(pctx))
	id, err := e.hub.add(cancel)
	if err != nil {
		cancel()
		unpend()
		writeError(w, http.StatusServiceUnavailable, codeOf(err), err.Error())
		return nil, nil, false
	}
	return ctx, func() { e.hub.remove(id); cancel(); unpend() }, true
}

// messageReadTimeout is how long the rest of a large websocket message may
// take once it holds its share of the body budget: what net/http's
// ReadTimeout gives a POST body (package main, readTimeout), a full 8 MiB on
// a slow link. Without it, two clients trickling large messages would hold
// the whole budget for as long as they liked.
const messageReadTimeout = 60 * time.Second

// admitMessageDecoding admits the decoding of a websocket message of n bytes,
// read whole, to the heavy lane if it is heavy, as a POST body's decoding is
// admitted (httptransport.go). Its memory was admitted while it was read
// (Config.Reserve: admitBytes), so it takes no share of the budget here.
func (e *Endpoint) admitMessageDecoding(ctx context.Context, n int) (release func(), ok bool) {
	_, leave := e.lane.enterBodyLane(ctx, n, nil)
	return leave, true
}

// sseTransport is the SSE transport (both modes of graphql-sse) with the
// endpoint's rules.
func (e *Endpoint) sseTransport() *ssetransport.Transport {
	e.sse = ssetransport.New(ssetransport.Config{
		KeepAlive:    e.cfg.KeepAlive,
		WriteTimeout: e.cfg.StreamWriteTimeout,
		Open:         e.openSSE,
		Reserve: func(w http.ResponseWriter, r *http.Request) (func(), bool) {
			_, release, ok := e.lim.admitPending(w, r) // a reservation is pending until its stream opens
			return release, ok
		},
		ReserveTimeout: e.cfg.InitTimeout,
		Owner: func(ctx context.Context) string {
			if p := auth.FromContext(ctx); p != nil {
				return p.Subject
			}
			return ""
		},
		MaxOperations: e.cfg.MaxSubscriptionsPerConn,
		TooMany:       e.tooManySubscriptions,
		Refuse:        e.refuseSSE,
		Decode:        decodeSSE,
	})
	return e.sse
}

// decodeWebsocketParams reads a subscribe or start payload as a plain POST's
// body is read (wirejson.go): an 8 MiB message cost the server 115 ms of CPU
// with encoding/json. The payload needs a query string. The operation
// outlives the message, so its JSON values are copied out of it.
func decodeWebsocketParams(payload []byte) (*graphql.RawParams, func(context.Context) context.Context, bool) {
	if firstByte(payload) != '{' {
		return nil, nil, false
	}
	env, err := decodeEnvelope(payload)
	if err != nil {
		return nil, nil, false
	}
	if _, ok := env.wire.Query.(string); !ok {
		return nil, nil, false
	}
	params, msg := paramsOf(env)
	if msg != "" {
		return nil, nil, false
	}
	return params, withBodyVariables(env.vars), true
}

// withBodyVariables adds vars to an operation's context that outlives the
// request or message that held them (nil when there are none).
func withBodyVariables(vars rawVariables) func(context.Context) context.Context {
	if vars == nil {
		return nil
	}
	return func(ctx context.Context) context.Context { return withRawVariables(ctx, vars, true) }
}

// decodeSSE reads an SSE operation's body as a plain POST's is read
// (requestParams, wirejson.go), so that an 8 MiB body costs what it costs
// over POST. The operation may outlive the request, so its JSON values are
// copied out of the body.
func decodeSSE(r *http.Request) (*graphql.RawParams, func(context.Context) context.Context, string) {
	params, vars, msg := requestParams(r)
	if msg != "" {
		return nil, nil, msg
	}
	return params, withBodyVariables(vars), ""
}

// refuseSSE answers an SSE operation refused before execution as POST would
// (README, "Status codes"), with the statuses of
// application/graphql-response+json: its client asked for an event stream,
// not for application/json, and graphql-sse answers a document that does not
// validate with 400.
func (e *Endpoint) refuseSSE(w http.ResponseWriter, r *http.Request, errs gqlerror.List, resp *graphql.Response) {
	w.Header().Set("Content-Type", mediaJSON+"; charset=utf-8")
	writeRefusal(w, errs, resp, true)
	observeRefusal(r.Context(), e.cfg.Resolver.Observer, graphql.GetStartTime(r.Context()))
}

func (e *Endpoint) tooManySubscriptions(ctx context.Context) *gqlerror.Error {
	return e.present(ctx, &codedError{code: CodeTooManySubscriptions,
		msg: fmt.Sprintf("at most %d subscriptions may be active on one connection", e.cfg.MaxSubscriptionsPerConn)})
}

// openSSE registers an SSE stream with the hub and counts it against its
// principal's connections.
func (e *Endpoint) openSSE(w http.ResponseWriter, r *http.Request) (context.Context, func(), bool) {
	ctx, _, done, ok := e.openStream(w, r)
	if !ok {
		return nil, nil, false
	}
	if p := auth.FromContext(ctx); p != nil && !e.lim.admitPrincipal(ctx, p) {
		done()
		err := e.lim.tooManyConnections()
		writeError(w, http.StatusTooManyRequests, codeOf(err), err.Error())
		return nil, nil, false
	}
	return ctx, done, true
}

// authenticateWebsocket authenticates connection_init: the credential comes
// in its payload, {"Authorization": "Bearer ..."} (browsers cannot set headers
// on a websocket), or else from the upgrade request's Authorization header. A
// failure closes the connection with 4401 (authentication failed) or 4403
// (forbidden).
func (e *Endpoint) authenticateWebsocket(ctx context.Context, r *http.Request, payload map[string]any) (context.Context, time.Time, error) {
	header := transport.InitPayload(payload).Authorization()
	if header == "" && r != nil {
		header = r.Header.Get("Authorization")
	}
	p, err := e.authenticate(ctx, r, header)
	if err != nil {
		ie := &wstransport.InitError{Code: wstransport.CloseUnauthorized, Reason: "Unauthorized", Err: err}
		if errors.Is(err, auth.ErrForbidden) {
			ie.Code, ie.Reason = wstransport.CloseForbidden, "Forbidden"
		}
		e.log.InfoContext(ctx, "websocket refused", "request_id", RequestID(ctx), "close_code", ie.Code, "reason", err)
		return ctx, time.Time{}, ie
	}
	if !e.lim.admitPrincipal(ctx, p) {
		return ctx, time.Time{}, e.lim.principalConnectionsRefused(e.lim.tooManyConnections())
	}
	return auth.WithPrincipal(ctx, p), p.Expires, nil
}
