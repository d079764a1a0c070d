package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hindsight-dev/hindsight/internal/benchserver"
)

// dataset is what has been loaded, for picking query arguments.
type dataset struct {
	orders      []orderRef
	streams     []streamRef
	head        int64     // the highest position loaded
	first, last time.Time // recordedAt of the first and the last event loaded
}

type orderRef struct {
	id      string
	version int64 // the order's last version
}

type streamRef struct {
	id          string
	first, last time.Time // recordedAt of its first and last event
}

func (d *dataset) clone() *dataset {
	return &dataset{orders: slices.Clone(d.orders), streams: slices.Clone(d.streams), head: d.head, first: d.first, last: d.last}
}

// loadPlan is one phase's load: orders with their whole lifecycles, and
// batches of generic events, interleaved at random over the phase.
type loadPlan struct {
	phase   string
	orders  []*orderPlan
	batches []*batchPlan
	events  int64 // planned
}

// orderPlan is one order's lifecycle: a command per step, one event each.
type orderPlan struct {
	id    string
	steps []orderStep
	done  []chan struct{} // closed when step i has run (or was skipped)

	// Written by step i before done[i] closes, read by step i+1 after.
	total   int64 // totalCents after the last step
	version int64 // after the last successful step
	failed  atomic.Bool
}

type stepKind int

const (
	stepCreate stepKind = iota
	stepAdd
	stepRemove
	stepPlace
	stepPay
	stepShip
	stepCancel
)

type orderStep struct {
	kind  stepKind
	items []map[string]any // create
	item  map[string]any   // add
	sku   string           // remove
	text  string           // customer id (create), tracking number, cancel reason
}

// batchPlan is one appendToStream of n generic events; their content is
// generated from seed when the batch runs.
type batchPlan struct {
	stream string
	n      int
	seed   uint64
	pad    int // bytes of padding in the data of its first event (the size mix)
}

// The size mix (issue 14): with -pad-every N, every Nth generic append
// carries one event of 64 KiB; with -huge N, the large phase has N appends
// of one event near the 4 MiB append limit.
const (
	padBytes  = 64 << 10
	hugeBytes = 4<<20 - 4<<10
)

const (
	longOrderEvery = 50 // every 50th order is a long one: 50 to 300 item changes while DRAFT
	genericBatch   = 20 // average events per generic append (1 to 39)
	streamEvents   = 100
)

// planLoad plans orders orders (numbered from firstOrder) and generic events
// to make total events in all. Plans are deterministic for a seed.
func planLoad(phase string, rng *rand.Rand, firstOrder, orders int, total int64, padEvery, huge int) *loadPlan {
	p := &loadPlan{phase: phase}
	for i := firstOrder; i < firstOrder+orders; i++ {
		o := planOrder(rng, i)
		p.orders = append(p.orders, o)
		p.events += int64(len(o.steps))
	}
	generic := max(0, total-p.events-int64(huge))
	nStreams := max(4, int(generic/streamEvents))
	hot := max(1, nStreams/100)
	for left, b := generic, 0; left > 0; b++ {
		n := min(left, int64(1+rng.IntN(2*genericBatch-1)))
		// Half the appends go to the hottest 1% of the streams, so there
		// are a few long streams (thousands of events) and many short ones.
		s := rng.IntN(nStreams)
		if rng.IntN(2) == 0 {
			s = rng.IntN(hot)
		}
		b := &batchPlan{stream: fmt.Sprintf("gen-%s-%05d", phase, s), n: int(n), seed: rng.Uint64()}
		if padEvery > 0 && len(p.batches)%padEvery == padEvery-1 {
			b.pad = padBytes
		}
		p.batches = append(p.batches, b)
		left -= n
		p.events += n
	}
	// The huge appends, of one event each, spread over the plan.
	for i := huge - 1; i >= 0; i-- {
		at := (i * len(p.batches)) / huge
		p.batches = slices.Insert(p.batches, at, &batchPlan{stream: "huge-" + phase, n: 1, seed: rng.Uint64(), pad: hugeBytes})
		p.events++
	}
	return p
}

