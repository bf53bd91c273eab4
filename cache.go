package wmprom

import (
	"sync"
	"sync/atomic"
)

// Topics per tenant, a label function that returns ids or a router that
// subscribes to whatever it is told can each make label values without
// end, and every distinct set of them is a dozen series more in every
// scrape. seriesCache bounds that: a Metrics keeps at most
// WithMaxLabelSets receive label sets and as many publish label sets;
// later ones share one overflow set per broker, whose handler or
// destination, and dynamic custom labels, read overflowValue.

// seriesCache holds the series of at most max label sets, created on
// first use. A label set already cached costs one sync.Map look-up; only
// a miss takes the lock.
type seriesCache[K comparable, V any] struct {
	entries  sync.Map // K -> V
	mu       sync.Mutex
	n        atomic.Int64 // label sets counted against max; overflow sets are not
	max      int64
	overflow func(K) K // the overflow label set standing in for a key
	create   func(K) V
}

func newSeriesCache[K comparable, V any](max int, overflow func(K) K, create func(K) V) *seriesCache[K, V] {
	return &seriesCache[K, V]{max: int64(max), overflow: overflow, create: create}
}

// get returns the series of key, or of its overflow label set once max
// label sets exist. Keys past the bound are not remembered, so that
// memory stays bounded too.
func (c *seriesCache[K, V]) get(key K) V {
	if v, ok := c.entries.Load(key); ok {
		return v.(V)
	}
	if c.n.Load() >= c.max {
		key = c.overflow(key)
		if v, ok := c.entries.Load(key); ok {
			return v.(V)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.entries.Load(key); ok {
		return v.(V)
	}
	counted := c.n.Load() < c.max
	if !counted {
		key = c.overflow(key)
		if v, ok := c.entries.Load(key); ok {
			return v.(V)
		}
	}
	v := c.create(key)
	c.entries.Store(key, v)
	if counted {
		c.n.Add(1)
	}
	return v
}
