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
	return nonEmpty(strings.ToLower(name))
}

// brokerOf detects the broker of a publisher or subscriber value.
func brokerOf(v any) string { return brokerOfType(reflect.TypeOf(v)) }

// publisherWrapper is a publisher decorator that hands out what it wraps,
// the convention of errors.Unwrap, so detection can look through it.
type publisherWrapper interface{ Unwrap() message.Publisher }

// publisherBroker detects the broker of pub, looking through wrappers
// that have an Unwrap() message.Publisher method.
func publisherBroker(pub message.Publisher) string {
	for range 16 { // a bound, in case a wrapper returns itself
		w, ok := pub.(publisherWrapper)
		if !ok || w.Unwrap() == nil {
			break
		}
		pub = w.Unwrap()
	}
	return brokerOf(pub)
}

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
