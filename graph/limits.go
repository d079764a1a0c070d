package graph

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/hindsight-dev/hindsight/auth"
)

// The limits run before the work they bound, cheapest first:
//
//  1. body size (readBody, before the body is decoded);
//  2. the rate limit (rateGate, the first operation-parameter hook, so
//     before anything is parsed);
//  3. parse, with the token limit (documentGate);
//  4. one linear pass over the document counting fields, aliases, depth
//     and directives (documentGate), plus the role check and the HTTP
//     method rules, which need only the operation's kind;
//  5. validation (gqlgen), whose errors are capped (cappedRules);
//  6. execution, whose response errors are capped (errorCap).
//
// Why a field limit: gqlparser's OverlappingFieldsCanBeMerged compares every
// pair of fields that share a response name, so validation grows with the
// square of such fields, and each conflicting pair allocates an error.
// 9,000 `__typename` (about 9,000 tokens, inside a 10,000-token limit) took
// 10 s; 2,000 `stream(id:"sN"){id}` took 3.4 s and 2 million errors. The
// token limit bounds parsing, not validation: only a field count does. At
// the default of 300 fields, cmd/abusebench measured the worst documents at
// 9 ms of CPU and 8.4 MiB (150 × stream(id:"sN"){id}, 11,175 conflicts
// capped to 20 errors) and 4 ms and 1.3 MiB (300 × __typename).

// Rejection reasons, in extensions.reason of limit errors and in the
// rejection metric.
const (
	ReasonRateLimited   = "RATE_LIMITED"
	ReasonMaxTokens     = "MAX_TOKENS"
	ReasonMaxFields     = "MAX_FIELDS"
	ReasonMaxDepth      = "MAX_DEPTH"
	ReasonMaxAliases    = "MAX_ALIASES"
	ReasonMaxDirectives = "MAX_DIRECTIVES"
	ReasonComplexity    = "COMPLEXITY_LIMIT_EXCEEDED"
	ReasonMethod        = "METHOD"
)

// rateGate takes a token from the principal's rate limit before anything is
// parsed: an over-rate client's document, however large, costs no parsing
// or validation. It runs first among the operation-parameter hooks (before
// APQ), for every transport.
type rateGate struct {
	limiter *auth.RateLimiter
	reject  func(ctx context.Context, reason string)
}

func (rateGate) ExtensionName() string                   { return "HindsightRateGate" }
func (rateGate) Validate(graphql.ExecutableSchema) error { return nil }

func (g rateGate) MutateOperationParameters(ctx context.Context, _ *graphql.RawParams) *gqlerror.Error {
	p := auth.FromContext(ctx)
	if p == nil {
		g.reject(ctx, CodeUnauthenticated)
		return &gqlerror.Error{Message: errUnauthenticated.msg, Extensions: map[string]any{"code": CodeUnauthenticated}}
	}
	if g.limiter == nil {
		return nil
	}
	if ok, wait := g.limiter.Allow(p.Subject); !ok {
		g.reject(ctx, ReasonRateLimited)
		return &gqlerror.Error{Message: "rate limit exceeded; retry later",
			Extensions: map[string]any{"code": CodeRateLimited, "retryAfterSeconds": math.Ceil(wait.Seconds()*1000) / 1000}}
	}
	return nil
}

// docLimits are the per-document limits of the linear pass.
type docLimits struct {
	maxTokens, maxFields, maxDepth, maxAliases, maxDirectives int
	noIntrospection                                           bool
}

// documentGate parses the document (unless gqlgen's query cache already
// holds it, which means it passed before) and refuses it, before gqlgen
// validates it, when it exceeds a limit, when the principal's role does not
// allow the operation's kind, or when a plain HTTP request carries an
// operation it cannot (a mutation over GET, a subscription without a
// stream). gqlgen parses an accepted document a second time: parsing is
// linear and bounded by the token limit, while gqlgen offers no seam between
// its parse and its validation.
type documentGate struct {
	limits docLimits
	cache  graphql.Cache[*ast.QueryDocument]
	vars   strictVariables
	reject func(ctx context.Context, reason string)
	lane   *heavyLane
}

