package eventstore

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// syntheticLog makes the commit documents of a log shaped like Hindsight's
// own, one at a time: orders ("order-<uuid>", 6 lifecycle events in commits
// of one) and generic streams with somewhat larger payloads, interleaved.
// Every string is a fresh allocation, as when the driver decodes a document.
func syntheticLog(orders int, each func(d *commitDoc)) {
	pos := int64(1)
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	uuid := func(n int) string { return fmt.Sprintf("0190f5a0-%04x-7000-8000-%012x", n%65536, n) }
	hash := func(n int) string { return strings.Repeat(fmt.Sprintf("%08x", n), 8) }
	lifecycle := []struct{ typ, data string }{
		{"OrderCreated", `{"customerId":"c-%d","items":[{"sku":"SKU-%d","quantity":2,"unitPriceCents":1500}]}`},
		{"OrderItemAdded", `{"sku":"SKU-B%d","quantity":1,"unitPriceCents":%d}`},
		{"OrderPlaced", `{}`},
		{"OrderPaid", `{"amountCents":%d}`},
		{"OrderShipped", `{"trackingNumber":"1Z999AA1%08d"}`},
		{"OrderNoted", `{"note":"called the customer about delivery %d"}`},
	}
	n := 0
	for step := range lifecycle {
		for o := 0; o < orders; o++ {
			l := lifecycle[step]
			data := l.data
			if strings.Contains(data, "%d") {
				data = fmt.Sprintf(strings.ReplaceAll(data, "%d", "%[1]d"), o)
			}
			each(&commitDoc{ID: pos, Stream: "order-" + uuid(o), Version: int64(step + 1), LastPosition: pos,
				RecordedAtNs: at.UnixNano(), Events: []eventDoc{{ID: uuid(1<<20 + n), Type: strings.Clone(l.typ),
					Data: data, Hash: hash(n)}}})
			pos++
			n++
			at = at.Add(time.Millisecond)
			if o%4 == 0 {
				// A generic stream: two events in one commit, with metadata.
				evs := make([]eventDoc, 2)
				for k := range evs {
					evs[k] = eventDoc{ID: uuid(1<<21 + n), Type: strings.Clone("ThingHappened"),
						Data:     fmt.Sprintf(`{"thing":%d,"k":%d,"text":"%s"}`, n, k, strings.Repeat("lorem ipsum ", 8)),
						Metadata: fmt.Sprintf(`{"correlationId":"%s"}`, uuid(n)), Hash: hash(n + k)}
				}
				each(&commitDoc{ID: pos, Stream: fmt.Sprintf("thing-%d", o/4), Version: int64(2*step + 1),
					LastPosition: pos + 1, RecordedAtNs: at.UnixNano(), Events: evs})
				pos += 2
				n += 2
			}
		}
	}
}

// heapAfterGC returns the live heap.
func heapAfterGC() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// measureImage builds an image of the synthetic log with the budget and
// returns it with the heap it takes and the JSON size of the events it holds.
func measureImage(orders int, budget int64) (im *image, heap, jsonBytes int64) {
	before := heapAfterGC()
	im = newImage()
	im.budget = budget
	syntheticLog(orders, func(d *commitDoc) { im.apply(d.events(), true) })
	heap = heapAfterGC() - before
	im.mu.RLock()
	for _, st := range im.streams {
		for _, e := range st.events {
			if e != nil {
				b, _ := json.Marshal(e)
				jsonBytes += int64(len(b))
			}
		}
	}
	im.mu.RUnlock()
	return im, heap, jsonBytes
}

// TestImageAccounting checks that the bytes the image accounts for are what
// it takes on the heap, with and without eviction, and that it costs at most
// 3x the JSON size of the events it holds.
func TestImageAccounting(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap; not in -short")
	}
	for _, c := range []struct {
		name   string
		budget int64
	}{{"unlimited", 0}, {"budget 4 MiB", 4 << 20}} {
		t.Run(c.name, func(t *testing.T) {
			im, heap, js := measureImage(2000, c.budget)
			st := im.stats()
			ratio := float64(st.bytes) / float64(heap)
			t.Logf("%d events, %d resident: accounted %d bytes, heap %d bytes (accounted/heap %.2f), JSON %d bytes, heap/JSON %.2f",
				st.logEvents, st.resident, st.bytes, heap, ratio, js, float64(heap)/float64(js))
			if ratio < 0.85 || ratio > 1.15 {
				t.Errorf("accounted bytes are %.2f of the heap the image takes; want within 15%%", ratio)
			}
			if c.budget == 0 && float64(heap) > 3*float64(js) {
				t.Errorf("the image takes %.2fx the JSON size of its events; the target is at most 3x", float64(heap)/float64(js))
			}
			if c.budget > 0 && (st.bytes > c.budget || st.evicted == 0) {
				t.Errorf("with a budget of %d: %d bytes resident, %d evicted", c.budget, st.bytes, st.evicted)
			}
			runtime.KeepAlive(im)
		})
	}
}

// BenchmarkImageBytes reports what the memory image costs per event and per
// byte of the JSON of the events it holds, measured on the heap
// (runtime.MemStats) and as the image accounts for it.
func BenchmarkImageBytes(b *testing.B) {
	for _, orders := range []int{2000, 20000} {
		b.Run(fmt.Sprintf("orders=%d", orders), func(b *testing.B) {
			var im *image
			var heap, js int64
			for i := 0; i < b.N; i++ {
				im, heap, js = measureImage(orders, 0)
			}
			st := im.stats()
			b.ReportMetric(float64(st.logEvents), "events")
			b.ReportMetric(float64(heap)/float64(st.logEvents), "heap-bytes/event")
			b.ReportMetric(float64(st.skeleton)/float64(st.logEvents), "skeleton-bytes/event")
			b.ReportMetric(float64(js)/float64(st.logEvents), "json-bytes/event")
			b.ReportMetric(float64(heap)/float64(js), "heap/json")
			b.ReportMetric(float64(st.bytes)/float64(js), "accounted/json")
			b.ReportMetric(float64(st.bytes)/float64(heap), "accounted/heap")
			runtime.KeepAlive(im)
		})
	}
}

// TestUnpinReturnsUnderBudget: a stream pinned by an append with client ids
// cannot be evicted, so a pass that meets it stops above the budget and puts
// the next pass off by a tenth of the budget. Once the pin is released the
// image must go back under its budget at once, not stay over it until it has
// grown by that tenth (TestMemoryBudgetConcurrent saw 72,480 bytes against a
// budget of 65,536).
func TestUnpinReturnsUnderBudget(t *testing.T) {
	im := newImage()
	im.budget = 64 << 10
	st, _ := im.pin("pinned")
	data := json.RawMessage(`"` + strings.Repeat("x", 4<<10) + `"`)
	for v := int64(1); v <= 20; v++ {
		im.apply([]Event{{ID: fmt.Sprint(v), StreamID: "pinned", Version: v, Position: v, Type: "T", Data: data,
			RecordedAt: time.Unix(v, 0)}}, true)
	}
	im.mu.RLock()
	pinned := im.size()
	im.mu.RUnlock()
	if pinned <= im.budget {
		t.Fatalf("the pinned stream holds %d bytes, under the budget %d: the test proves nothing", pinned, im.budget)
	}
	im.unpin(st)
	im.mu.RLock()
	defer im.mu.RUnlock()
	if im.size() > im.budget {
		t.Fatalf("after the unpin the image holds %d bytes, over its budget %d", im.size(), im.budget)
	}
}