// planOrder plans an order's lifecycle: created with 1 to 3 items, a few
// item changes while DRAFT (many for every 50th order), and then an end
// state: DRAFT 10%, PLACED 15%, PAID 20%, SHIPPED 30%, CANCELLED 25% (from
// DRAFT, PLACED or PAID).
func planOrder(rng *rand.Rand, i int) *orderPlan {
	o := &orderPlan{id: fmt.Sprintf("ib-%05d", i)}
	skus := 0
	newItem := func() map[string]any {
		skus++
		return map[string]any{"sku": "sku-" + strconv.Itoa(skus), "quantity": 1 + rng.IntN(5), "unitPriceCents": 100 * (1 + rng.IntN(50))}
	}
	var held []string
	create := orderStep{kind: stepCreate, text: fmt.Sprintf("cust-%03d", rng.IntN(300))}
	for range 1 + rng.IntN(3) {
		it := newItem()
		create.items = append(create.items, it)
		held = append(held, it["sku"].(string))
	}
	o.steps = append(o.steps, create)
	changes := rng.IntN(5)
	if i%longOrderEvery == longOrderEvery/2 {
		changes = 50 + rng.IntN(251)
	}
	for range changes {
		if len(held) > 1 && (len(held) >= 10 || rng.IntN(2) == 0) {
			k := rng.IntN(len(held))
			o.steps = append(o.steps, orderStep{kind: stepRemove, sku: held[k]})
			held = slices.Delete(held, k, k+1)
			continue
		}
		it := newItem()
		o.steps = append(o.steps, orderStep{kind: stepAdd, item: it})
		held = append(held, it["sku"].(string))
	}
	place := orderStep{kind: stepPlace}
	pay := orderStep{kind: stepPay}
	ship := orderStep{kind: stepShip, text: fmt.Sprintf("1Z%016d", rng.Int64N(1e16))}
	cancel := orderStep{kind: stepCancel, text: []string{"customer changed their mind", "out of stock", "payment reversed"}[rng.IntN(3)]}
	switch r := rng.Float64(); {
	case r < 0.10: // DRAFT
	case r < 0.25:
		o.steps = append(o.steps, place)
	case r < 0.45:
		o.steps = append(o.steps, place, pay)
	case r < 0.75:
		o.steps = append(o.steps, place, pay, ship)
	default:
		o.steps = append(o.steps, []orderStep{place, pay}[:rng.IntN(3)]...)
		o.steps = append(o.steps, cancel)
	}
	o.done = make([]chan struct{}, len(o.steps))
	for k := range o.done {
		o.done[k] = make(chan struct{})
	}
	return o
}

// task is one request of a load: a step of an order or a generic batch.
type task struct {
	key   float64
	order *orderPlan
	step  int
	batch *batchPlan
}

// loader runs a plan with concurrent clients.
type loader struct {
	c       *benchserver.Client
	clients int
	log     io.Writer

	loaded   atomic.Int64
	errs     atomic.Int64
	requests atomic.Int64

	mu       sync.Mutex
	firstErr []string
	streams  map[string]*streamRef
	first    time.Time
	last     time.Time
	head     int64
}

// loadResult sums up one phase's load.
type loadResult struct {
	events   int64
	orders   int
	streams  int
	requests int
	errors   int64
	took     time.Duration
}

const maxLoadErrors = 100

// run loads the plan into the server and adds what it loaded to d.
func (l *loader) run(parent context.Context, p *loadPlan, rng *rand.Rand, d *dataset) (loadResult, error) {
	// Every task gets a random place in the phase; an order's steps keep
	// their order, so orders are created, changed and finished all through
	// the load, among the generic appends.
	var tasks []task
	for _, o := range p.orders {
		keys := make([]float64, len(o.steps))
		for k := range keys {
			keys[k] = rng.Float64()
		}
		slices.Sort(keys)
		for k := range keys {
			tasks = append(tasks, task{key: keys[k], order: o, step: k})
		}
	}
	for _, b := range p.batches {
		tasks = append(tasks, task{key: rng.Float64(), batch: b})
	}
	slices.SortFunc(tasks, func(a, b task) int { return cmp.Compare(a.key, b.key) })
	l.streams = map[string]*streamRef{}

	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	queue := make(chan task)
	var wg sync.WaitGroup
	for range l.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range queue {
				l.runTask(ctx, t)
				if l.errs.Load() > maxLoadErrors {
					cancel()
				}
			}
		}()
	}
	start := time.Now()
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				n := l.loaded.Load()
				rate := float64(n) / time.Since(start).Seconds()
				eta := time.Duration(float64(p.events-n) / max(rate, 1) * float64(time.Second))
				fmt.Fprintf(l.log, "[load %s] %d of %d events (%.0f%%), %.0f events/s, %d errors, about %v to go\n",
					p.phase, n, p.events, 100*float64(n)/float64(max(p.events, 1)), rate, l.errs.Load(), eta.Round(time.Second))
			}
		}
	}()
