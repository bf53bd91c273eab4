// Package footprint holds tests of what adopting wmprom costs a service: a
// scratch consumer module that requires only the library must inherit no
// module and no go directive beyond what Watermill and client_golang bring,
// a service on newer versions must not be forced up by adding it, the
// README's quick start must compile as a consumer would build it, and the
// links between the README and docs/ must resolve.
//
// It is a module of its own, with no requirements, because its tests run the
// go command on scratch modules outside the workspace; nothing here imports
// the library. go test caches its results without noticing changes to the
// root module (files outside this module are not part of the cache key):
// run it with -count=1, as CI does.
package footprint