func (documentGate) ExtensionName() string                   { return "HindsightDocumentGate" }
func (documentGate) Validate(graphql.ExecutableSchema) error { return nil }

func (g documentGate) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	doc, cached := g.cache.Get(ctx, params.Query)
	if !cached {
		if len(params.Query) > heavyQuery {
			g.lane.enterForValidation(ctx) // parsing it (twice: here and in gqlgen) is heavy already
		}
		var err error
		doc, err = parser.ParseQueryWithTokenLimit(&ast.Source{Input: params.Query}, g.limits.maxTokens)
		if err != nil {
			return g.parseError(ctx, err)
		}
		cost, refused := g.limits.check(doc)
		if refused != nil {
			g.reject(ctx, reasonOf(refused))
			return refused
		}
		if cost.fields >= heavyFields {
			g.lane.enterForValidation(ctx) // before validation, the heavy part of such a document
		}
	}
	op := doc.Operations.ForName(params.OperationName)
	if op == nil {
		return nil // gqlgen reports it
	}
	if err := methodAllows(ctx, op.Operation); err != nil {
		g.reject(ctx, ReasonMethod)
		return err
	}
	need := auth.Reader
	if op.Operation == ast.Mutation {
		need = auth.Writer
	}
	if p := auth.FromContext(ctx); p != nil && !p.Can(need) {
		g.reject(ctx, CodeForbidden)
		return &gqlerror.Error{Message: fmt.Sprintf("%ss need the %s role", op.Operation, need),
			Extensions: map[string]any{"code": CodeForbidden}}
	}
	if raw, outlives := takeRawVariables(ctx); raw != nil { // plain HTTP and SSE: decode what op declares (wirejson.go)
		vars, err := raw.variablesFor(g.vars.schema, op, outlives)
		if err != nil {
			return &gqlerror.Error{Message: "the variables are not valid JSON", Extensions: map[string]any{"code": CodeBadUserInput}}
		}
		params.Variables = vars
	}
	return g.vars.variables(op, params.Variables)
}

// parseError codes a parse failure: over the token limit is a limit
// (BAD_USER_INPUT, MAX_TOKENS); anything else is GRAPHQL_PARSE_FAILED, as
// gqlgen would report it.
func (g documentGate) parseError(ctx context.Context, err error) *gqlerror.Error {
	e, ok := err.(*gqlerror.Error)
	if !ok {
		e = gqlerror.Wrap(err)
	}
	if strings.Contains(e.Message, "token limit") {
		g.reject(ctx, ReasonMaxTokens)
		return limitError(ReasonMaxTokens, fmt.Sprintf("the document has more than %d tokens", g.limits.maxTokens))
	}
	g.reject(ctx, CodeParseFailed)
	e.Extensions = map[string]any{"code": CodeParseFailed}
	return e
}

func limitError(reason, msg string) *gqlerror.Error {
	return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": CodeBadUserInput, "reason": reason}}
}

func reasonOf(e *gqlerror.Error) string {
	if r, ok := e.Extensions["reason"].(string); ok {
		return r
	}
	if c, ok := e.Extensions["code"].(string); ok {
		return c
	}
	return CodeBadUserInput
}

// methodAllows refuses operations a plain HTTP request cannot carry:
// mutations over GET (a link or an image could trigger them; 405) and
// subscriptions over plain GET or POST (they need a websocket or SSE).
func methodAllows(ctx context.Context, kind ast.Operation) *gqlerror.Error {
	method, _ := ctx.Value(plainHTTPKey{}).(string)
	switch {
	case method == "":
		return nil
	case kind == ast.Subscription:
		return limitError(ReasonMethod, "subscriptions need a websocket or SSE (Accept: text/event-stream)")
	case method == http.MethodGet && kind != ast.Query:
		return limitError(ReasonMethod, "GET requests only allow queries; send mutations with POST")
	}
	return nil
}

type plainHTTPKey struct{}

