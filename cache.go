package wmprom

import "sync"

// Topics per tenant, a label function that returns ids or a router that
// subscribes to whatever it is told can each make label values without
// end, and every distinct set of them is a dozen series more in every
// scrape. seriesCache bounds that: a Metrics keeps at most
// WithMaxLabelSets receive label sets and as many publish label sets;
// later ones share one overflow set per broker, whose handler or
// destination, and dynamic custom labels, read overflowValue.
type seriesCache[K comparable, V any] struct {
	mu       sync.RWMutex
	entries  map[K]V
	counted  int // label sets counted against max; overflow sets are not
	max      int
	overflow func(K) K // the overflow label set standing in for a key
	create   func(K) V
}

func newSeriesCache[K comparable, V any](max int, overflow func(K) K, create func(K) V) *seriesCache[K, V] {
	return &seriesCache[K, V]{entries: map[K]V{}, max: max, overflow: overflow, create: create}
}

// get returns the series of key, created on first use, or of its
// overflow label set once max label sets exist (keys past the bound are
// not remembered).
func (c *seriesCache[K, V]) get(key K) V {
	c.mu.RLock()
	v, ok := c.entries[key]
	if !ok && c.counted >= c.max {
		v, ok = c.entries[c.overflow(key)]
	}
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.entries[key]; ok {
		return v
	}
	if c.counted < c.max {
		c.counted++
	} else {
		key = c.overflow(key)
		if v, ok := c.entries[key]; ok {
			return v
		}
	}
	v = c.create(key)
	c.entries[key] = v
	return v
}
