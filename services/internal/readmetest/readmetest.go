// Package readmetest checks a README's account of environment variables
// against the configuration structs the code reads (their env tags, through
// platform.Vars), so the documentation cannot drift from the code unseen.
//
// What a README states about a variable, as this package reads it:
//   - a table row whose first cell names the variable (in backticks; several
//     per cell allowed, e.g. "`A` / `B`") documents it; a second cell that is
//     exactly one backticked value states its default, anything else (empty,
//     "required", prose) states none;
//   - prose of the form "`NAME` (default `VALUE`" states a default too;
//   - any other mention of NAME (AUTOTRIAGE_*, NATS_*, FRESHDESK_*) names
//     it; "PREFIX_*" names every variable with that prefix, and NAME_FILE
//     names the secret NAME (secrets also accept a file).
//
// Tokens such as "`_SECRET`" (a suffix standing for a name) are not read as
// names: a README writes each variable in full.
package readmetest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/autotriage/autotriage/services/internal/platform"
)

// Spec is what one README promises.
type Spec struct {
	Path string // of the README, relative to the calling test's package

	// Vars are the variables the README may name: those of the binary it
	// documents (or, for a deployment guide, of everything deployed). A
	// name outside them, or a stated default that is not theirs, fails.
	Vars []platform.Var

	// Listed must each have a table row of their own.
	Listed []platform.Var

	// Shared must each be named somewhere in the README (a PREFIX_*
	// wildcard counts), unless Reference is set: then the README must link
	// to Reference instead, the place that lists them.
	Shared    []platform.Var
	Reference string
}

// Row is a table row documenting variables.
type Row struct {
	Line       int
	Names      []string
	Default    string
	HasDefault bool
}

// Doc is what a README says about variables.
type Doc struct {
	Rows  []Row
	Names map[string]int // every name mentioned (wildcards as PREFIX_*), to its first line
	Prose []Row          // defaults stated in prose: "`NAME` (default `VALUE`"
	text  string
}

var (
	nameRE         = regexp.MustCompile(`\b(?:AUTOTRIAGE|NATS|FRESHDESK)_[A-Z0-9_]*(?:\*|\b)`)
	tickRE         = regexp.MustCompile("`([^`]*)`")
	proseDefaultRE = regexp.MustCompile("`((?:AUTOTRIAGE|NATS|FRESHDESK)_[A-Z0-9_]+)` \\(default `([^`]*)`")
)

// Parse reads a README's Markdown.
func Parse(text string) Doc {
	d := Doc{Names: map[string]int{}, text: text}
	for i, line := range strings.Split(text, "\n") {
		for _, n := range nameRE.FindAllString(line, -1) {
			if _, ok := d.Names[n]; !ok {
				d.Names[n] = i + 1
			}
		}
		for _, m := range proseDefaultRE.FindAllStringSubmatch(line, -1) {
			d.Prose = append(d.Prose, Row{Line: i + 1, Names: []string{m[1]}, Default: m[2], HasDefault: true})
		}
		if r, ok := parseRow(line); ok {
			r.Line = i + 1
			d.Rows = append(d.Rows, r)
		}
	}
	return d
}

// parseRow reads "| `NAME` ... | `default` | meaning |".
func parseRow(line string) (Row, bool) {
	cells := splitCells(line)
	if len(cells) < 2 {
		return Row{}, false
	}
	var r Row
	for _, m := range tickRE.FindAllStringSubmatch(cells[0], -1) {
		if n := m[1]; nameRE.FindString(n) == n && !strings.HasSuffix(n, "*") {
			r.Names = append(r.Names, n)
		}
	}
	if len(r.Names) == 0 {
		return Row{}, false
	}
	def := strings.TrimSpace(cells[1])
	if m := tickRE.FindStringSubmatch(def); m != nil && m[0] == def {
		r.Default, r.HasDefault = m[1], true
	}
	return r, true
}

// splitCells splits a Markdown table row on the pipes outside code spans
// and not escaped; it returns nil for a line that is no table row.
func splitCells(line string) []string {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "|") {
		return nil
	}
	var cells []string
	var cur strings.Builder
	code := false
	for i := 1; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\' && i+1 < len(line) && line[i+1] == '|':
			cur.WriteByte('|')
			i++
		case c == '`':
			code = !code
			cur.WriteByte(c)
		case c == '|' && !code:
			cells = append(cells, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return cells
}

