package codeshape

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxFuncLines is the longest a function may be, from its func line to its
// closing brace inclusive (issue 16: "functions a reader can hold").
const maxFuncLines = 80

// checkedDirs are the packages the limit holds for, relative to this one;
// their subpackages are checked too.
var checkedDirs = []string{"../writer", "../fetcher", "../pipeline", "../freshdesksim"}

func TestFunctionLength(t *testing.T) {
	for _, dir := range checkedDirs {
		files := 0
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			files++
			for _, long := range longFuncs(t, path) {
				t.Errorf("%s: %d lines, over %d; split it into named steps", long.where, long.lines, maxFuncLines)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if files == 0 {
			t.Errorf("%s has no Go files: is checkedDirs out of date?", dir)
		}
	}
}

type longFunc struct {
	where string // file:line name
	lines int
}

// longFuncs lists the declared functions and methods of one file that are
// longer than maxFuncLines. Function literals count toward the function
// holding them.
func longFuncs(t *testing.T, path string) []longFunc {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var out []longFunc
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		start, end := fset.Position(fn.Pos()), fset.Position(fn.End())
		if n := end.Line - start.Line + 1; n > maxFuncLines {
			out = append(out, longFunc{where: fmt.Sprintf("%s:%d %s", filepath.ToSlash(path), start.Line, funcName(fn)), lines: n})
		}
	}
	return out
}

// funcName is Name for a function and Recv.Name for a method.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	typ := fn.Recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	switch x := typ.(type) {
	case *ast.IndexExpr: // generic receiver T[P]
		typ = x.X
	case *ast.IndexListExpr:
		typ = x.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}

// The count is inclusive: a function of exactly maxFuncLines lines passes,
// one more fails, and a method is named with its receiver's type.
func TestFunctionLengthCounts(t *testing.T) {
	body := func(name string, lines int) string {
		return name + " {\n" + strings.Repeat("\t_ = 0\n", lines-2) + "}\n"
	}
	src := "package p\n\ntype T[P any] struct{}\n\n" +
		body("func fits()", maxFuncLines) + body("func (*T[P]) over()", maxFuncLines+1)
	path := filepath.Join(t.TempDir(), "p.go")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	got := longFuncs(t, path)
	if len(got) != 1 || !strings.HasSuffix(got[0].where, " T.over") || got[0].lines != maxFuncLines+1 {
		t.Errorf("longFuncs = %+v, want only T.over at %d lines", got, maxFuncLines+1)
	}
}
