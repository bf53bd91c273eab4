package footprint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The library's module path, unpublished: scratch modules reach the
// repository root through a replace directive and require this version.
const (
	libraryPath    = "github.com/wmprom/wmprom"
	libraryVersion = "v0.0.0"
	watermillPath  = "github.com/ThreeDotsLabs/watermill"
	clientPath     = "github.com/prometheus/client_golang"
)

// goCmd runs the go command in dir as a consumer outside this repository
// would: no workspace, go.mod and go.sum updated as needed, the installed
// toolchain only (a go line the toolchain cannot build must fail, not
// download another one). The module cache is the user's, so a second run
// needs no network.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go %s in %s: %v\n%s%s", strings.Join(args, " "), dir, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// goMod is the part of `go mod edit -json` these tests read.
type goMod struct {
	Go        string
	Toolchain string
	Require   []struct {
		Path    string
		Version string
	}
}

func (m goMod) version(path string) string {
	for _, r := range m.Require {
		if r.Path == path {
			return r.Version
		}
	}
	return ""
}

func readGoMod(t *testing.T, dir string) goMod {
	t.Helper()
	var m goMod
	if err := json.Unmarshal([]byte(goCmd(t, dir, "mod", "edit", "-json")), &m); err != nil {
		t.Fatalf("go mod edit -json in %s: %v", dir, err)
	}
	return m
}

// repoRoot is the library's module directory, the parent of this module.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// library reads the root go.mod: the go directive and the Watermill and
// client_golang versions a consumer inherits.
func library(t *testing.T) goMod {
	t.Helper()
	m := readGoMod(t, repoRoot(t))
	if m.Go == "" || m.version(watermillPath) == "" || m.version(clientPath) == "" {
		t.Fatalf("root go.mod: go %q, watermill %q, client_golang %q; want all three", m.Go, m.version(watermillPath), m.version(clientPath))
	}
	return m
}

// scratchModule creates an empty module in a temporary directory with the
// given go directive and any files, named relative to it.
func scratchModule(t *testing.T, goVersion string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["go.mod"] = "module example.com/consumer\n\ngo " + goVersion + "\n"
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// addLibrary makes dir require the library as `go get` would, through a
// replace directive to this repository's root.
func addLibrary(t *testing.T, dir string) {
	t.Helper()
	goCmd(t, dir, "mod", "edit", "-replace", libraryPath+"="+repoRoot(t))
	goCmd(t, dir, "get", libraryPath+"@"+libraryVersion)
}

// modules lists the module graph of dir's main module (`go list -m all`)
// as path -> version, without the main module itself.
func modules(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := goCmd(t, dir, "list", "-m", "-f", "{{if not .Main}}{{.Path}} {{.Version}}{{end}}", "all")
	mods := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if path, version, ok := strings.Cut(line, " "); ok {
			mods[path] = version
		}
	}
	return mods
}

// quickStartFile is the README's quick start, verbatim.
const quickStartFile = "testdata/quickstart/main.go"

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// packageImports returns the non-standard-library import paths of a Go file.
func packageImports(t *testing.T, src string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", src, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			t.Fatal(err)
		}
		if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
			paths = append(paths, p)
		}
	}
	return paths
}

// libraryImports returns the non-standard-library packages the library
// package imports (not its tests), read from the root module as it is.
func libraryImports(t *testing.T) []string {
	t.Helper()
	out := goCmd(t, repoRoot(t), "list", "-mod=readonly", "-f", `{{join .Imports "\n"}}`, ".")
	var paths []string
	for _, p := range strings.Fields(out) {
		if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		t.Fatalf("go list found no imports in the library package")
	}
	return paths
}

// blankImports is a main package importing the given packages for their
// side effects only: their modules' footprint without any code of ours.
func blankImports(paths []string) string {
	var b strings.Builder
	b.WriteString("package main\n\nimport (\n")
	for _, p := range paths {
		fmt.Fprintf(&b, "\t_ %q\n", p)
	}
	b.WriteString(")\n\nfunc main() {}\n")
	return b.String()
}
