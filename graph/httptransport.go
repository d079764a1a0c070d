package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Media types of GraphQL over HTTP responses.
const (
	mediaJSON            = "application/json"
	mediaGraphQLResponse = "application/graphql-response+json"
)

// httpTransport is /graphql's transport for plain POST and GET (gqlgen's
// graphql.Transport seam). It replaces gqlgen's transport.POST and
// transport.GET because the status codes are ours (README, "Status codes"):
//
//   - invalid parameters (a body that is not a JSON object, a missing or
//     non-string query, variables or extensions that are not objects): 400;
//   - refused before execution by access control: 401 (with
//     WWW-Authenticate) or 403; by the rate limit: 429 with Retry-After;
//   - a mutation over GET: 405 with Allow: POST;
//   - a document that does not parse, validate or pass a limit, or
//     variables that do not coerce: 200 with application/json, 400 with
//     application/graphql-response+json (the GraphQL-over-HTTP spec's
//     SHOULDs for each media type); such responses have no data entry;
//   - otherwise 200, field errors included.
type httpTransport struct {
	obs  Observer
	lane *heavyLane // for decoding large bodies (lane.go)
}

var _ graphql.Transport = httpTransport{}

func (httpTransport) Supports(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return false
	}
	switch r.Method {
	case http.MethodGet:
		return true
	case http.MethodPost:
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		return err == nil && mt == mediaJSON
	}
	return false
}

func (t httpTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	media := responseMedia(r.Header.Get("Accept"))
	w.Header().Set("Content-Type", media+"; charset=utf-8")
	start := graphql.Now()
	ctx := r.Context()
	if rb, ok := r.Body.(readBytes); ok {
		var leave func()
		ctx, leave = t.lane.enterBodyLane(ctx, len(rb.b), nil) // decoding it is the heavy part
		defer leave()
	}
	params, vars, msg := requestParams(r)
	if msg != "" {
		writeResponse(w, http.StatusBadRequest, refusal(gqlerror.List{
			{Message: msg, Extensions: map[string]any{"code": CodeBadUserInput}}}))
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}

	ctx = context.WithValue(ctx, plainHTTPKey{}, r.Method)
	if vars != nil {
		ctx = withRawVariables(ctx, vars, false) // the operation ends with the request
	}
	oc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		writeRefusal(w, errs, exec.DispatchError(graphql.WithOperationContext(ctx, oc), errs), media == mediaGraphQLResponse)
		observeRefusal(ctx, t.obs, graphql.GetStartTime(r.Context()))
		return
	}
	handler, ctx := exec.DispatchOperation(ctx, oc)
	writeResult(w, handler(ctx))
}

// responseMedia picks the response's media type from Accept: the first of
// application/graphql-response+json and application/json it lists, else
// application/json (also for */* and no Accept, as the spec asks for now).
func responseMedia(accept string) string {
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if mt == mediaGraphQLResponse || mt == mediaJSON {
			return mt
		}
	}
	return mediaJSON
}

// wireParams are the request parameters as sent, each checked for its type
// after decoding.
type wireParams struct {
	Query         any
	OperationName any
	Extensions    any
}

// requestParams reads the GraphQL parameters of a POST body (a JSON object)
// or of a GET's URL, or says in msg why they are invalid. The variables are
// not decoded here but returned as spans of the body (wirejson.go), for
// documentGate to decode those the operation declares.
func requestParams(r *http.Request) (params *graphql.RawParams, vars rawVariables, msg string) {
	var env wireEnvelope
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		if q.Has("query") {
			env.wire.Query = q.Get("query")
		}
		if q.Has("operationName") {
			env.wire.OperationName = q.Get("operationName")
		}
		if v := q.Get("extensions"); v != "" {
			if err := decodeJSON([]byte(v), &env.wire.Extensions); err != nil {
				return nil, nil, "the extensions parameter is not valid JSON"
			}
		}
		if v := q.Get("variables"); v != "" {
			var err error
			env.vars, err = decodeVariablesParam([]byte(v))
			switch {
			case errors.Is(err, errNotObject):
				env.varsNotObject = true
			case err != nil:
				return nil, nil, "the variables parameter is not valid JSON"
			}
		}
	} else {
		var body []byte
		if rb, ok := r.Body.(readBytes); ok {
			body = rb.b // readBody's buffer: no copy of a body of up to MaxBodyBytes
		} else {
			var err error
			if body, err = io.ReadAll(r.Body); err != nil {
				return nil, nil, "the request body could not be read"
			}
		}
		if firstByte(body) != '{' {
			return nil, nil, "the request body must be a JSON object such as {\"query\": \"{ headPosition }\"}"
		}
		var err error
		if env, err = decodeEnvelope(body); err != nil {
			return nil, nil, "the request body is not valid JSON" + jsonProblem(err)
		}
	}
	if params, msg = paramsOf(env); msg != "" {
		return nil, nil, msg
	}
	return params, env.vars, ""
}

