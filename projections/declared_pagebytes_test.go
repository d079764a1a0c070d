package projections_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/projections"
)

// TestPartitionPagesBoundedByBytes: a page of partitions stops at
// eventstore.MaxPageBytes of states, as a page of events does, says that more
// follow, and paging on lists every partition once.
func TestPartitionPagesBoundedByBytes(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{MaxStateBytes: 2 << 20})
	ctx := ctxT(t)
	var want []string
	for i := 1; i <= 5; i++ {
		// 1.5 MiB states: two fit in a page, a third does not.
		data := json.RawMessage(fmt.Sprintf(`{"s":%q}`, strings.Repeat(fmt.Sprint(i), 3<<19)))
		if _, err := store.Append(ctx, fmt.Sprintf("big-%d", i), eventstore.NoStream{}, eventstore.NewEvent{Type: "Set", Data: data}); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("big-%d", i))
	}
	define(t, svc, projections.Definition{Name: "big", StreamPrefix: "big-", Reducer: `.state + {s: .event.data.s}`})
	head := store.HeadPosition()
	var pages [][]string
	after := ""
	for len(pages) < 10 {
		page, err := svc.Declarative().Partitions(ctx, projections.ListPartitions{Name: "big", At: eventstore.AtPosition(head), First: 1000, After: after, Count: true})
		if err != nil {
			t.Fatal(err)
		}
		if page.TotalCount != 5 {
			t.Fatalf("total count %d, want 5", page.TotalCount)
		}
		var keys []string
		for _, p := range page.Partitions {
			keys = append(keys, p.Key)
		}
		pages = append(pages, keys)
		if !page.HasNext {
			break
		}
		after = page.EndCursor
	}
	if want := [][]string{want[:2], want[2:4], want[4:]}; !slices.EqualFunc(pages, want, slices.Equal) {
		t.Fatalf("pages %v, want %v", pages, want)
	}
}
