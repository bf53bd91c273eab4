package wmprom

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// A message whose handler returns produced messages is not done when the
// handler returns: the router publishes them afterwards and nacks the
// message if that fails. Its status is what the router finally does with
// it, and two paths find that out.
//
// The fast path: the produced messages carry the undecided status, and
// this Metrics' decorated publisher decides it as soon as their publish
// returns, with the publish error's type as the exception.
//
// The backstop: everything the fast path can miss (an outer middleware
// failing the message after the handler succeeded, Duplicator, a router
// publisher this Metrics does not decorate) is left to the message itself, whose Acked and Nacked channels say what
// the router did. Undecided statuses wait on a list that is swept at the
// next message, the next publish and every scrape.

// exceptionUnknown is the exception type of a message the router nacked
// after its handler succeeded, for a reason wmprom did not see (an outer
// middleware's error, a panic in the router, a publisher not decorated by
// this Metrics). It keeps error equal to the sum of exceptions.
const exceptionUnknown = "unknown"

// awaitKey finds a Metrics' awaiting in a produced message's context.
// It holds the Metrics, so that two Metrics on one router never decide
// each other's statuses.
type awaitKey struct{ m *Metrics }

// awaiting is the undecided status of one consumed message. It is also
// the context of its first produced message, wrapping that message's own
// context, so that the common case of one produced message costs one
// allocation (and any other number two).
type awaiting struct {
	context.Context
	m        *Metrics
	series   *receiveSeries
	exemplar prometheus.Labels
	status   status // recorded when the router acks: acked, or rejected by an inner PoisonQueue
	// remaining counts produced messages not yet published: the last
	// successful publish decides acked.
	remaining atomic.Int32
	decided   atomic.Bool

	// Under the list's mutex: the consumed message (dropped once decided,
	// as a produced message can outlive it) and the list links.
	consumed   *message.Message
	prev, next *awaiting
}

// Value makes the awaiting findable under its Metrics' key.
func (a *awaiting) Value(key any) any {
	if k, ok := key.(awaitKey); ok && k.m == a.m {
		return a
	}
	return a.Context.Value(key)
}

func (a *awaiting) awaited() (*awaiting, context.Context) { return a, a.Context }

// awaitTag carries an awaiting on the produced messages after the first.
type awaitTag struct {
	context.Context
	a *awaiting
}

func (t *awaitTag) Value(key any) any {
	if k, ok := key.(awaitKey); ok && k.m == t.a.m {
		return t
	}
	return t.Context.Value(key)
}

func (t *awaitTag) awaited() (*awaiting, context.Context) { return t.a, t.Context }

// awaitLink is what a produced message's context holds under an awaitKey:
// an awaiting, and the context it wraps, where a handler instrumented
// twice by the same Metrics (the Plugin and Middleware both) left the
// inner layer's.
type awaitLink interface {
	awaited() (*awaiting, context.Context)
}

// undecided lists the awaitings of one Metrics, newest first. pending
// lets every path skip the list while it is empty.
type undecided struct {
	mu         sync.Mutex
	head, tail *awaiting
	pending    atomic.Int64
}

// sweepStep is how many awaitings a message or a publish checks: enough to
// keep up with the ones the fast path misses, few enough that a long list
// of publishes in flight costs every message only a bounded walk.
const sweepStep = 4

// await makes msg's status wait for the router to publish produced. Nil
// produced messages are left alone: the router fails on them before any
// publish, and the backstop sees the nack.
func (m *Metrics) await(s *receiveSeries, msg *message.Message, produced []*message.Message, st status, ex prometheus.Labels) {
	a := &awaiting{m: m, series: s, exemplar: ex, status: st, consumed: msg}
	n := 0
	for _, p := range produced {
		if p != nil {
			n++
		}
	}
	var tags []awaitTag // one allocation for all the produced messages after the first
	if n > 1 {
		tags = make([]awaitTag, n-1)
	}
	i := 0
	for _, p := range produced {
		if p == nil {
			continue
		}
		if i == 0 {
			a.Context = p.Context()
			p.SetContext(a)
		} else {
			t := &tags[i-1]
			t.Context, t.a = p.Context(), a
			p.SetContext(t)
		}
		i++
	}
	a.remaining.Store(int32(n))
	u := &m.undecided
	u.mu.Lock()
	u.push(a)
	u.pending.Add(1)
	u.mu.Unlock()
}

