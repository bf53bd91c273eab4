package wmprom

import (
	"reflect"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
)

// brokerByPackage maps the Go package name of a Watermill pub/sub to the
// broker label FastStream uses for the same broker.
var brokerByPackage = map[string]string{
	"kafka":       "kafka", // watermill-kafka
	"amqp":        "rabbit",
	"nats":        "nats", // watermill-nats, core NATS
	"jetstream":   "nats", // watermill-nats, JetStream
	"redisstream": "redis",
}

// brokerFromTypeName detects the broker from a name such as the router
// gives subscribers ("kafka.Subscriber"): the package part decides. Other
// pub/subs get their package name in lower case ("gochannel", "sql").
func brokerFromTypeName(name string) string {
	name = strings.TrimLeft(name, "*")
	if i := strings.IndexByte(name, '.'); i >= 0 {
		name = name[:i]
	}
	if b, ok := brokerByPackage[name]; ok {
		return b
	}
	// A subscriber's String method names it: any text may come here.
	return labelValue(strings.ToLower(name))
}

// brokerOf detects the broker of a publisher or subscriber value.
func brokerOf(v any) string { return brokerOfType(reflect.TypeOf(v)) }

// Decorators hide the broker: a tracing or retrying wrapper of the
// application's, or Watermill's own, is a type of some other package
// than the broker's. Detection therefore looks through decorators: one
// that hands out what it wraps, the convention of errors.Unwrap, or that
// keeps it in a field (embedded or named, exported or not) of the
// Publisher or Subscriber interface type, or of a type implementing it.

// publisherWrapper is a publisher decorator that says what it wraps.
type publisherWrapper interface{ Unwrap() message.Publisher }

// subscriberWrapper is a subscriber decorator that says what it wraps.
type subscriberWrapper interface{ Unwrap() message.Subscriber }

var (
	publisherType  = reflect.TypeFor[message.Publisher]()
	subscriberType = reflect.TypeFor[message.Subscriber]()
)

// maxDecorators bounds the look-through, in case a decorator hands out
// itself or two hand out each other.
const maxDecorators = 16

// decoratorChain returns v and what it wraps, outermost first, following
// unwrap (for values reflection may call methods of) and fields of type
// iface.
func decoratorChain(v reflect.Value, iface reflect.Type, unwrap func(any) (any, bool)) []reflect.Value {
	var chain []reflect.Value
	for v.IsValid() && len(chain) < maxDecorators {
		chain = append(chain, v)
		v = wrapped(v, iface, unwrap)
	}
	return chain
}

// wrapped returns what the decorator v wraps, or an invalid Value.
func wrapped(v reflect.Value, iface reflect.Type, unwrap func(any) (any, bool)) reflect.Value {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return reflect.Value{} // a typed nil wraps nothing, and its methods may panic
	}
	// Values read from unexported fields (Watermill's own decorators keep
	// the subscriber in one) refuse method calls: for those only the
	// fields can tell.
	if v.CanInterface() {
		if inner, ok := unwrap(v.Interface()); ok && inner != nil {
			return reflect.ValueOf(inner)
		}
	}
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return reflect.Value{}
	}
	for i := range v.NumField() {
		f := v.Field(i)
		if !f.Type().Implements(iface) {
			continue
		}
		switch f.Kind() {
		case reflect.Interface:
			if !f.IsNil() {
				return f.Elem()
			}
		case reflect.Pointer:
			if !f.IsNil() {
				return f
			}
		default:
			return f
		}
	}
	return reflect.Value{}
}

// unwrapPublisher and unwrapSubscriber call the application's Unwrap
// method. Detection runs when the router starts: an Unwrap that panics
// must not take the service down, so it counts as wrapping nothing.
func unwrapPublisher(v any) (inner any, ok bool) {
	w, is := v.(publisherWrapper)
	if !is {
		return nil, false
	}
	defer func() {
		if recover() != nil {
			inner, ok = nil, false
		}
	}()
	p := w.Unwrap()
	return p, p != nil
}

func unwrapSubscriber(v any) (inner any, ok bool) {
	w, is := v.(subscriberWrapper)
	if !is {
		return nil, false
	}
	defer func() {
		if recover() != nil {
			inner, ok = nil, false
		}
	}()
	s := w.Unwrap()
	return s, s != nil
}

// innermostPublisher is the publisher at the bottom of pub's decorators.
func innermostPublisher(pub message.Publisher) reflect.Value {
	chain := decoratorChain(reflect.ValueOf(pub), publisherType, unwrapPublisher)
	if len(chain) == 0 {
		return reflect.Value{}
	}
	return chain[len(chain)-1]
}

// publisherBroker detects the broker of pub, looking through decorators.
func publisherBroker(pub message.Publisher) string {
	inner := innermostPublisher(pub)
	if !inner.IsValid() {
		return unknown
	}
	return brokerOfType(inner.Type())
}

// placeholderPublisher tells whether pub is, under any decorators,
// Watermill's stand-in publisher of handlers added with
// AddConsumerHandler, which fails every publish and is never called with
// a message: its series would stay at zero for good.
func placeholderPublisher(pub message.Publisher) bool {
	inner := innermostPublisher(pub)
	if !inner.IsValid() {
		return false
	}
	t := inner.Type()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath() == watermillMessagePackage && t.Name() == "disabledPublisher"
}

const watermillMessagePackage = "github.com/ThreeDotsLabs/watermill/message"

// brokerOfType detects the broker from the package that defines t.
func brokerOfType(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return unknown
	}
	pkg := t.PkgPath()
	if i := strings.LastIndexByte(pkg, '/'); i >= 0 {
		pkg = pkg[i+1:]
	}
	return brokerFromTypeName(pkg)
}
