package otlp

import (
	"os"
	"strings"
	"testing"
)

// The program docs/otlp.md shows is recipe/main.go, which this module
// compiles, character for character.
func TestDocsShowTheRecipe(t *testing.T) {
	doc, err := os.ReadFile("../docs/otlp.md")
	if err != nil {
		t.Fatal(err)
	}
	recipe, err := os.ReadFile("recipe/main.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```go\n"+string(recipe)+"```\n") {
		t.Error("docs/otlp.md does not show recipe/main.go as it is: copy the file into its go block")
	}
}