// push puts a at the head of the list; the caller holds the mutex.
func (u *undecided) push(a *awaiting) {
	a.prev, a.next = nil, u.head
	if u.head != nil {
		u.head.prev = a
	} else {
		u.tail = a
	}
	u.head = a
}

// remove takes a off the list; the caller holds the mutex.
func (u *undecided) remove(a *awaiting) {
	if a.prev != nil {
		a.prev.next = a.next
	} else {
		u.head = a.next
	}
	if a.next != nil {
		a.next.prev = a.prev
	} else {
		u.tail = a.prev
	}
	a.prev, a.next = nil, nil
}

// published decides the statuses msgs carry, now that their publish
// returned err, or panicked.
func (m *Metrics) published(msgs []*message.Message, err error, panicked bool) {
	if m.undecided.pending.Load() == 0 {
		return
	}
	exception := ""
	for _, msg := range msgs {
		if msg == nil {
			continue
		}
		for ctx := msg.Context(); ; {
			l, ok := ctx.Value(awaitKey{m}).(awaitLink)
			if !ok {
				break
			}
			var a *awaiting
			a, ctx = l.awaited()
			switch {
			case panicked:
				m.decide(a, statusError, exceptionPanic)
			case err != nil:
				if exception == "" {
					exception = m.processExceptionTypes.of(err)
				}
				m.decide(a, statusError, exception)
			case a.remaining.Add(-1) == 0:
				m.decide(a, a.status, "")
			}
		}
	}
}

// decide records a's status unless it is already decided.
func (m *Metrics) decide(a *awaiting, st status, exception string) {
	if !a.decided.CompareAndSwap(false, true) {
		return
	}
	u := &m.undecided
	u.mu.Lock()
	u.unlink(a)
	u.mu.Unlock()
	m.record(a.series, st, exception, a.exemplar)
}

// unlink takes a decided a off the list for good; the caller holds the
// mutex.
func (u *undecided) unlink(a *awaiting) {
	u.remove(a)
	a.consumed = nil
	u.pending.Add(-1)
}

// sweep decides the awaitings whose consumed message the router has
// acked or nacked. A message or a publish only tries the lock, so that
// they never queue behind each other, and checks the sweepStep oldest
// awaitings, moving the undecided ones to the head so that the next
// sweep checks others. A scrape waits for the lock and checks them all,
// so that a status the router settled before one scrape is exposed by the
// next at the latest (registries collect concurrently, so the same scrape
// may not show it yet). Recording under the lock only adds to counters.
func (m *Metrics) sweep(all bool) {
	u := &m.undecided
	if u.pending.Load() == 0 {
		return
	}
	if all {
		u.mu.Lock()
	} else if !u.mu.TryLock() {
		return
	}
	defer u.mu.Unlock()
	if all {
		for a := u.head; a != nil; {
			next := a.next
			m.settle(a)
			a = next
		}
		return
	}
	for range sweepStep {
		a := u.tail
		if a == nil {
			return
		}
		if !m.settle(a) {
			if a == u.head {
				return // checked them all
			}
			u.remove(a)
			u.push(a)
		}
	}
}

// settle decides a if the router is done with its consumed message,
// telling whether it did. The caller holds the list's mutex.
func (m *Metrics) settle(a *awaiting) bool {
	st, exception, done := routerOutcome(a)
	if !done {
		return false
	}
	if a.decided.CompareAndSwap(false, true) {
		m.undecided.unlink(a)
		m.record(a.series, st, exception, a.exemplar)
	}
	return true
}

// routerOutcome reads what the router did with a's consumed message,
// without waiting: an ack confirms the handler's status, a nack is an
// error whose cause wmprom did not see.
func routerOutcome(a *awaiting) (st status, exception string, done bool) {
	select {
	case <-a.consumed.Acked():
		return a.status, "", true
	default:
	}
	select {
	case <-a.consumed.Nacked():
		return statusError, exceptionUnknown, true
	default:
		return 0, "", false
	}
}

// sweeper sweeps at every scrape, so that a quiet service's statuses do
// not wait for its next message. It describes nothing, which makes it an
// unchecked collector that any registry accepts.
type sweeper struct{ m *Metrics }

func (sweeper) Describe(chan<- *prometheus.Desc) {}

func (s sweeper) Collect(chan<- prometheus.Metric) { s.m.sweep(true) }
