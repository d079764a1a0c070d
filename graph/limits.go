package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// queryLimits refuses operations deeper, with more aliases or with more
// directives than configured, in the spirit of GraphQL Armor, and
// introspection when it is disabled. Fragments count where they are spread
// (each fragment is measured once), so spreading a fragment does not hide
// its cost. It runs after validation, on the operation that will execute.
type queryLimits struct {
	maxDepth, maxAliases, maxDirectives int
	noIntrospection                     bool
}

func (queryLimits) ExtensionName() string                   { return "HindsightQueryLimits" }
func (queryLimits) Validate(graphql.ExecutableSchema) error { return nil }

func (l queryLimits) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	m := &opMeter{doc: oc.Doc, frags: map[string]*opCost{}}
	c := m.selectionSet(oc.Operation.SelectionSet)
	c.directives = sat(c.directives + len(oc.Operation.Directives))
	for _, v := range oc.Operation.VariableDefinitions {
		c.directives = sat(c.directives + len(v.Directives))
	}
	fail := func(reason, msg string) *gqlerror.Error {
		return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": CodeBadUserInput, "reason": reason}}
	}
	switch {
	case l.noIntrospection && c.introspection:
		return &gqlerror.Error{Message: "introspection is disabled", Extensions: map[string]any{"code": CodeValidationFailed}}
	case c.depth > l.maxDepth:
		return fail("MAX_DEPTH", fmt.Sprintf("the operation is nested %d levels deep; at most %d are allowed", c.depth, l.maxDepth))
	case c.aliases > l.maxAliases:
		return fail("MAX_ALIASES", fmt.Sprintf("the operation has %d aliases; at most %d are allowed", c.aliases, l.maxAliases))
	case c.directives > l.maxDirectives:
		return fail("MAX_DIRECTIVES", fmt.Sprintf("the operation has %d directives; at most %d are allowed", c.directives, l.maxDirectives))
	}
	return nil
}

// opCost is what a selection set adds to an operation.
type opCost struct {
	depth, aliases, directives int
	introspection              bool
}

func (c *opCost) add(o opCost, depthOffset int) {
	c.depth = max(c.depth, sat(o.depth+depthOffset))
	c.aliases = sat(c.aliases + o.aliases)
	c.directives = sat(c.directives + o.directives)
	c.introspection = c.introspection || o.introspection
}

// sat saturates counts, which fragments spread many times can multiply.
func sat(n int) int { return min(n, 1<<30) }

type opMeter struct {
	doc   *ast.QueryDocument
	frags map[string]*opCost
}

func (m *opMeter) selectionSet(set ast.SelectionSet) opCost {
	var c opCost
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			f := opCost{directives: len(s.Directives),
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
	if m.doc == nil {
		return *c
	}
	def := m.doc.Fragments.ForName(name)
	if def == nil {
		return *c
	}
	*c = m.selectionSet(def.SelectionSet)
	c.directives = sat(c.directives + len(def.Directives))
	return *c
}
