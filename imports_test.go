package wmprom

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The library may import only the standard library, Watermill and
// client_golang: a service using one broker must not compile the others.
func TestLibraryImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{"github.com/ThreeDotsLabs/watermill/", "github.com/prometheus/client_golang/"}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			checked++
			std := !strings.Contains(strings.SplitN(path, "/", 2)[0], ".")
			ok := std
			for _, prefix := range allowed {
				ok = ok || strings.HasPrefix(path+"/", prefix)
			}
			if !ok {
				t.Errorf("%s imports %s", f, path)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no imports checked")
	}
}
