package footprint

import (
	"maps"
	"slices"
	"testing"
)

// TestConsumerFootprint builds the README's quick start as a consumer would
// (require the library, go mod tidy) and compares its module graph with that
// of a program importing the same Watermill and client_golang packages, and
// those the library imports, at the versions the root go.mod names: the
// library may add itself, nothing else, and no higher version of anything.
func TestConsumerFootprint(t *testing.T) {
	lib := library(t)
	quickStart := readFile(t, quickStartFile)

	consumer := scratchModule(t, "1.21", map[string]string{"main.go": quickStart})
	addLibrary(t, consumer)
	goCmd(t, consumer, "mod", "tidy")
	got := modules(t, consumer)

	var imports []string
	for _, p := range append(packageImports(t, quickStart), libraryImports(t)...) {
		if p != libraryPath && !slices.Contains(imports, p) {
			imports = append(imports, p)
		}
	}
	baseline := scratchModule(t, "1.21", map[string]string{"main.go": blankImports(imports)})
	goCmd(t, baseline, "get", watermillPath+"@"+lib.version(watermillPath), clientPath+"@"+lib.version(clientPath))
	goCmd(t, baseline, "mod", "tidy")
	want := modules(t, baseline)

	if got[libraryPath] != libraryVersion {
		t.Fatalf("the consumer's module graph has %s at %q, want %s", libraryPath, got[libraryPath], libraryVersion)
	}
	for _, path := range []string{watermillPath, clientPath} {
		if got[path] != lib.version(path) || want[path] != lib.version(path) {
			t.Errorf("%s: the consumer gets %s, the baseline %s, want the root go.mod's %s", path, got[path], want[path], lib.version(path))
		}
	}
	for _, path := range slices.Sorted(maps.Keys(got)) {
		if path == libraryPath {
			continue
		}
		if v, ok := want[path]; !ok {
			t.Errorf("requiring wmprom brings %s %s, which Watermill %s and client_golang %s do not", path, got[path], lib.version(watermillPath), lib.version(clientPath))
		} else if v != got[path] {
			t.Errorf("requiring wmprom brings %s %s, where Watermill and client_golang bring %s", path, got[path], v)
		}
	}
	t.Logf("the quick start's module graph: %d modules; the same program without wmprom (imports %v): %d", len(got), imports, len(want))

	// The go directive a consumer inherits is the library's minimum.
	if m := readGoMod(t, consumer); m.Go != lib.Go || m.Toolchain != "" {
		t.Errorf("a go 1.21 consumer is raised to go %q (toolchain %q), want the root go.mod's go %s and no toolchain line", m.Go, m.Toolchain, lib.Go)
	}
}

// TestServiceNotForcedUp is issue 10's scenario: a service on go 1.24 with
// newer Watermill, client_golang, go-redis and OpenTelemetry than the
// library's minimums adds wmprom, and none of its modules nor its go
// directive moves.
func TestServiceNotForcedUp(t *testing.T) {
	const goVersion = "1.24"
	service := scratchModule(t, goVersion, map[string]string{})
	goCmd(t, service, "mod", "edit",
		"-require="+watermillPath+"@v1.4.7",
		"-require="+clientPath+"@v1.22.0",
		"-require=github.com/redis/go-redis/v9@v9.7.3",
		"-require=go.opentelemetry.io/otel@v1.35.0",
	)
	before := modules(t, service)
	addLibrary(t, service)
	after := modules(t, service)

	if after[libraryPath] != libraryVersion {
		t.Fatalf("after go get, %s is at %q, want %s", libraryPath, after[libraryPath], libraryVersion)
	}
	for _, path := range slices.Sorted(maps.Keys(before)) {
		if after[path] != before[path] {
			t.Errorf("adding wmprom moves %s from %s to %s", path, before[path], after[path])
		}
	}
	var added []string
	for path, v := range after {
		if _, ok := before[path]; !ok {
			added = append(added, path+"@"+v)
		}
	}
	slices.Sort(added)
	t.Logf("%d modules before; added by wmprom: %v", len(before), added)

	if m := readGoMod(t, service); m.Go != goVersion || m.Toolchain != "" {
		t.Errorf("adding wmprom changes the service's go directive to %q (toolchain %q), want go %s unchanged", m.Go, m.Toolchain, goVersion)
	}
	t.Logf("after adding wmprom: go %s, watermill %s, client_golang %s, go-redis %s, otel %s", readGoMod(t, service).Go,
		after[watermillPath], after[clientPath], after["github.com/redis/go-redis/v9"], after["go.opentelemetry.io/otel"])
}
