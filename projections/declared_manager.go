package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// Declarative holds the declarative projections of a Service: it follows
// the definition streams, builds every new version in the background with a
// runner, and switches a projection to a new version atomically once the
// version has caught up with the log. Get it with Service.Declarative.
type Declarative struct {
	s *Service

	mu     sync.RWMutex
	byName map[string]*declared
	defs   watermark // position of the last definition event taken in
	// switched counts version switches, so that subscriptions waiting on a
	// runner move to its successor.
	switched watermark
	// used is the estimated memory of every runner's states, against
	// Options.ProjectionMemoryBudget; a runner gives its share back when it
	// is retired.
	used atomic.Int64
}

// declared is one projection: its versions, the one answering and the one
// being built.
type declared struct {
	versions []*defVersion
	active   *runner // answers queries; nil until a version is built
	building *runner // the newest version while it is built
}

type defVersion struct {
	info    DefinitionVersion
	run     *runner // nil when the recorded definition is not valid
	invalid *Fault
}

// ProjectionInfo describes a declarative projection and its versions.
type ProjectionInfo struct {
	Name          string
	ActiveVersion int64 // 0 while no version has been built
	Versions      []DefinitionVersion
}

func newDeclarative(s *Service) *Declarative {
	return &Declarative{s: s, byName: map[string]*declared{}}
}

