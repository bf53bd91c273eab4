package wmprom

import (
	"math/rand"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

// The index agrees with a map through random adds and removes, across
// growth and the wrap-around of probe runs, and finds nothing it does not
// hold.
func TestProducedIndexAgreesWithAMap(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var x producedIndex
	want := map[*message.Message]*awaiting{}
	var live []*message.Message
	owners := make([]*awaiting, 8)
	for i := range owners {
		owners[i] = new(awaiting)
	}
	for step := 0; step < 200000; step++ {
		if len(live) == 0 || rng.Intn(3) > 0 && len(live) < 5000 {
			msg, a := message.NewMessage("m", nil), owners[rng.Intn(len(owners))]
			x.add(msg, a)
			want[msg] = a
			live = append(live, msg)
		} else {
			i := rng.Intn(len(live))
			msg := live[i]
			live[i] = live[len(live)-1]
			live = live[:len(live)-1]
			x.remove(msg, owners[(indexOf(owners, want[msg])+1)%len(owners)]) // not its owner: no effect
			x.remove(msg, want[msg])
			delete(want, msg)
			if got := x.find(msg); got != nil {
				t.Fatalf("step %d: a removed message is still found", step)
			}
		}
		if x.used != len(want) {
			t.Fatalf("step %d: %d entries, want %d", step, x.used, len(want))
		}
		if step%1000 == 0 {
			for msg, a := range want {
				if got := x.find(msg); got != a {
					t.Fatalf("step %d: find returned %p, want %p", step, got, a)
				}
			}
		}
	}
	if x.find(message.NewMessage("never added", nil)) != nil {
		t.Error("a message never added is found")
	}
}

func indexOf(owners []*awaiting, a *awaiting) int {
	for i, o := range owners {
		if o == a {
			return i
		}
	}
	return -1
}

// One message produced for two consumed messages (a handler returning a
// shared object) is indexed twice, and removing it for one leaves it for
// the other.
func TestProducedIndexSameMessageTwice(t *testing.T) {
	var x producedIndex
	msg, first, second := message.NewMessage("m", nil), new(awaiting), new(awaiting)
	x.add(msg, first)
	x.add(msg, second)
	x.remove(msg, first)
	if got := x.find(msg); got != second {
		t.Fatalf("found %p, want the second awaiting %p", got, second)
	}
	x.remove(msg, second)
	if x.find(msg) != nil || x.used != 0 {
		t.Fatalf("%d entries left, want none", x.used)
	}
}
