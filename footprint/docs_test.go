package footprint

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	mdHeading = regexp.MustCompile(`(?m)^#+ (.*)$`)
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
)

// anchor is the fragment GitHub gives a heading: lower case, punctuation
// other than hyphens and underscores dropped, spaces as hyphens.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestDocLinks keeps the README and the reference pages it was split into
// linked: every relative link names an existing file, and every #fragment
// a heading of the page it points at.
func TestDocLinks(t *testing.T) {
	root := repoRoot(t)
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil || len(pages) == 0 {
		t.Fatalf("no docs/*.md: %v", err)
	}
	pages = append(pages, filepath.Join(root, "README.md"), filepath.Join(root, "CHANGELOG.md"))
	headings := func(page string) map[string]bool {
		h := map[string]bool{}
		for _, m := range mdHeading.FindAllStringSubmatch(readFile(t, page), -1) {
			h[anchor(m[1])] = true
		}
		return h
	}
	links := 0
	for _, page := range pages {
		for _, m := range mdLink.FindAllStringSubmatch(readFile(t, page), -1) {
			link := m[1]
			if strings.Contains(link, "://") {
				continue
			}
			links++
			path, frag, _ := strings.Cut(link, "#")
			target := page
			if path != "" {
				target = filepath.Join(filepath.Dir(page), path)
			}
			rel, _ := filepath.Rel(root, page)
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s links to %s, which does not exist", rel, link)
				continue
			}
			if frag != "" && !headings(target)[frag] {
				t.Errorf("%s links to %s, which has no heading #%s", rel, link, frag)
			}
		}
	}
	t.Logf("%d relative links checked in %d pages", links, len(pages))
}
