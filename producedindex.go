package wmprom

import (
	"unsafe"

	"github.com/ThreeDotsLabs/watermill/message"
)

// producedIndex finds the awaiting of a produced message in constant
// time, however many statuses are undecided: a broker whose publishes
// are slow keeps thousands of them at once, and a walk of the list per
// publish would cost each message a walk of thousands.
//
// It is a hash table keyed by the message's address, with open addressing
// and linear probing, so that it allocates only when it grows: never per
// message. It is only used under the undecided list's mutex.
type producedIndex struct {
	slots []indexSlot // a power of two long, or empty
	used  int
}

type indexSlot struct {
	msg *message.Message
	a   *awaiting
}

// minIndexSlots is the table's first size: enough for the produced
// messages of a few dozen handlers in flight.
const minIndexSlots = 64

// home is msg's first slot. Go does not move heap objects, so an address
// is a stable key for as long as the message is indexed, and the
// awaiting keeps the message alive until then.
func (x *producedIndex) home(msg *message.Message) int {
	h := uint64(uintptr(unsafe.Pointer(msg))) * 0x9e3779b97f4a7c15 // Fibonacci hashing
	return int(h>>32) & (len(x.slots) - 1)
}

// add indexes msg as a produced message of a, growing the table to keep
// it at most half full.
func (x *producedIndex) add(msg *message.Message, a *awaiting) {
	if 2*(x.used+1) > len(x.slots) {
		x.grow()
	}
	mask := len(x.slots) - 1
	i := x.home(msg)
	for x.slots[i].msg != nil {
		i = (i + 1) & mask
	}
	x.slots[i] = indexSlot{msg: msg, a: a}
	x.used++
}

func (x *producedIndex) grow() {
	old := x.slots
	x.slots = make([]indexSlot, max(minIndexSlots, 2*len(old)))
	x.used = 0
	for _, s := range old {
		if s.msg != nil {
			x.add(s.msg, s.a)
		}
	}
}

// find returns the awaiting msg is a produced message of, or nil.
func (x *producedIndex) find(msg *message.Message) *awaiting {
	if x.used == 0 {
		return nil
	}
	mask := len(x.slots) - 1
	for i := x.home(msg); x.slots[i].msg != nil; i = (i + 1) & mask {
		if x.slots[i].msg == msg {
			return x.slots[i].a
		}
	}
	return nil
}

// remove takes msg, as a produced message of a, out of the index. The
// entries after it in its run move back, so that no search stops short
// of them at the hole.
func (x *producedIndex) remove(msg *message.Message, a *awaiting) {
	if x.used == 0 {
		return
	}
	mask := len(x.slots) - 1
	i := x.home(msg)
	for ; x.slots[i] != (indexSlot{msg: msg, a: a}); i = (i + 1) & mask {
		if x.slots[i].msg == nil {
			return
		}
	}
	for j := i; ; {
		j = (j + 1) & mask
		if x.slots[j].msg == nil {
			break
		}
		// The entry at j may move to the hole at i unless its home lies
		// cyclically in (i, j].
		k := x.home(x.slots[j].msg)
		if (i < j && i < k && k <= j) || (i > j && (i < k || k <= j)) {
			continue
		}
		x.slots[i] = x.slots[j]
		i = j
	}
	x.slots[i] = indexSlot{}
	x.used--
}