feed:
	for _, t := range tasks {
		select {
		case queue <- t:
		case <-ctx.Done():
			break feed
		}
	}
	close(queue)
	wg.Wait()
	cancel()
	<-progressDone
	res := loadResult{events: l.loaded.Load(), orders: len(p.orders), streams: len(l.streams), requests: int(l.requests.Load()),
		errors: l.errs.Load(), took: time.Since(start)}
	fmt.Fprintf(l.log, "[load %s] %d events in %v (%.0f events/s, %d requests, %d errors)\n",
		p.phase, res.events, res.took.Round(time.Millisecond), float64(res.events)/res.took.Seconds(), res.requests, res.errors)
	for _, e := range l.firstErr {
		fmt.Fprintf(l.log, "[load %s] error: %s\n", p.phase, e)
	}

	// Add what was loaded to the dataset.
	for _, o := range p.orders {
		if o.version > 0 {
			d.orders = append(d.orders, orderRef{id: o.id, version: o.version})
		}
	}
	var ids []string
	for id := range l.streams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		d.streams = append(d.streams, *l.streams[id])
	}
	d.head = max(d.head, l.head)
	if d.first.IsZero() || (!l.first.IsZero() && l.first.Before(d.first)) {
		d.first = l.first
	}
	if l.last.After(d.last) {
		d.last = l.last
	}
	if err := parent.Err(); err != nil {
		return res, err
	}
	if res.errors > maxLoadErrors {
		return res, fmt.Errorf("load %s: more than %d failed requests; stopped", p.phase, maxLoadErrors)
	}
	return res, nil
}

func (l *loader) fail(what string, err error) {
	if l.errs.Add(1) <= 5 {
		l.mu.Lock()
		l.firstErr = append(l.firstErr, what+": "+err.Error())
		l.mu.Unlock()
	}
}

// seen records an event's recordedAt and position.
func (l *loader) seen(stream string, first, last time.Time, pos int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if stream != "" {
		s := l.streams[stream]
		if s == nil {
			s = &streamRef{id: stream, first: first, last: last}
			l.streams[stream] = s
		}
		if first.Before(s.first) {
			s.first = first
		}
		if last.After(s.last) {
			s.last = last
		}
	}
	if l.first.IsZero() || first.Before(l.first) {
		l.first = first
	}
	if last.After(l.last) {
		l.last = last
	}
	l.head = max(l.head, pos)
}

