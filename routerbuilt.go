package wmprom

import (
	"runtime"
	"strings"
)

// A router builds one handler chain for each handler it starts, in the
// function below, by calling every middleware added to it with the
// handler's function: what the middleware returns serves that handler
// alone. Called from there, Middleware may cache its handler's series
// once and read nothing of the messages' contexts after (see
// handlerChainFields.oneHandler). Called from anywhere else (a
// middleware of the application's that calls it, a handler function
// wrapped once and given to several handlers), it cannot know which
// handlers the chain will serve, and checks every message's.
const routerChainBuilder = "github.com/ThreeDotsLabs/watermill/message.(*handler).run"

// builtByRouter tells whether the Middleware that calls it was called
// directly by the router's chain builder: through the method value the
// router holds (a wrapper the compiler names with "-fm"), and nothing
// else in between. Once per chain, never per message. A Watermill that
// renames the builder makes every chain check its messages' contexts, as
// one built elsewhere does: slower, never wrong.
func builtByRouter() bool {
	var pcs [4]uintptr
	// Skipped: Callers, builtByRouter and Middleware.
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs[:])])
	for {
		f, more := frames.Next()
		if !strings.HasSuffix(f.Function, "-fm") {
			return f.Function == routerChainBuilder
		}
		if !more {
			return false
		}
	}
}
