package wstransport

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// operation is one running operation of a connection.
type operation struct {
	conn   *conn
	id     string
	prefix []byte // the start of its data messages: {"id":…,"type":"next","payload":
	cancel context.CancelFunc
	// stopped: nothing more is written for it (the client completed it,
	// it ended, or the connection closes). Under conn.mu.
	stopped bool
	// backlog is set through ReportBacklog; only the operation's
	// goroutine uses it.
	backlog func() int
}

var (
	dataOpen   = []byte(`{"data":`)
	closeTwo   = []byte(`}}`)
	closeOne   = []byte(`}`)
	typeNext   = []byte(`,"type":"next","payload":`)
	typeData   = []byte(`,"type":"data","payload":`)
	typeError  = []byte(`,"type":"error","payload":`)
	typeCompl  = []byte(`,"type":"complete"}`)
	idOpen     = []byte(`{"id":`)
	noIDPrefix = []byte(`{"type":"error","payload":`)
)

// running reports whether an operation with id runs.
func (c *conn) running(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops[id] != nil
}

// start runs a subscribe (or start) message. The reader only registers the
// operation, so that a complete or a duplicate id that follows finds it; the
// operation's goroutine parses, validates and runs it. That keeps the deep
// work (gqlparser's validation, execution) off the reader's stack, which
// stays small while it waits for the next message.
func (c *conn) start(id string, params *graphql.RawParams, with func(context.Context) context.Context) {
	c.mu.Lock()
	if len(c.ops) >= c.t.cfg.MaxOperations {
		c.mu.Unlock()
		// Limits run before work: nothing is parsed.
		p, _ := json.Marshal(gqlerror.List{c.t.cfg.TooMany(c.ctx)})
		c.writeErrorMessage(id, p)
		return
	}
	if c.closing {
		c.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(c.ctx)
	o := c.newOperation(id, cancel)
	c.ops[id] = o
	c.mu.Unlock()
	if with != nil {
		ctx = with(ctx)
	}
	go c.run(context.WithValue(ctx, opKey{}, o), o, params, graphql.Now())
}

func (c *conn) newOperation(id string, cancel context.CancelFunc) *operation {
	p := appendJSONString(append(make([]byte, 0, len(id)+40), idOpen...), id)
	if c.legacy {
		p = append(p, typeData...)
	} else {
		p = append(p, typeNext...)
	}
	return &operation{conn: c, id: id, prefix: p, cancel: cancel}
}

// run is the operation's goroutine: it creates the operation (parse,
// validate), writes what gqlgen's response handler returns until it returns
// nil, then completes the operation.
func (c *conn) run(ctx context.Context, o *operation, params *graphql.RawParams, start time.Time) {
	ctx = graphql.StartOperationTrace(ctx)
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	rc, errs := c.exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp := c.exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs)
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			// Parse and validation errors: before execution, so an error
			// message, which ends the operation.
			p, _ := json.Marshal(resp.Errors)
			c.mu.Lock()
			if !o.stopped && !c.closing {
				o.stopped = true
				c.appendErrorLocked(o.id, p)
			}
			c.mu.Unlock()
		} else {
			_ = c.writeResponse(o, resp)
		}
		c.finish(o)
		return
	}
	defer func() {
		if r := recover(); r != nil {
			err := rc.Recover(ctx, r)
			var gqlErr *gqlerror.Error
			if !errors.As(err, &gqlErr) {
				gqlErr = &gqlerror.Error{Message: "internal system error"}
			}
			p, _ := json.Marshal(gqlerror.List{gqlErr})
			c.mu.Lock()
			if !o.stopped && !c.closing {
				o.stopped = true
				c.appendErrorLocked(o.id, p)
			}
			c.mu.Unlock()
			c.finish(o)
		}
	}()
	responses, ctx := c.exec.DispatchOperation(ctx, rc)
	for {
		resp := responses(ctx)
		if resp == nil || c.writeResponse(o, resp) != nil {
			break
		}
	}
	c.finish(o)
}

// writeResponse writes a data message. A response that is only data (every
// event of a subscription, shared encodings included) is framed as it is,
// with no further encoding.
func (c *conn) writeResponse(o *operation, resp *graphql.Response) error {
	more := o.backlog != nil && o.backlog() > 0
	plain := len(resp.Errors) == 0 && len(resp.Extensions) == 0 && resp.Label == "" && resp.Path == nil &&
		resp.HasNext == nil && len(resp.Data) > 0
	var payload []byte
	if !plain {
		var err error
		if payload, err = json.Marshal(resp); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if o.stopped || c.closing {
		return errStopped
	}
	if plain {
		c.appendText(o.prefix, dataOpen, resp.Data, closeTwo)
	} else {
		c.appendText(o.prefix, payload, closeOne)
	}
	if more && c.pending() < maxPending {
		return nil
	}
	return c.flushLocked()
}

// writeData writes a data message for data (see Emit).
func (c *conn) writeData(o *operation, data []byte, more bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o.stopped || c.closing {
		return errStopped
	}
	c.appendText(o.prefix, dataOpen, data, closeTwo)
	if more && c.pending() < maxPending {
		return nil
	}
	return c.flushLocked()
}

// finish ends an operation that ran: complete, unless the client stopped it
// or it ended with an error message, and whatever it left in the buffer is
// sent.
func (c *conn) finish(o *operation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o.cancel()
	if c.ops[o.id] == o {
		delete(c.ops, o.id)
	}
	if c.closing || c.base.Err() != nil {
		// The connection ends, and the operation with it: the close
		// frame says so, not complete.
		return
	}
	if !o.stopped {
		o.stopped = true
		c.appendComplete(o.id)
	}
	_ = c.flushLocked()
}

// stop ends the operation with id at the client's request. graphql-ws (legacy)
// answers with complete; graphql-transport-ws sends nothing more for it.
// replacing is a legacy start with a running id: nothing is sent either.
func (c *conn) stop(id string, replacing bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.ops[id]
	if o == nil {
		return
	}
	delete(c.ops, id)
	o.stopped = true
	o.cancel()
	if c.legacy && !replacing && !c.closing {
		c.appendComplete(id)
		_ = c.flushLocked()
	}
}

// stopOpsLocked ends every operation: the connection closes.
func (c *conn) stopOpsLocked() {
	for id, o := range c.ops {
		o.stopped = true
		o.cancel()
		delete(c.ops, id)
	}
}

func (c *conn) appendComplete(id string) {
	c.appendText(appendJSONString(append(make([]byte, 0, len(id)+32), idOpen...), id), typeCompl)
}

// appendErrorLocked appends an error message for id with payload, a JSON
// list of errors.
func (c *conn) appendErrorLocked(id string, payload []byte) {
	if id == "" {
		c.appendText(noIDPrefix, payload, closeOne)
		return
	}
	c.appendText(appendJSONString(append(make([]byte, 0, len(id)+32), idOpen...), id), typeError, payload, closeOne)
}

// writeErrorMessage sends an error message for an operation that did not
// start.
func (c *conn) writeErrorMessage(id string, payload []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.appendErrorLocked(id, payload)
	_ = c.flushLocked()
}