// Check fails t for every way the README at s.Path breaks s.
func Check(t testing.TB, s Spec) {
	t.Helper()
	b, err := os.ReadFile(s.Path)
	if err != nil {
		t.Fatalf("%s: %v", s.Path, err)
	}
	for _, p := range Problems(Parse(string(b)), s) {
		t.Errorf("%s:%s", s.Path, p)
	}
	if file, anchor, ok := strings.Cut(s.Reference, "#"); ok {
		target := filepath.Join(filepath.Dir(s.Path), file)
		ref, err := os.ReadFile(target)
		if err != nil {
			t.Fatalf("%s: the reference %s: %v", s.Path, s.Reference, err)
		}
		if !Anchors(string(ref))[anchor] {
			t.Errorf("%s: links to %s, but %s has no heading with that anchor", s.Path, s.Reference, target)
		}
	}
}

// Anchors are the link targets of a Markdown file's headings, as GitHub
// makes them: lower case, punctuation dropped, spaces as hyphens.
func Anchors(text string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		h := strings.TrimLeft(line, "#")
		if h == line || !strings.HasPrefix(h, " ") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(h)) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}

// Problems lists what d says that s does not allow, and what s requires
// that d does not say, each as "line: problem" (line 0 for a missing one).
func Problems(d Doc, s Spec) []string {
	var out []string
	vars := map[string]platform.Var{}
	for _, v := range s.Vars {
		if _, dup := vars[v.Name]; !dup { // the first one listed is the one that counts
			vars[v.Name] = v
		}
	}
	if s.Vars != nil {
		out = append(out, unknownNames(d, vars)...)
		out = append(out, wrongDefaults(d, vars)...)
	}
	inRow := map[string]bool{}
	for _, r := range d.Rows {
		for _, n := range r.Names {
			inRow[n] = true
		}
	}
	for _, v := range s.Listed {
		if !inRow[v.Name] {
			out = append(out, fmt.Sprintf("0: %s has no row in the variable table", v.Name))
		}
	}
	if s.Reference != "" {
		if len(s.Shared) > 0 && !strings.Contains(d.text, "("+s.Reference+")") {
			out = append(out, fmt.Sprintf("0: no link to %s, where the shared variables are listed", s.Reference))
		}
		sort.Strings(out)
		return out
	}
	for _, v := range s.Shared {
		if !d.names(v.Name) {
			out = append(out, fmt.Sprintf("0: %s is not mentioned", v.Name))
		}
	}
	sort.Strings(out)
	return out
}

// names reports whether the README mentions name, by itself or a wildcard.
func (d Doc) names(name string) bool {
	if _, ok := d.Names[name]; ok {
		return true
	}
	for n := range d.Names {
		if p, ok := strings.CutSuffix(n, "*"); ok && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func unknownNames(d Doc, vars map[string]platform.Var) []string {
	var out []string
	for n, line := range d.Names {
		if p, ok := strings.CutSuffix(n, "*"); ok {
			if !anyPrefixed(vars, p) {
				out = append(out, fmt.Sprintf("%d: %s matches no variable", line, n))
			}
			continue
		}
		if _, ok := vars[n]; ok {
			continue
		}
		if base, ok := strings.CutSuffix(n, "_FILE"); ok && vars[base].Secret {
			continue
		}
		out = append(out, fmt.Sprintf("%d: %s is not a variable of what this README documents", line, n))
	}
	return out
}

func anyPrefixed(vars map[string]platform.Var, prefix string) bool {
	for n := range vars {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

func wrongDefaults(d Doc, vars map[string]platform.Var) []string {
	var out []string
	check := func(line int, name, stated string) {
		if v, ok := vars[name]; ok && v.Default != stated {
			out = append(out, fmt.Sprintf("%d: %s: the README says default %q, the code %q", line, name, stated, v.Default))
		}
	}
	for _, r := range append(d.Rows, d.Prose...) {
		if r.HasDefault {
			for _, n := range r.Names {
				check(r.Line, n, r.Default)
			}
		}
	}
	return out
}