func (l *loader) runTask(ctx context.Context, t task) {
	if t.batch != nil {
		l.runBatch(ctx, t.batch)
		return
	}
	o, k := t.order, t.step
	defer close(o.done[k])
	if k > 0 {
		select {
		case <-o.done[k-1]:
		case <-ctx.Done():
			return
		}
	}
	if o.failed.Load() || ctx.Err() != nil {
		o.failed.Store(true)
		return
	}
	s := o.steps[k]
	const fields = `{ version totalCents position updatedAt }`
	var query string
	vars := map[string]any{"id": o.id}
	switch s.kind {
	case stepCreate:
		query = `mutation($id: ID, $c: String!, $items: [OrderItemInput!]) { r: createOrder(orderId: $id, customerId: $c, items: $items) ` + fields + ` }`
		vars["c"], vars["items"] = s.text, s.items
	case stepAdd:
		query = `mutation($id: ID!, $item: OrderItemInput!) { r: addOrderItem(orderId: $id, item: $item) ` + fields + ` }`
		vars["item"] = s.item
	case stepRemove:
		query = `mutation($id: ID!, $sku: String!) { r: removeOrderItem(orderId: $id, sku: $sku) ` + fields + ` }`
		vars["sku"] = s.sku
	case stepPlace:
		query = `mutation($id: ID!) { r: placeOrder(orderId: $id) ` + fields + ` }`
	case stepPay:
		query = `mutation($id: ID!, $a: Int!) { r: payOrder(orderId: $id, amountCents: $a) ` + fields + ` }`
		vars["a"] = o.total
	case stepShip:
		query = `mutation($id: ID!, $t: String!) { r: shipOrder(orderId: $id, trackingNumber: $t) ` + fields + ` }`
		vars["t"] = s.text
	case stepCancel:
		query = `mutation($id: ID!, $t: String!) { r: cancelOrder(orderId: $id, reason: $t) ` + fields + ` }`
		vars["t"] = s.text
	}
	var r struct {
		R struct {
			Version    int64
			TotalCents int64
			Position   string
			UpdatedAt  time.Time
		}
	}
	l.requests.Add(1)
	if err := l.c.Do(ctx, query, vars, &r); err != nil {
		o.failed.Store(true)
		if ctx.Err() == nil {
			l.fail(fmt.Sprintf("order %s step %d", o.id, k+1), err)
		}
		return
	}
	if r.R.Version != int64(k+1) {
		o.failed.Store(true)
		l.fail(fmt.Sprintf("order %s step %d", o.id, k+1), fmt.Errorf("version %d, want %d", r.R.Version, k+1))
		return
	}
	o.total, o.version = r.R.TotalCents, r.R.Version
	pos, _ := strconv.ParseInt(r.R.Position, 10, 64)
	l.seen("", r.R.UpdatedAt, r.R.UpdatedAt, pos)
	l.loaded.Add(1)
}

var (
	eventTypes = []string{"FieldSet", "Tick", "FieldCleared"}
	words      = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"}
)

const appendMutation = `mutation($s: String!, $e: [NewEvent!]!) { appendToStream(streamId: $s, events: $e) { lastPosition events { recordedAt } } }`

func (l *loader) runBatch(ctx context.Context, b *batchPlan) {
	rng := rand.New(rand.NewPCG(b.seed, 1))
	events := make([]map[string]any, b.n)
	for i := range events {
		typ := eventTypes[rng.IntN(len(eventTypes))]
		data := map[string]any{"seq": rng.IntN(1e6)}
		switch typ {
		case "FieldSet":
			// A merge patch that sets a field among twelve, with a nested
			// object now and then.
			f := "f" + strconv.Itoa(rng.IntN(12))
			if rng.IntN(4) == 0 {
				data[f] = map[string]any{"w": words[rng.IntN(len(words))], "n": rng.IntN(1000), "ok": rng.IntN(2) == 0}
			} else {
				data[f] = words[rng.IntN(len(words))] + "-" + strconv.Itoa(rng.IntN(1e5))
			}
		case "Tick":
			data["count"] = rng.IntN(1e4)
			data["note"] = words[rng.IntN(len(words))] + " " + words[rng.IntN(len(words))]
		case "FieldCleared":
			data["f"+strconv.Itoa(rng.IntN(12))] = nil
		}
		if i == 0 && b.pad > 0 {
			data["blob"] = strings.Repeat("0123456789abcdef", b.pad/16)
		}
		e := map[string]any{"type": typ, "data": data}
		if rng.IntN(5) == 0 {
			e["metadata"] = map[string]any{"by": "imagebench", "trace": strconv.FormatUint(rng.Uint64(), 16)}
		}
		events[i] = e
	}
	var r struct {
		AppendToStream struct {
			LastPosition string
			Events       []struct{ RecordedAt time.Time }
		}
	}
	l.requests.Add(1)
	if err := l.c.Do(ctx, appendMutation, map[string]any{"s": b.stream, "e": events}, &r); err != nil {
		if ctx.Err() == nil {
			l.fail("append to "+b.stream, err)
		}
		return
	}
	evs := r.AppendToStream.Events
	if len(evs) != b.n {
		l.fail("append to "+b.stream, fmt.Errorf("%d events in the result, want %d", len(evs), b.n))
		return
	}
	pos, _ := strconv.ParseInt(r.AppendToStream.LastPosition, 10, 64)
	l.seen(b.stream, evs[0].RecordedAt, evs[len(evs)-1].RecordedAt, pos)
	l.loaded.Add(int64(b.n))
}
