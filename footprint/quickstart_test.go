package footprint

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestQuickStart keeps the README's quick start true: the README shows
// testdata/quickstart/main.go verbatim, and that program builds and passes
// go vet in a scratch module that requires only the library, on the
// versions a consumer inherits.
func TestQuickStart(t *testing.T) {
	src := readFile(t, quickStartFile)
	readme := readFile(t, filepath.Join(repoRoot(t), "README.md"))
	if !strings.Contains(readme, "```go\n"+src+"```\n") {
		t.Errorf("README.md does not show %s verbatim in a go code block", quickStartFile)
	}

	dir := scratchModule(t, "1.21", map[string]string{"main.go": src})
	addLibrary(t, dir)
	goCmd(t, dir, "mod", "tidy")
	goCmd(t, dir, "vet", ".")
	goCmd(t, dir, "build", "-o", filepath.Join(t.TempDir(), "quickstart"), ".")
	lib := library(t)
	if got := modules(t, dir); got[watermillPath] != lib.version(watermillPath) || got[clientPath] != lib.version(clientPath) {
		t.Errorf("built with Watermill %s and client_golang %s, want the minimums %s and %s", got[watermillPath], got[clientPath], lib.version(watermillPath), lib.version(clientPath))
	}
}

// TestReadmeInstall checks that the README's install section names the
// go get line and the minimum versions the root go.mod really requires.
func TestReadmeInstall(t *testing.T) {
	lib := library(t)
	readme := readFile(t, filepath.Join(repoRoot(t), "README.md"))
	for _, want := range []string{
		"go get github.com/wmprom/wmprom@latest",
		"Go " + lib.Go,
		"Watermill " + lib.version(watermillPath),
		"client_golang " + lib.version(clientPath),
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md does not say %q", want)
		}
	}
}
