package wmprom

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Detection: the one place where wmprom looks at the Go types of what it
// is given, with reflection, once per subscriber, publisher or error,
// never per message. It relies on these shapes, and on nothing else:
//
//   - A pub/sub's Go package names its broker (brokerByPackage), and the
//     router names a handler's subscriber by its Go type
//     ("kafka.Subscriber") in the messages' contexts.
//   - A decorator is looked through when it has an Unwrap() method
//     returning a message.Publisher or message.Subscriber, or keeps what
//     it wraps in a struct field (exported or not) of a type implementing
//     that interface. An Unwrap that panics counts as wrapping nothing.
//   - The router wraps every handler's subscriber first in the decorator
//     message.MessageTransformSubscriberDecorator returns, to put the
//     handler's names into message contexts; its type is taken from that
//     public function. The subscriber right inside the innermost one is
//     the one the router names.
//   - Handlers added without a publisher get Watermill's placeholder, the
//     unexported disabledPublisher of package message. No public API names
//     it: it is recognised by package and name; were it renamed, such
//     handlers would only get series at zero for declared destinations.
//   - An error's Go type names its exception type, and errors of the
//     packages fmt, errors and github.com/pkg/errors are plain wrappers
//     (exception.go).

// brokerByPackage maps the Go package name of a Watermill pub/sub to the
// broker label FastStream uses for the same broker.
var brokerByPackage = map[string]string{
	"kafka":       "kafka", // watermill-kafka
	"amqp":        "rabbit",
	"nats":        "nats", // watermill-nats, core NATS
	"jetstream":   "nats", // watermill-nats, JetStream
	"redisstream": "redis",
}

const watermillMessagePackage = "github.com/ThreeDotsLabs/watermill/message"

// maxDecorators bounds the look-through, in case a decorator hands out
// itself or two hand out each other.
const maxDecorators = 16

var (
	publisherType  = reflect.TypeFor[message.Publisher]()
	subscriberType = reflect.TypeFor[message.Subscriber]()
	stringerType   = reflect.TypeFor[fmt.Stringer]()

	// routerContextDecorator is the type of the router's context
	// decorator, from the public function that makes it.
	routerContextDecorator = func() reflect.Type {
		sub, _ := message.MessageTransformSubscriberDecorator(func(*message.Message) {})(nil)
		return reflect.TypeOf(sub)
	}()
)

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

// brokerOfType detects the broker from the package that defines t.
func brokerOfType(t reflect.Type) string {
	pkg, _ := typeOf(t)
	if pkg == "" {
		return unknown
	}
	return brokerFromTypeName(pkg[strings.LastIndexByte(pkg, '/')+1:])
}

// typeOf is the package path and name of t, or of what it points to.
func typeOf(t reflect.Type) (pkgPath, name string) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "", ""
	}
	return t.PkgPath(), t.Name()
}

// unwrap calls the Unwrap method of a publisher or subscriber decorator.
// Detection runs when the router starts: an Unwrap that panics must not
// take the service down, so it counts as wrapping nothing.
func unwrap(v any) (inner any, ok bool) {
	defer func() {
		if recover() != nil {
			inner, ok = nil, false
		}
	}()
	switch w := v.(type) {
	case interface{ Unwrap() message.Publisher }:
		if p := w.Unwrap(); p != nil {
			return p, true
		}
	case interface{ Unwrap() message.Subscriber }:
		if s := w.Unwrap(); s != nil {
			return s, true
		}
	}
	return nil, false
}

// decoratorChain returns v and what it wraps, outermost first, following
// Unwrap methods (of values reflection may call methods of) and fields
// of type iface.
func decoratorChain(v reflect.Value, iface reflect.Type) []reflect.Value {
	var chain []reflect.Value
	for v.IsValid() && len(chain) < maxDecorators {
		chain = append(chain, v)
		v = wrapped(v, iface)
	}
	return chain
}

// wrapped returns what the decorator v wraps, or an invalid Value.
func wrapped(v reflect.Value, iface reflect.Type) reflect.Value {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return reflect.Value{} // a typed nil wraps nothing, and its methods may panic
	}
	// Values read from unexported fields refuse method calls: for those
	// only the fields can tell.
	if v.CanInterface() {
		if inner, ok := unwrap(v.Interface()); ok {
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

// innermostPublisher is the type of the publisher at the bottom of pub's
// decorators, nil for a nil publisher.
func innermostPublisher(pub message.Publisher) reflect.Type {
	chain := decoratorChain(reflect.ValueOf(pub), publisherType)
	if len(chain) == 0 {
		return nil
	}
	return chain[len(chain)-1].Type()
}

// publisherBroker detects the broker of pub, looking through decorators.
func publisherBroker(pub message.Publisher) string { return brokerOfType(innermostPublisher(pub)) }

// isPlaceholderPublisher tells whether pub is, under any decorators,
// Watermill's stand-in publisher of handlers added without one, which is
// never called with a message: its series would stay at zero for good.
func isPlaceholderPublisher(pub message.Publisher) bool {
	pkg, name := typeOf(innermostPublisher(pub))
	return pkg == watermillMessagePackage && name == "disabledPublisher"
}

// detectedSubscriber is what detectSubscriber finds in a subscriber.
type detectedSubscriber struct {
	// named is the router's name of the subscriber the handler was added
	// with, or "" when it cannot be known: outside a router, or for a
	// subscriber named by a String method, which reflection may not call
	// on the value it reaches.
	named  string
	broker string // the broker at the bottom of every decorator
}

// detectSubscriber looks through the decorators the router and the
// application put around a handler's subscriber.
func detectSubscriber(sub message.Subscriber) detectedSubscriber {
	chain := decoratorChain(reflect.ValueOf(sub), subscriberType)
	d := detectedSubscriber{broker: unknown}
	if len(chain) == 0 {
		return d
	}
	d.broker = brokerOfType(chain[len(chain)-1].Type())
	for i := len(chain) - 2; i >= 0; i-- {
		if chain[i].Type() == routerContextDecorator {
			named := chain[i+1].Type()
			if !named.Implements(stringerType) && !reflect.PointerTo(named).Implements(stringerType) {
				d.named = strings.TrimLeft(named.String(), "*")
			}
			break
		}
	}
	return d
}

// errorType is the package path and the name, as the %T verb gives it
// without pointers, of err's Go type.
func errorType(err error) (pkgPath, name string) {
	t := reflect.TypeOf(err)
	pkgPath, _ = typeOf(t)
	return pkgPath, strings.TrimLeft(t.String(), "*")
}
