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

// overflowValue stands in for label values past a bound: the exception
// types past WithMaxExceptionTypes, and the handler, destination and
// WithLabelFunc values of label sets past WithMaxLabelSets. One word for
// both, so one dashboard filter finds them all.
const overflowValue = "other"

// seriesCache holds the series of at most max label sets, created on
// first use. A label set already cached costs one sync.Map look-up, as
// before there was a bound; only a miss takes the lock.
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
// label sets exist.
func (c *seriesCache[K, V]) get(key K) V {
	if v, ok := c.entries.Load(key); ok {
		return v.(V)
	}
	if c.n.Load() >= c.max {
		// Full: past label sets are not remembered, so that memory stays
		// bounded too; their messages find the overflow set here.
		return c.getOverflow(c.overflow(key))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.entries.Load(key); ok {
		return v.(V)
	}
	if c.n.Load() >= c.max {
		return c.createLocked(c.overflow(key))
	}
	v := c.create(key)
	c.entries.Store(key, v)
	c.n.Add(1)
	return v
}

func (c *seriesCache[K, V]) getOverflow(key K) V {
	if v, ok := c.entries.Load(key); ok {
		return v.(V)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.createLocked(key)
}

// createLocked returns the overflow set's series, creating it once; it
// is not counted, so there is always room for it.
func (c *seriesCache[K, V]) createLocked(key K) V {
	if v, ok := c.entries.Load(key); ok {
		return v.(V)
	}
	v := c.create(key)
	c.entries.Store(key, v)
	return v
}

// customOverflow is the custom part of an overflow label set: static
// WithLabel values stay (they are not what overflowed), values computed
// per message read overflowValue.
func customOverflow(custom []customLabel) string {
	values := make([]customLabel, len(custom))
	for i, l := range custom {
		values[i] = customLabel{name: l.name, value: l.value}
		if l.dynamic {
			values[i].value = overflowValue
		}
	}
	return customValues(values, nil)
}
