package graph

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph/scalar"
	"github.com/hindsight-dev/hindsight/projections"
)

// Error codes, in extensions.code of every error. The first six are the
// contract of issue 3; GRAPHQL_PARSE_FAILED and GRAPHQL_VALIDATION_FAILED are
// gqlgen's codes for a document that does not parse or validate.
const (
	CodeWrongExpectedVersion = "WRONG_EXPECTED_VERSION"
	CodeBadUserInput         = "BAD_USER_INPUT"
	CodeNotFound             = "NOT_FOUND"
	CodeInvalidState         = "INVALID_STATE"
	CodeStoreUnavailable     = "STORE_UNAVAILABLE"
	CodeInternal             = "INTERNAL_SERVER_ERROR"
	CodeProjectionLagging    = "PROJECTION_LAGGING"
	CodeSubscriberTooSlow    = "SUBSCRIBER_TOO_SLOW"
	CodeTooManySubscriptions = "TOO_MANY_SUBSCRIPTIONS"
	CodeTooManyConnections   = "TOO_MANY_CONNECTIONS"
	CodeForbidden            = "FORBIDDEN"
	CodeUnauthenticated      = "UNAUTHENTICATED"
	CodeRateLimited          = "RATE_LIMITED"
	CodeShuttingDown         = "SHUTTING_DOWN"
	CodeProjectionFaulted    = "PROJECTION_FAULTED" // a declarative projection's reducer failed
	CodeStateTooLarge        = "STATE_TOO_LARGE"    // Stream.state over projections.MaxStreamStateBytes
	CodeParseFailed          = errcode.ParseFailed
	CodeValidationFailed     = errcode.ValidationFailed
)

// inputError is a client mistake found by a resolver; its message is safe to
// show.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func badInputf(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

// codedError is an error whose code and message are decided where it is made
// (limits of the endpoint).
type codedError struct {
	code, msg string
}

func (e *codedError) Error() string { return e.msg }

// errInternal is what a recovered panic becomes.
var errInternal = errors.New("internal error")

// presenter turns every error into a GraphQL error with extensions.code. It is
// the only place that decides codes and public messages: messages of domain
// errors are meant for people and shown as they are; anything unexpected is
// logged with the request id and shown as a generic INTERNAL_SERVER_ERROR, so
// no internal detail leaks (guarantee 9).
//
// Without suggestions (introspection off), gqlparser's "Did you mean ...?"
// hints are cut from every message, and so is any other schema name the
// document did not name itself (hideUnnamed).
func presenter(log *slog.Logger, suggest bool, reject func(context.Context, string)) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		if gqlErr == nil {
			return nil
		}
		cause := gqlErr.Err
		if cause == nil {
			// Made by gqlgen or gqlparser, not by a resolver.
			if !suggest {
				gqlErr.Message, _, _ = strings.Cut(gqlErr.Message, " Did you mean ")
				if graphql.HasOperationContext(ctx) {
					gqlErr.Message = hideUnnamed(gqlErr.Message, graphql.GetOperationContext(ctx).RawQuery)
				}
			}
			return presentProtocolError(ctx, log, gqlErr, reject)
		}
		code, msg, ext := classify(cause)
		if code == CodeInternal || code == CodeStoreUnavailable {
			id := RequestID(ctx)
			level := slog.LevelError
			if code == CodeStoreUnavailable {
				level = slog.LevelWarn
			}
			log.Log(ctx, level, "graphql error", "code", code, "request_id", id,
				"path", gqlErr.Path.String(), "err", cause)
			if code == CodeInternal {
				msg = "internal server error (request id " + id + ")"
				ext = map[string]any{"requestId": id}
			}
		}
		out := &gqlerror.Error{
			Err:       cause,
			Message:   shortenQuotes(msg),
			Path:      gqlErr.Path,
			Locations: gqlErr.Locations,
			Extensions: map[string]any{
				"code": code,
			},
		}
		for k, v := range ext {
			out.Extensions[k] = v
		}
		return out
	}
}

