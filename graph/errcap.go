package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// MaxErrors is the most errors one response carries; the rest are counted in
// one last error (code TOO_MANY_ERRORS, extensions.omitted), so a response
// stays small however many errors a document or an execution produces.
const MaxErrors = 20

// CodeTooManyErrors marks the last error of a response whose other errors
// were cut to MaxErrors.
const CodeTooManyErrors = "TOO_MANY_ERRORS"

func tooManyErrors(omitted int) *gqlerror.Error {
	return &gqlerror.Error{
		Message:    fmt.Sprintf("%d more errors were left out", omitted),
		Extensions: map[string]any{"code": CodeTooManyErrors, "omitted": omitted},
	}
}

// cappedRules is the validation rule set (SetValidationRulesFn, gqlgen's
// seam for it) with every rule's errors capped per document: after MaxErrors
// errors, further ones are counted, not made. A document of N same-named
// fields with distinct arguments has N²/2 conflicts; uncapped, 1,105 such
// fields answered with 604,000 errors in 149 MB. Without suggestions, the
// rules that suggest schema names ("did you mean") are swapped for their
// variants that do not, as gqlgen does for two of them; the remaining
// suggestions are cut by the presenter (withoutSuggestion).
func cappedRules(onFail func()) func() *rules.Rules {
	return func() *rules.Rules {
		all := rules.NewDefaultRules()
		state := &capState{onFail: onFail}
		out := rules.NewRules()
		for name, fn := range all.GetInner() {
			out.AddRule(name, state.wrap(fn))
		}
		return out
	}
}

// capState counts the errors of one validation.
type capState struct {
	n       int
	summary *gqlerror.Error
	onFail  func()
}

func (s *capState) wrap(fn core.RuleFunc) core.RuleFunc {
	return func(observers *core.Events, addError core.AddErrFunc) {
		fn(observers, func(options ...core.ErrorOption) {
			s.n++
			switch {
			case s.n == 1 && s.onFail != nil:
				s.onFail()
			case s.n == MaxErrors+1:
				// The summary stands in for this error and every later one;
				// addError makes it, and the option keeps hold of it.
				addError(func(e *gqlerror.Error) {
					*e = *tooManyErrors(1)
					s.summary = e
				})
				return
			case s.n > MaxErrors+1:
				// Only the count: capErrors, which every response passes,
				// words the summary once (formatting it here for each of
				// 11,155 conflicts allocated 65 MB in 2 s of abusebench).
				s.summary.Extensions["omitted"] = s.n - MaxErrors
				return
			}
			addError(options...)
		})
	}
}

// errorCap cuts every response (queries, mutations, each subscription event,
// and refusals) to MaxErrors errors plus one that counts the rest.
type errorCap struct{}

func (errorCap) ExtensionName() string                   { return "HindsightErrorCap" }
func (errorCap) Validate(graphql.ExecutableSchema) error { return nil }

func (errorCap) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp != nil {
		resp.Errors = capErrors(resp.Errors)
	}
	return resp
}

// capErrors keeps the first MaxErrors errors and replaces the rest, and any
// summary cappedRules made, with one summary.
func capErrors(errs gqlerror.List) gqlerror.List {
	omitted, kept := 0, make(gqlerror.List, 0, min(len(errs), MaxErrors+1))
	for _, e := range errs {
		if n, ok := e.Extensions["omitted"].(int); ok {
			omitted += n
			continue
		}
		kept = append(kept, e)
	}
	if omitted == 0 && len(kept) <= MaxErrors {
		return errs
	}
	if len(kept) > MaxErrors {
		omitted += len(kept) - MaxErrors
		kept = kept[:MaxErrors]
	}
	return append(kept, tooManyErrors(omitted))
}
