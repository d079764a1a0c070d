package graph

import (
	"errors"
	"reflect"

	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hindsight-dev/hindsight/graph/scalar"
)

// builtinScalars are the input coercions of the built-in scalars, the same
// functions gqlgen.yml binds them to.
var builtinScalars = map[string]func(any) error{
	"String":  func(v any) error { _, err := scalar.UnmarshalString(v); return err },
	"Int":     func(v any) error { _, err := scalar.UnmarshalInt(v); return err },
	"Float":   func(v any) error { _, err := scalar.UnmarshalFloat(v); return err },
	"Boolean": func(v any) error { _, err := scalar.UnmarshalBoolean(v); return err },
	"ID":      func(v any) error { _, err := scalar.UnmarshalID(v); return err },
}

// strictVariables holds variable values to the spec's coercion of the
// built-in scalars (GraphQL §3.5) before an operation runs. gqlparser's
// variable validation is lenient where it matters: a JSON number passes as a
// String or an ID (gqlgen decodes numbers as json.Number, a string type), a
// numeric string passes as an Int or a Float, and Int is not held to 32
// bits. A value that does not fit is then a request error, like every other
// variable that does not fit its type (§6.1.2): the operation does not run
// and nothing is written, and the presenter codes it
// BAD_USER_INPUT (see presentProtocolError). Custom scalars (Position, JSON,
// Time) are left to their own unmarshalers, which run with the resolver's
// arguments as before.
type strictVariables struct {
	schema *ast.Schema
}

// variables checks the operation's variables as the client sent them. It
// runs in documentGate, before gqlparser coerces variables, whose own
// message for an Int such as 1.5 is "cannot use value 0 as Int".
func (s strictVariables) variables(op *ast.OperationDefinition, vars map[string]any) *gqlerror.Error {
	if s.schema == nil {
		return nil
	}
	for _, def := range op.VariableDefinitions {
		v, ok := vars[def.Variable]
		if !ok {
			continue
		}
		if err := s.check(ast.Path{ast.PathName("variable"), ast.PathName(def.Variable)}, def.Type, v); err != nil {
			return err
		}
	}
	return nil
}

// check walks a value along its type and applies the built-in scalars'
// coercion to its leaves; a value of the wrong shape is left to gqlparser's
// validation of variables, which follows.
func (s strictVariables) check(path ast.Path, typ *ast.Type, v any) *gqlerror.Error {
	if v == nil {
		return nil
	}
	if typ.Elem != nil {
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
			return s.check(child(path, ast.PathIndex(0)), typ.Elem, v) // a single value stands for a list of one
		}
		for i := 0; i < rv.Len(); i++ {
			if err := s.check(child(path, ast.PathIndex(i)), typ.Elem, rv.Index(i).Interface()); err != nil {
				return err
			}
		}
		return nil
	}
	def := s.schema.Types[typ.NamedType]
	if def == nil {
		return nil
	}
	switch def.Kind {
	case ast.Scalar:
		coerce := builtinScalars[def.Name]
		if coerce == nil {
			return nil
		}
		if err := coerce(v); err != nil {
			return variableError(path, err)
		}
	case ast.InputObject:
		fields, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for _, f := range def.Fields {
			if fv, ok := fields[f.Name]; ok {
				if err := s.check(child(path, ast.PathName(f.Name)), f.Type, fv); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// child returns path with one more element, never sharing the backing array
// of path's siblings.
func child(path ast.Path, el ast.PathElement) ast.Path {
	return append(path[:len(path):len(path)], el)
}

// variableError is a variable value that does not fit its type, made like
// gqlgen makes those that gqlparser finds.
func variableError(path ast.Path, err error) *gqlerror.Error {
	msg := "the value does not fit its type"
	var se *scalar.Error
	if errors.As(err, &se) {
		msg = se.Msg
	}
	e := gqlerror.ErrorPathf(path, "%s", msg)
	errcode.Set(e, errcode.ValidationFailed)
	return e
}
