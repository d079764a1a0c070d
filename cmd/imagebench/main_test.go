package main

import (
	"math/rand/v2"
	"testing"
)

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 200000: "200,000", -1234567: "-1,234,567"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}

// A plan has exactly the events asked for, and every order's steps follow
// the order rules: items change only while DRAFT, pay after place, ship
// after pay, cancel last.
func TestPlanLoad(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	p := planLoad("t", rng, 0, 200, 20000, 0, 0)
	if p.events != 20000 {
		t.Fatalf("planned %d events, want 20000", p.events)
	}
	var sum int64
	for _, b := range p.batches {
		if b.n < 1 || b.n > 2*genericBatch-1 {
			t.Errorf("batch of %d events", b.n)
		}
		sum += int64(b.n)
	}
	long := 0
	for _, o := range p.orders {
		sum += int64(len(o.steps))
		if len(o.steps) > 50 {
			long++
		}
		if o.steps[0].kind != stepCreate {
			t.Fatalf("order %s does not start with a create", o.id)
		}
		status := "DRAFT"
		held := map[string]bool{}
		for _, it := range o.steps[0].items {
			held[it["sku"].(string)] = true
		}
		for _, s := range o.steps[1:] {
			ok := true
			switch s.kind {
			case stepAdd:
				ok = status == "DRAFT" && !held[s.item["sku"].(string)]
				held[s.item["sku"].(string)] = true
			case stepRemove:
				ok = status == "DRAFT" && held[s.sku] && len(held) > 1
				delete(held, s.sku)
			case stepPlace:
				ok, status = status == "DRAFT", "PLACED"
			case stepPay:
				ok, status = status == "PLACED", "PAID"
			case stepShip:
				ok, status = status == "PAID", "SHIPPED"
			case stepCancel:
				ok, status = status != "SHIPPED" && status != "CANCELLED", "CANCELLED"
			default:
				ok = false
			}
			if !ok {
				t.Fatalf("order %s: step %v not allowed before it reached %s", o.id, s.kind, status)
			}
		}
	}
	if sum != p.events {
		t.Errorf("steps and batches hold %d events, planned %d", sum, p.events)
	}
	if long != 200/longOrderEvery {
		t.Errorf("%d long orders, want %d", long, 200/longOrderEvery)
	}
}
