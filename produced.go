package wmprom

import (
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// A message whose handler returns produced messages is not done when the
// handler returns: the router publishes them afterwards and nacks the
// message if that fails. Two paths find out what the router did.
//
// The fast path: this Metrics' decorated publisher finds the undecided
// status by the produced messages it publishes, and decides it when their
// publish returns, with the publish error's type as the exception.
//
// The backstop: what the fast path can miss (an outer middleware failing
// the message, a publisher this Metrics does not decorate) is read from
// the message's Acked and Nacked channels, swept a little by each message
// and whole by every scrape.

// exceptionUnknown is the exception type of a message the router nacked
// after its handler succeeded, for a reason wmprom did not see.
const exceptionUnknown = "unknown"

// awaiting is the undecided status of one consumed message, found by its
// produced messages (a context carrying it would cost each an allocation).
type awaiting struct {
	series     *receiveSeries
	exemplar   prometheus.Labels
	status     status // recorded when the router acks: acked, or rejected by an inner PoisonQueue
	consumed   *message.Message
	produced   []*message.Message // copied: an outer middleware may change the handler's slice
	remaining  int                // produced messages not yet published
	prev, next *awaiting
}

// undecided lists the awaitings of one Metrics, newest first, and keeps
// decided ones for reuse, so that a steady flow allocates none. pending
// lets every path skip the mutex while nothing is undecided.
type undecided struct {
	mu         sync.Mutex
	head, tail *awaiting
	byProduced map[*message.Message]*awaiting
	free       []*awaiting
	pending    atomic.Int64
}

// maxFree bounds the awaitings kept for reuse, and sweepStep those a
// message checks, so that a burst costs memory and time only once.
const (
	maxFree   = 256
	sweepStep = 4
)

// await makes the status of r's message wait for the router to publish
// produced. Nil produced messages are left alone: the router fails on
// them before any publish, and the backstop sees the nack.
func (m *Metrics) await(r *reception, produced []*message.Message, st status) {
	u := &m.undecided
	u.mu.Lock()
	defer u.mu.Unlock()
	var a *awaiting
	if n := len(u.free); n > 0 {
		a, u.free = u.free[n-1], u.free[:n-1]
	} else {
		a = new(awaiting)
	}
	keys := a.produced[:0]
	*a = awaiting{series: r.s, exemplar: r.ex, status: st, consumed: r.msg}
	if u.byProduced == nil {
		u.byProduced = map[*message.Message]*awaiting{}
	}
	for _, p := range produced {
		if p != nil {
			keys = append(keys, p)
			u.byProduced[p] = a
		}
	}
	a.produced, a.remaining = keys, len(keys)
	u.push(a)
	u.pending.Add(1)
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
		// The classifier may be the application's: not under the mutex.
		exception = m.processExceptionTypes.of(err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, msg := range msgs {
		a := u.byProduced[msg]
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
// caller holds the mutex.
func (m *Metrics) decide(a *awaiting, st status, exception string) {
	u := &m.undecided
	u.remove(a)
	for _, p := range a.produced {
		delete(u.byProduced, p)
	}
	u.pending.Add(-1)
	m.record(a.series, st, exception, a.exemplar)
	// Drop what it references: a produced message can outlive its
	// publish, and the consumed one its ack. The array is kept.
	if len(u.free) < maxFree {
		clear(a.produced)
		*a = awaiting{produced: a.produced[:0]}
		u.free = append(u.free, a)
	}
}

// sweep decides the awaitings whose consumed message the router has
// acked or nacked. A scrape (all) checks them all, so that a status the
// router settled before one scrape is exposed by the next at the latest.
// A message only tries the mutex, and checks at most sweepStep of the
// oldest: one still undecided moves to the head, so that the next
// message checks another.
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
			u.remove(a)
			u.push(a)
			return
		}
	}
}

// settle decides a if the router is done with its consumed message,
// telling whether it did: an ack confirms the handler's status, a nack is
// an error whose cause wmprom did not see. The caller holds the mutex.
func (m *Metrics) settle(a *awaiting) bool {
	select {
	case <-a.consumed.Acked():
		m.decide(a, a.status, "")
		return true
	default:
	}
	select {
	case <-a.consumed.Nacked():
		m.decide(a, statusError, exceptionUnknown)
		return true
	default:
		return false
	}
}

// sweeper sweeps at every scrape, so that a quiet service's statuses do
// not wait for its next message. It describes nothing, which makes it an
// unchecked collector that any registry accepts.
type sweeper struct{ m *Metrics }

func (sweeper) Describe(chan<- *prometheus.Desc) {}

func (s sweeper) Collect(chan<- prometheus.Metric) { s.m.sweep(true) }