// classify decides the code, the public message and extra extensions of an
// error returned by a resolver or an argument's unmarshaler.
func classify(err error) (code, msg string, ext map[string]any) {
	var (
		wev   *eventstore.WrongExpectedVersionError
		in    *inputError
		sc    *scalar.Error
		rule  *projections.RuleError
		fault *projections.FaultError
		large *projections.StateTooLargeError
		coded *codedError
	)
	switch {
	case errors.As(err, &coded):
		return coded.code, coded.msg, nil
	case errors.As(err, &in):
		return CodeBadUserInput, in.msg, nil
	case errors.As(err, &sc):
		return CodeBadUserInput, sc.Msg, nil
	case errors.As(err, &wev):
		return CodeWrongExpectedVersion, wev.Error(), map[string]any{
			"actualVersion": wev.Actual,
			"streamId":      wev.StreamID,
		}
	case errors.Is(err, eventstore.ErrInvalidArgument):
		return CodeBadUserInput, after(err, eventstore.ErrInvalidArgument), nil
	case errors.Is(err, projections.ErrInvalidInput):
		return CodeBadUserInput, after(err, projections.ErrInvalidInput), nil
	case errors.Is(err, eventstore.ErrDuplicateEventID):
		return CodeBadUserInput, after(err, nil), nil
	case errors.As(err, &fault):
		return CodeProjectionFaulted, fault.Error(), faultExtensions(fault.Fault)
	case errors.Is(err, projections.ErrForbidden):
		return CodeForbidden, after(err, projections.ErrForbidden), nil
	case errors.As(err, &rule):
		return CodeInvalidState, rule.Msg, nil
	case errors.Is(err, projections.ErrInvalidState):
		return CodeInvalidState, after(err, nil), nil
	case errors.Is(err, eventstore.ErrStreamNotFound), errors.Is(err, projections.ErrNotFound):
		return CodeNotFound, after(err, nil), nil
	case errors.As(err, &large):
		what := fmt.Sprintf("is %d bytes as JSON at version %d, over the limit of %d bytes", large.Bytes, large.Version, large.Limit)
		ext := map[string]any{"version": large.Version, "stateBytes": large.Bytes, "limitBytes": large.Limit}
		if large.Values > 0 {
			what = fmt.Sprintf("holds %d JSON values at version %d, over the limit of %d", large.Values, large.Version, projections.MaxStreamStateValues)
			ext = map[string]any{"version": large.Version, "stateValues": large.Values, "limitValues": projections.MaxStreamStateValues}
		}
		return CodeStateTooLarge, "the stream's state " + what + "; its state is not served at or after that version: read the stream's events instead", ext
	case errors.Is(err, projections.ErrProjectionLagging):
		return CodeProjectionLagging, "the read model has not reached the requested point yet; retry shortly", nil
	case errors.Is(err, eventstore.ErrSubscriberTooSlow):
		return CodeSubscriberTooSlow, "the subscriber fell too far behind and was ended; " +
			"subscribe again with afterPosition (or afterVersion) set to the last one received", nil
	case errors.Is(err, eventstore.ErrNotReady):
		return CodeStoreUnavailable, "the event store is still loading; retry shortly", nil
	case errors.Is(err, eventstore.ErrStoreUnavailable), errors.Is(err, eventstore.ErrClosed),
		errors.Is(err, context.DeadlineExceeded):
		return CodeStoreUnavailable, "the event store is unavailable; retry later", nil
	}
	return CodeInternal, "", nil
}

// after returns the part of err's message after the sentinel's text (which
// drops prefixes such as `eventstore: append "x": invalid argument: `), or
// after the last "eventstore: "/"projections: " package prefix.
func after(err error, sentinel error) string {
	msg := err.Error()
	if sentinel != nil {
		if _, rest, ok := strings.Cut(msg, sentinel.Error()+": "); ok {
			return rest
		}
	}
	for _, p := range []string{"eventstore: ", "projections: "} {
		if i := strings.LastIndex(msg, p); i >= 0 {
			msg = msg[i+len(p):]
		}
	}
	return msg
}

// presentProtocolError gives a code to errors that gqlgen and gqlparser make
// themselves. Parse and validation errors keep gqlgen's codes; a variable
// that does not fit its type, an exceeded limit and an unreadable request
// body are BAD_USER_INPUT. Errors without a code are internal (for example a
// resolver returning null for a non-null field).
func presentProtocolError(ctx context.Context, log *slog.Logger, e *gqlerror.Error, reject func(context.Context, string)) *gqlerror.Error {
	e.Message = shortenQuotes(e.Message)
	code, _ := e.Extensions["code"].(string)
	set := func(c string) *gqlerror.Error {
		if e.Extensions == nil {
			e.Extensions = map[string]any{}
		}
		e.Extensions["code"] = c
		return e
	}
	switch {
	case code == CodeParseFailed && (strings.Contains(e.Message, "token limit") || strings.Contains(e.Message, "nesting depth")):
		return set(CodeBadUserInput)
	case code == CodeValidationFailed && e.Rule == "" && len(e.Path) > 0 && e.Path[0] == ast.PathName("variable"):
		// Variable coercion: the document is fine, a value is not.
		return set(CodeBadUserInput)
	case code == ReasonComplexity: // gqlgen's complexity limit, after validation
		e.Extensions["reason"] = code
		reject(ctx, ReasonComplexity)
		return set(CodeBadUserInput)
	case code != "":
		return e
	case strings.HasPrefix(e.Message, "json request body could not be decoded"),
		strings.HasPrefix(e.Message, "invalid json"):
		e.Message = "the request body is not valid JSON"
		return set(CodeBadUserInput)
	case strings.HasPrefix(e.Message, "provided APQ hash does not match"),
		strings.HasPrefix(e.Message, "invalid APQ extension"),
		strings.HasPrefix(e.Message, "unsupported APQ version"):
		// Automatic persisted queries (apq.go): the client's mistake.
		return set(CodeBadUserInput)
	case strings.HasPrefix(e.Message, "could not read request body"),
		strings.HasPrefix(e.Message, "could not get json request body"):
		if strings.Contains(e.Message, "too large") {
			e.Message = "the request body is too large"
		} else {
			e.Message = "the request body could not be read"
		}
		return set(CodeBadUserInput)
	}
	id := RequestID(ctx)
	log.ErrorContext(ctx, "graphql error", "code", CodeInternal, "request_id", id,
		"path", e.Path.String(), "err", e.Message)
	return &gqlerror.Error{
		Message:    "internal server error (request id " + id + ")",
		Path:       e.Path,
		Locations:  e.Locations,
		Extensions: map[string]any{"code": CodeInternal, "requestId": id},
	}
}