// paramsOf checks the types of the decoded parameters (the variables stay
// spans, in env.vars), or says in msg what is wrong.
func paramsOf(env wireEnvelope) (params *graphql.RawParams, msg string) {
	params = &graphql.RawParams{}
	wire := env.wire
	var ok bool
	if params.Extensions, ok = wire.Extensions.(map[string]any); !ok && wire.Extensions != nil {
		return nil, "extensions must be an object"
	}
	_, persisted := params.Extensions["persistedQuery"]
	switch q := wire.Query.(type) {
	case string:
		params.Query = q
	case nil:
		if !persisted { // automatic persisted queries: a hash alone stands for the query
			return nil, "the query parameter is missing"
		}
	default:
		return nil, "query must be a string"
	}
	if params.OperationName, ok = wire.OperationName.(string); !ok && wire.OperationName != nil {
		return nil, "operationName must be a string"
	}
	if env.varsNotObject {
		return nil, "variables must be an object"
	}
	return params, ""
}

// decodeJSON decodes with numbers kept as json.Number, as gqlgen expects.
func decodeJSON(b []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(dst)
}

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// refusalStatus is the status of a request refused before execution.
func refusalStatus(errs gqlerror.List, graphqlResponse bool) int {
	for _, e := range errs {
		code, _ := e.Extensions["code"].(string)
		switch {
		case code == CodeUnauthenticated:
			return http.StatusUnauthorized
		case code == CodeForbidden:
			return http.StatusForbidden
		case code == CodeRateLimited:
			return http.StatusTooManyRequests
		case e.Extensions["reason"] == ReasonMethod && strings.HasPrefix(e.Message, "GET"):
			return http.StatusMethodNotAllowed
		}
	}
	if graphqlResponse {
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// writeRefusal answers an operation refused before execution (errs, as
// resp after gqlgen's error presenter and interceptors) with its status and
// headers (README, "Status codes"). Plain POST and GET and both SSE modes
// answer so.
func writeRefusal(w http.ResponseWriter, errs gqlerror.List, resp *graphql.Response, graphqlResponse bool) {
	status := refusalStatus(errs, graphqlResponse)
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="hindsight"`)
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", retryAfter(errs))
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", "POST")
	}
	writeResponse(w, status, refusal(resp.Errors))
}

// retryAfter is the Retry-After header of a rate-limited request: whole
// seconds, at least 1.
func retryAfter(errs gqlerror.List) string {
	secs := 1.0
	for _, e := range errs {
		if s, ok := e.Extensions["retryAfterSeconds"].(float64); ok {
			secs = max(secs, math.Ceil(s))
		}
	}
	return strconv.Itoa(int(secs))
}

// refusal is the response to a request refused before execution: errors
// only, without a data entry (GraphQL spec, "Response Format": no data when
// execution did not start).
func refusal(errs gqlerror.List) any {
	return struct {
		Errors gqlerror.List `json:"errors"`
	}{capErrors(errs)}
}

// writeResult writes an executed operation's response, its data as gqlgen's
// executor wrote it. json.Marshal would copy the data twice more (checking
// it into its buffer, then into the bytes it returns): for two pages of 4
// MiB of event data, the largest answer the limits allow, the request
// allocated 28.9 MiB (cmd/abusebench). The data is JSON the executor wrote
// field by field, so it is written unchanged; the rest is encoded by
// encoding/json, in the order of graphql.Response's fields. A response of
// incremental delivery (label, path, hasNext), which plain HTTP does not
// serve, is left to json.Marshal whole.
func writeResult(w http.ResponseWriter, resp *graphql.Response) {
	if resp == nil || resp.Label != "" || resp.Path != nil || resp.HasNext != nil {
		writeResponse(w, http.StatusOK, resp)
		return
	}
	head := []byte{'{'}
	if len(resp.Errors) > 0 {
		b, err := json.Marshal(resp.Errors)
		if err != nil {
			writeResponse(w, http.StatusOK, resp) // as before: the encoding error's own answer
			return
		}
		head = append(append(append(head, `"errors":`...), b...), ',')
	}
	head = append(head, `"data":`...)
	data := []byte(resp.Data)
	if len(data) == 0 {
		data = []byte("null")
	}
	tail := []byte{}
	if len(resp.Extensions) > 0 {
		b, err := json.Marshal(resp.Extensions)
		if err != nil {
			writeResponse(w, http.StatusOK, resp)
			return
		}
		tail = append(append(tail, `,"extensions":`...), b...)
	}
	tail = append(tail, '}')
	w.Header().Set("X-Content-Type-Options", "nosniff") // event data's < > & are not escaped as \u003c etc.
	w.WriteHeader(http.StatusOK)
	for _, b := range [][]byte{head, data, tail} {
		if _, err := w.Write(b); err != nil {
			return
		}
	}
}

func writeResponse(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"errors":[{"message":"the response could not be encoded","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
