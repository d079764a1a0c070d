package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
)

// Automatic persisted queries (Apollo's persisted-query link): a client
// first sends only the query's SHA-256; on PersistedQueryNotFound
// (extensions.code PERSISTED_QUERY_NOT_FOUND) it sends the query with the
// hash, which is stored; later requests send the hash alone. gqlgen's
// extension.AutomaticPersistedQuery does the protocol. It runs after the
// rate limit and before documentGate, so a query named by its hash meets the
// same limits as one sent in full.

// APQ cache bounds: entries, and the longest query stored. A longer query
// still runs when sent in full; it is only not remembered, so the cache
// holds at most apqEntries × apqMaxQueryBytes (32 MiB).
const (
	apqEntries       = 512
	apqMaxQueryBytes = 64 << 10
)

func persistedQueries() extension.AutomaticPersistedQuery {
	return extension.AutomaticPersistedQuery{Cache: apqCache{lru.New[string](apqEntries)}}
}

// apqCache is an LRU of queries by hash that refuses to store long ones.
type apqCache struct {
	graphql.Cache[string]
}

func (c apqCache) Add(ctx context.Context, hash, query string) {
	if len(query) <= apqMaxQueryBytes {
		c.Cache.Add(ctx, hash, query)
	}
}