// runDefinitions takes in every definition event, from the start of the log
// and then live, and starts a runner for each valid new version.
func (d *Declarative) runDefinitions(ctx context.Context) {
	s := d.s
	if err := s.store.WaitReady(ctx); err != nil {
		return
	}
	for ctx.Err() == nil {
		after := d.defs.checkpoint.Load()
		sub, err := s.store.Subscribe(ctx, eventstore.SubscribeOptions{AfterPosition: &after,
			StreamPrefix: DefinitionStreamPrefix, Types: []string{DefinitionEventType}})
		for err == nil {
			var ev eventstore.Event
			if ev, err = sub.Recv(ctx); err == nil {
				d.add(ctx, ev)
				d.defs.advance(ev.Position)
			}
		}
		if sub != nil {
			sub.Close()
		}
		if ctx.Err() != nil || errors.Is(err, eventstore.ErrClosed) {
			return
		}
		s.log.Warn("projection definitions stopped reading; resuming", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// add takes in one recorded definition version. A newer version supersedes
// the one being built (it never answers); the active one keeps answering
// until the new one has caught up (promote).
func (d *Declarative) add(ctx context.Context, ev eventstore.Event) {
	name := strings.TrimPrefix(ev.StreamID, DefinitionStreamPrefix)
	v := &defVersion{info: DefinitionVersion{Version: ev.Version, Position: ev.Position, RecordedAt: ev.RecordedAt}}
	var def Definition
	prog, err := (*program)(nil), json.Unmarshal(ev.Data, &def)
	if err == nil && def.Name != name {
		err = fmt.Errorf("the definition names %q but is in the stream of %q", def.Name, name)
	}
	if err == nil {
		prog, err = compile(def, d.s.opts.ReducerTimeout, d.s.opts.MaxStateBytes)
	}
	v.info.Definition = def
	v.info.Name = name
	if v.info.EventTypes == nil { // what the API shows of an invalid one
		v.info.EventTypes = []string{}
	}
	if !json.Valid(v.info.InitialState) {
		v.info.InitialState = json.RawMessage(`{}`)
	}
	if err != nil {
		// Only appendToStream by someone allowed to write the reserved
		// streams can record a definition that was not checked.
		v.invalid = &Fault{Projection: name, DefinitionVersion: ev.Version, Kind: FaultInvalid,
			Message: trimSentinel(err), Position: ev.Position, StreamID: ev.StreamID, EventType: ev.Type, EventVersion: ev.Version}
		d.s.log.Warn("ignoring an invalid projection definition", "projection", name, "version", ev.Version, "err", err)
	} else {
		v.info.Definition = prog.def
		v.run = newRunner(d, v.info, prog)
		v.run.life = ctx
	}
	d.mu.Lock()
	p := d.byName[name]
	if p == nil {
		p = &declared{}
		d.byName[name] = p
	}
	p.versions = append(p.versions, v)
	var superseded *runner
	if v.run != nil {
		superseded, p.building = p.building, v.run
	}
	d.mu.Unlock()
	if superseded != nil {
		superseded.retire()
	}
	if r := v.run; r != nil {
		rctx, cancel := context.WithCancel(ctx)
		r.cancel = cancel
		d.s.goTracked(func() {
			if superseded != nil {
				// The budget is shared by every version: build once the
				// abandoned version's memory is given back, or a
				// redefinition right after a MEMORY_BUDGET fault would
				// fault again on memory about to be freed.
				select {
				case <-superseded.released:
				case <-rctx.Done(): // run returns at once, closing stopped
				}
			}
			r.run(rctx)
		})
	}
}

// promote makes a caught-up version the one that answers. Queries take the
// runner once and read only from it, so none sees a mix of versions; the
// old runner keeps following the log a little longer for queries that are
// still waiting on it.
func (d *Declarative) promote(r *runner) {
	d.mu.Lock()
	p := d.byName[r.info.Name]
	if p == nil || p.building != r {
		d.mu.Unlock()
		return
	}
	old := p.active
	p.active, p.building = r, nil
	d.mu.Unlock()
	d.switched.advance(d.switched.position() + 1)
	if old != nil {
		d.s.log.Info("declarative projection switched to a new version", "projection", r.info.Name,
			"from", old.info.Version, "to", r.info.Version)
		time.AfterFunc(d.s.opts.LagWait+time.Second, old.retire)
	}
}

// current returns the runner that answers for the projection: the active
// version, or the one being built while none is.
func (d *Declarative) current(name string) (*runner, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	p := d.byName[name]
	switch {
	case p == nil:
		return nil, fmt.Errorf("%w: no projection %q is defined", ErrNotFound, name)
	case p.active != nil:
		return p.active, nil
	case p.building != nil:
		return p.building, nil
	}
	last := p.versions[len(p.versions)-1]
	return nil, &FaultError{Fault: *last.invalid}
}

// Projections lists the declarative projections and their versions, by name.
func (d *Declarative) Projections() []ProjectionInfo {
	d.mu.RLock()
	names := make([]string, 0, len(d.byName))
	for n := range d.byName {
		names = append(names, n)
	}
	d.mu.RUnlock()
	sort.Strings(names)
	out := make([]ProjectionInfo, 0, len(names))
	for _, n := range names {
		if info, ok := d.Projection(n); ok {
			out = append(out, info)
		}
	}
	return out
}

// Projection describes one declarative projection.
func (d *Declarative) Projection(name string) (ProjectionInfo, bool) {
	d.mu.RLock()
	p := d.byName[name]
	if p == nil {
		d.mu.RUnlock()
		return ProjectionInfo{}, false
	}
	versions, active, building := append([]*defVersion(nil), p.versions...), p.active, p.building
	d.mu.RUnlock()
	info := ProjectionInfo{Name: name, Versions: make([]DefinitionVersion, len(versions))}
	if active != nil {
		info.ActiveVersion = active.info.Version
	}
	for i, v := range versions {
		switch {
		case v.run == nil:
			info.Versions[i] = v.info
			info.Versions[i].Status, info.Versions[i].Fault = StatusFaulted, v.invalid
		case v.run == active:
			info.Versions[i] = v.run.status(StatusActive)
		case v.run == building:
			info.Versions[i] = v.run.status(StatusBuilding)
		default:
			info.Versions[i] = v.run.status(StatusReplaced)
		}
	}
	return info, true
}

// Define checks a definition and records it as the projection's next
// version: its jq must compile, and it must run without a fault on the most
// recent matching events (the dry run, whose result is returned). expected
// is the definition stream's expected state (nil = any): eventstore.NoStream
// to create only, eventstore.Exact(v) to replace version v only. Define
// returns once this instance has taken the version in; it is then built in
// the background (status BUILDING) while the previous version answers.
func (d *Declarative) Define(ctx context.Context, def Definition, expected eventstore.ExpectedState) (DefinitionVersion, DryRun, error) {
	s := d.s
	prog, err := compile(def, s.opts.ReducerTimeout, s.opts.MaxStateBytes)
	if err != nil {
		return DefinitionVersion{}, DryRun{}, err
	}
	dry, err := d.dryRun(ctx, prog)
	if err != nil {
		return DefinitionVersion{}, DryRun{}, err
	}
	data, err := json.Marshal(prog.def)
	if err != nil {
		return DefinitionVersion{}, DryRun{}, err
	}
	if expected == nil {
		expected = eventstore.Any{}
	}
	res, err := s.store.Append(ctx, DefinitionStreamID(prog.def.Name), expected,
		eventstore.NewEvent{Type: DefinitionEventType, Data: data})
	if err != nil {
		return DefinitionVersion{}, DryRun{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, s.opts.LagWait)
	defer cancel()
	if err := d.defs.waitFor(wctx, res.LastPosition); err != nil {
		return DefinitionVersion{}, DryRun{}, fmt.Errorf("%w: the definition was recorded at position %d but not yet taken in",
			ErrProjectionLagging, res.LastPosition)
	}
	info, _ := d.Projection(prog.def.Name)
	for _, v := range info.Versions {
		if v.Version == res.NextExpectedVersion {
			return v, dry, nil
		}
	}
	return DefinitionVersion{}, DryRun{}, fmt.Errorf("projections: version %d of %q was recorded but not found", res.NextExpectedVersion, prog.def.Name)
}

// Running lists the versions that run on this instance (BUILDING, ACTIVE,
// or FAULTED while not replaced), by name, for diagnostics and metrics.
func (d *Declarative) Running() []DefinitionVersion {
	out := []DefinitionVersion{}
	for _, p := range d.Projections() {
		for _, v := range p.Versions {
			if v.Status != StatusReplaced && (v.Status != StatusFaulted || v.Version >= p.ActiveVersion) {
				out = append(out, v)
			}
		}
	}
	return out
}

// Memory returns the estimated memory of the declarative projections'
// states and the budget (negative = unlimited).
func (d *Declarative) Memory() (used, budget int64) {
	return d.used.Load(), d.s.opts.ProjectionMemoryBudget
}
