package wmprom

import (
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
// The fast path: this Metrics' decorated publisher finds the undecided
// status by the produced messages it publishes, and decides it as soon as
// their publish returns, with the publish error's type as the exception.
//
// The backstop: everything the fast path can miss (an outer middleware
// failing the message after the handler succeeded, Duplicator, a router
// publisher this Metrics does not decorate) is left to the message
// itself, whose Acked and Nacked channels say what the router did.
// Undecided statuses wait on a list that is swept at the next message
// and at every scrape. Not at a publish: under the Plugin the oldest
// undecided status is, at a publish, almost always another message's
// whose publish is in flight on another core, and checking it under the
// lock that the other publish waits for cost the GoChannel pipeline 2%
// (BenchmarkRouterGoChannel, consumed, 30 interleaved rounds on an AMD
// EPYC VM: wmprom/hooks 1.020 with the publish's sweep, 0.999 without).

// exceptionUnknown is the exception type of a message the router nacked
// after its handler succeeded, for a reason wmprom did not see (an outer
// middleware's error, a panic in the router, a publisher not decorated by
// this Metrics). It keeps error equal to the sum of exceptions.
const exceptionUnknown = "unknown"

// awaiting is the undecided status of one consumed message. The
// publisher finds it by the produced messages it publishes: their
// contexts are left alone, as a context carrying it would cost every
// such message an allocation and would leak wmprom's state into
// whatever keeps the message after its publish.
type awaiting struct {
	series   *receiveSeries
	exemplar prometheus.Labels
	status   status // recorded when the router acks: acked, or rejected by an inner PoisonQueue
	consumed *message.Message
	// produced are the produced messages it is indexed by, copied from
	// the handler's slice, which an outer middleware may change; the
	// array is kept when the awaiting is reused.
	produced []*message.Message
	// remaining counts produced messages not yet published: the last
	// successful publish decides acked.
	remaining  int
	prev, next *awaiting
}

// undecided lists the awaitings of one Metrics, newest first, and keeps
// decided ones for reuse, so that a steady flow of messages allocates
// nothing. Everything but pending is under mu; pending lets every path
// skip the list while it is empty.
type undecided struct {
	mu         sync.Mutex
	head, tail *awaiting
	index      producedIndex
	free       *awaiting // linked by next
	freeCount  int
	pending    atomic.Int64
}

// sweepStep is how many decided awaitings a message takes off the list
// at most: enough to keep up with the ones the fast path misses, few
// enough that a burst of them costs one message only a bounded walk.
const sweepStep = 4

// maxFree bounds the awaitings kept for reuse: enough for the messages a
// busy router has between handler and publish, while a burst of
// thousands gives most of its memory back.
const maxFree = 256

// await makes the status of r's message wait for the router to publish
// produced. Nil produced messages are left alone: the router fails on
// them before any publish, and the backstop sees the nack.
func (m *Metrics) await(r *reception, produced []*message.Message, st status) {
	u := &m.undecided
	u.mu.Lock()
	a := u.reuse()
	keys := a.produced[:0]
	*a = awaiting{series: r.s, exemplar: r.ex, status: st, consumed: r.msg}
	for _, p := range produced {
		if p != nil {
			keys = append(keys, p)
			u.index.add(p, a)
		}
	}
	a.produced, a.remaining = keys, len(keys)
	u.push(a)
	u.pending.Add(1)
	u.mu.Unlock()
}

// reuse returns a decided awaiting, or a new one; the caller holds the
// mutex.
func (u *undecided) reuse() *awaiting {
	a := u.free
	if a == nil {
		return new(awaiting)
	}
	u.free, a.next = a.next, nil
	u.freeCount--
	return a
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

// published decides the statuses of the messages whose produced messages
// msgs are, now that their publish returned err, or panicked.
func (m *Metrics) published(msgs []*message.Message, err error, panicked bool) {
	u := &m.undecided
	if u.pending.Load() == 0 {
		return
	}
	exception := exceptionPanic
	if !panicked && err != nil {
		// The hook may be the application's: not under the mutex.
		exception = m.processExceptionTypes.of(err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, msg := range msgs {
		if msg == nil {
			continue
		}
		a := u.index.find(msg)
		switch {
		case a == nil:
		case panicked || err != nil:
			m.decide(a, statusError, exception)
		default:
			if a.remaining--; a.remaining == 0 {
				m.decide(a, a.status, "")
			}
		}
	}
}

// decide records a's status and takes it off the list for reuse; the
// caller holds the mutex. Recording only adds to counters.
func (m *Metrics) decide(a *awaiting, st status, exception string) {
	u := &m.undecided
	u.remove(a)
	for _, p := range a.produced {
		u.index.remove(p, a)
	}
	u.pending.Add(-1)
	m.record(a.series, st, exception, a.exemplar)
	if u.freeCount < maxFree {
		// Drop what the awaiting references: a produced message can
		// outlive its publish, and the consumed one its ack. The array
		// of produced messages is kept for the next one.
		clear(a.produced)
		*a = awaiting{next: u.free, produced: a.produced[:0]}
		u.free = a
		u.freeCount++
	}
}

// sweep decides the awaitings whose consumed message the router has
// acked or nacked. A message only tries the lock, so that messages never
// queue behind each other, and checks the oldest awaitings
// until it finds one still undecided, which it moves to the head, so that
// the next sweep checks another; it decides sweepStep at most. With the
// fast path deciding every status, as with Plugin, the oldest awaiting is
// one whose publish is in flight, and a sweep costs one check rather
// than a walk (callgrind, BenchmarkRouterGoChannel). A scrape waits for
// the lock and checks them all, so that a status the router settled
// before one scrape is exposed by the next at the latest (registries
// collect concurrently, so the same scrape may not show it yet).
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
			if a != u.head {
				u.remove(a)
				u.push(a)
			}
			return
		}
	}
}

// settle decides a if the router is done with its consumed message,
// telling whether it did. The caller holds the list's mutex.
func (m *Metrics) settle(a *awaiting) bool {
	st, exception, done := routerOutcome(a)
	if done {
		m.decide(a, st, exception)
	}
	return done
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