// check measures the whole document in one pass (gqlgen validates every
// operation and fragment in it, not only the one that runs) and refuses it
// when it is over a limit. Fragments count where they are spread, each
// measured once, so spreading a fragment does not hide its cost;
// fragments never spread count once.
func (l docLimits) check(doc *ast.QueryDocument) (opCost, *gqlerror.Error) {
	m := &opMeter{doc: doc, frags: map[string]*opCost{}}
	var total opCost
	for _, op := range doc.Operations {
		c := m.selectionSet(op.SelectionSet)
		c.directives = sat(c.directives + len(op.Directives))
		for _, v := range op.VariableDefinitions {
			c.directives = sat(c.directives + len(v.Directives))
		}
		total.add(c, 0)
	}
	for _, f := range doc.Fragments {
		if _, spread := m.frags[f.Name]; !spread {
			total.add(m.fragment(f.Name), 0)
		}
	}
	switch {
	case l.noIntrospection && total.introspection:
		return total, &gqlerror.Error{Message: "introspection is disabled", Extensions: map[string]any{"code": CodeValidationFailed}}
	case total.fields > l.maxFields:
		return total, limitError(ReasonMaxFields, fmt.Sprintf("the document has %s fields (fragments counted where spread); at most %d are allowed", atLeast(total.fields), l.maxFields))
	case total.depth > l.maxDepth:
		return total, limitError(ReasonMaxDepth, fmt.Sprintf("the document is nested %s levels deep; at most %d are allowed", atLeast(total.depth), l.maxDepth))
	case total.aliases > l.maxAliases:
		return total, limitError(ReasonMaxAliases, fmt.Sprintf("the document has %s aliases; at most %d are allowed", atLeast(total.aliases), l.maxAliases))
	case total.directives > l.maxDirectives:
		return total, limitError(ReasonMaxDirectives, fmt.Sprintf("the document has %s directives; at most %d are allowed", atLeast(total.directives), l.maxDirectives))
	}
	return total, nil
}

// atLeast prints a saturated count as "over N".
func atLeast(n int) string {
	if n >= satMax {
		return fmt.Sprintf("over %d", satMax)
	}
	return fmt.Sprint(n)
}

// opCost is what a selection set adds to a document.
type opCost struct {
	fields, depth, aliases, directives int
	introspection                      bool
}

func (c *opCost) add(o opCost, depthOffset int) {
	c.fields = sat(c.fields + o.fields)
	c.depth = max(c.depth, sat(o.depth+depthOffset))
	c.aliases = sat(c.aliases + o.aliases)
	c.directives = sat(c.directives + o.directives)
	c.introspection = c.introspection || o.introspection
}

const satMax = 1 << 30

// sat saturates counts, which fragments spread many times can multiply.
func sat(n int) int { return min(n, satMax) }

type opMeter struct {
	doc   *ast.QueryDocument
	frags map[string]*opCost
}

func (m *opMeter) selectionSet(set ast.SelectionSet) opCost {
	var c opCost
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			f := opCost{fields: 1, directives: len(s.Directives),
				introspection: s.Name == "__schema" || s.Name == "__type"}
			if s.Alias != "" && s.Alias != s.Name {
				f.aliases = 1
			}
			f.add(m.selectionSet(s.SelectionSet), 0)
			c.add(f, 1)
		case *ast.InlineFragment:
			c.add(opCost{directives: len(s.Directives)}, 0)
			c.add(m.selectionSet(s.SelectionSet), 0)
		case *ast.FragmentSpread:
			c.add(opCost{directives: len(s.Directives)}, 0)
			c.add(m.fragment(s.Name), 0)
		}
	}
	return c
}

func (m *opMeter) fragment(name string) opCost {
	if c, ok := m.frags[name]; ok {
		return *c // measured, or being measured (a cycle, which validation refuses anyway)
	}
	c := &opCost{}
	m.frags[name] = c
	def := m.doc.Fragments.ForName(name)
	if def == nil {
		return *c
	}
	*c = m.selectionSet(def.SelectionSet)
	c.directives = sat(c.directives + len(def.Directives))
	return *c
}