// recoverFunc turns a panic in a resolver into INTERNAL_SERVER_ERROR; the
// panic and its stack go to the log only.
func recoverFunc(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, v any) error {
		log.ErrorContext(ctx, "panic in resolver", "request_id", RequestID(ctx),
			"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		return errInternal
	}
}

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to, or "-".
func RequestID(ctx context.Context) string {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		return id
	}
	return "-"
}

// WithRequestID attaches a request id to ctx.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// newRequestID returns 16 random hex digits.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validRequestID accepts a client's X-Request-Id only if it cannot garble logs.
func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// maxQuoted is the most characters of a client's input an error message
// quotes.
const maxQuoted = 64

// quote shows a client's input in an error message: Go-quoted (Unicode
// shown as itself, control characters escaped), at most maxQuoted
// characters, the rest replaced by "…".
func quote(s string) string {
	if utf8.RuneCountInString(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	n := 0
	for i := range s {
		if n == maxQuoted {
			return strconv.Quote(s[:i]) + "…"
		}
		n++
	}
	return strconv.Quote(s)
}

// shortenQuotes cuts every quoted string in a message to maxQuoted
// characters (quote), wherever the message was made: resolvers, the store
// and gqlparser all quote client input with %q, and a client's 10 KB event
// id must not come back in full.
func shortenQuotes(msg string) string {
	if len(msg) <= maxQuoted {
		return msg
	}
	return mapQuoted(msg, func(lit, s string) string {
		if utf8.RuneCountInString(s) > maxQuoted {
			return quote(s)
		}
		return lit
	})
}

// hideUnnamed replaces each quoted name in a validation message that the
// document does not contain with "(hidden)": with introspection off, `Field
// "stream" argument "id" of type "String!" is required` or `Cannot query
// field "x" on type "Stream"` would otherwise reveal the schema bit by bit.
// A quoted text counts as named when every identifier in it occurs in the
// document as an identifier.
func hideUnnamed(msg, doc string) string {
	var names map[string]bool
	return mapQuoted(msg, func(lit, s string) string {
		if names == nil {
			names = identifiers(doc)
		}
		for id := range identifiers(s) {
			if !names[id] {
				return "(hidden)"
			}
		}
		return lit
	})
}

// mapQuoted replaces each Go-quoted string literal in msg with what f makes
// of it, given the literal and its unquoted value; other text is kept.
func mapQuoted(msg string, f func(lit, s string) string) string {
	var b strings.Builder
	for i := 0; i < len(msg); {
		if msg[i] != '"' {
			b.WriteByte(msg[i])
			i++
			continue
		}
		lit, err := strconv.QuotedPrefix(msg[i:])
		if err != nil {
			b.WriteByte(msg[i])
			i++
			continue
		}
		if s, err := strconv.Unquote(lit); err == nil {
			b.WriteString(f(lit, s))
		} else {
			b.WriteString(lit)
		}
		i += len(lit)
	}
	return b.String()
}

// identifiers returns the GraphQL names ([_A-Za-z][_0-9A-Za-z]*) in s.
func identifiers(s string) map[string]bool {
	ids := map[string]bool{}
	start := -1
	for i := 0; i <= len(s); i++ {
		c := byte(0)
		if i < len(s) {
			c = s[i]
		}
		letter := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		switch {
		case start < 0 && letter:
			start = i
		case start >= 0 && !letter && !(c >= '0' && c <= '9'):
			ids[s[start:i]] = true
			start = -1
		}
	}
	return ids
}
