package playbook

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestYAMLModulePath: gopkg.in/yaml.v3 is archived; no Go file of the module may import
// it (go.yaml.in/yaml/v3 is the maintained continuation, with the same API).
func TestYAMLModulePath(t *testing.T) {
	root := filepath.Join("..", "..")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "vendor" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return nil // a file another package is in the middle of writing; not this test's concern
		}
		checked++
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "gopkg.in/yaml.v3" || strings.HasPrefix(p, "gopkg.in/yaml.") {
				t.Errorf("%s imports %s; use go.yaml.in/yaml/v3", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("checked only %d files from %s", checked, root)
	}
}
