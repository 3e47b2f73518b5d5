// Command vulngate reads `govulncheck -format json` from stdin and decides
// the build: it fails when the code calls a vulnerable symbol, unless the
// vulnerability is in the Go toolchain itself and listed in the accept file.
//
// Module vulnerabilities are never accepted: they are fixed with
// `go get module@fixed`. Toolchain ones can be fixed only by a newer Go than
// the machines run, so they are acknowledged one ID at a time, each with a
// reason, and printed on every run; an entry that no longer matches a
// finding is reported so it can be deleted.
//
// Usage: govulncheck -format json ... | vulngate -accept FILE
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	acceptPath := flag.String("accept", "", "file of accepted Go toolchain vulnerability IDs, one `ID reason` a line")
	flag.Parse()
	accepted := map[string]string{}
	if *acceptPath != "" {
		var err error
		if accepted, err = readAccept(*acceptPath); err != nil {
			fmt.Fprintf(os.Stderr, "vulngate: %v\n", err)
			os.Exit(2)
		}
	}
	rep, err := read(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vulngate: %v\n", err)
		os.Exit(2)
	}
	if !rep.judge(os.Stdout, accepted) {
		os.Exit(1)
	}
}

type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
	Position *struct {
		Filename string `json:"filename"`
		Line     int    `json:"line"`
	} `json:"position"`
}

type message struct {
	Config *struct {
		ScannerVersion string `json:"scanner_version"`
		DB             string `json:"db"`
		DBLastModified string `json:"db_last_modified"`
		GoVersion      string `json:"go_version"`
	} `json:"config"`
	SBOM *struct {
		GoVersion string `json:"go_version"`
		Modules   []struct {
			Path string `json:"path"`
		} `json:"modules"`
		Roots []string `json:"roots"`
	} `json:"SBOM"`
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string   `json:"osv"`
		FixedVersion string   `json:"fixed_version"`
		Trace        []*frame `json:"trace"`
	} `json:"finding"`
}

// called is one vulnerability the code reaches, with the first call path
// govulncheck reported for it.
type called struct {
	id, module, version, fixed string
	trace                      []*frame
}

type report struct {
	header   []string
	summary  map[string]string
	called   map[string]*called
	notReach map[string]bool
}

func read(r io.Reader) (*report, error) {
	rep := &report{summary: map[string]string{}, called: map[string]*called{}, notReach: map[string]bool{}}
	dec := json.NewDecoder(bufio.NewReader(r))
	sawConfig, sawSBOM := false, false
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading govulncheck output: %w", err)
		}
		switch {
		case m.Config != nil:
			sawConfig = true
			rep.header = append(rep.header, fmt.Sprintf("govulncheck %s, %s, db %s (modified %s)",
				m.Config.ScannerVersion, m.Config.GoVersion, m.Config.DB, m.Config.DBLastModified))
		case m.SBOM != nil:
			sawSBOM = true
			rep.header = append(rep.header, fmt.Sprintf("scanned %d packages in %d modules", len(m.SBOM.Roots), len(m.SBOM.Modules)))
		case m.OSV != nil:
			rep.summary[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil && len(m.Finding.Trace) > 0:
			f := m.Finding
			top := f.Trace[0]
			if top.Function == "" {
				rep.notReach[f.OSV] = true
				continue
			}
			if _, ok := rep.called[f.OSV]; !ok {
				rep.called[f.OSV] = &called{id: f.OSV, module: top.Module, version: top.Version, fixed: f.FixedVersion, trace: f.Trace}
			}
		}
	}
	// An empty stream, or one from a scan that failed to load the packages
	// (govulncheck then writes its config and stops), must not read as
	// "no vulnerabilities".
	if !sawConfig {
		return nil, errors.New("no govulncheck config message: the scan did not run")
	}
	if !sawSBOM {
		return nil, errors.New("no govulncheck SBOM message: the packages were not loaded, so nothing was checked")
	}
	return rep, nil
}

// toolchain reports whether a finding is in the Go distribution rather
// than in a module the project requires.
func toolchain(module string) bool { return module == "stdlib" || module == "toolchain" }

func (rep *report) judge(w io.Writer, accepted map[string]string) bool {
	for _, h := range rep.header {
		fmt.Fprintln(w, h)
	}
	ids := make([]string, 0, len(rep.called))
	for id := range rep.called {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	ok := true
	for _, id := range ids {
		c := rep.called[id]
		reason, isAccepted := accepted[id]
		verdict := "VULNERABLE"
		switch {
		case isAccepted && toolchain(c.module):
			verdict = "accepted (" + reason + ")"
		case isAccepted:
			verdict = "VULNERABLE (the accept file covers only the Go toolchain; run go get " + c.module + "@v" + strings.TrimPrefix(c.fixed, "v") + ")"
			ok = false
		default:
			ok = false
		}
		fmt.Fprintf(w, "%s %s@%s, fixed in %s: %s\n  %s\n  called via %s\n", id, c.module, c.version, fixedOr(c.fixed), rep.summary[id], verdict, path(c.trace))
	}
	stale := make([]string, 0, len(accepted))
	for id := range accepted {
		stale = append(stale, id)
	}
	sort.Strings(stale)
	for _, id := range stale {
		if _, ok := rep.called[id]; !ok {
			fmt.Fprintf(w, "note: %s is in the accept file but no longer reported; delete the line\n", id)
		}
	}
	fmt.Fprintf(w, "%d vulnerabilities called (%d accepted toolchain ones), %d more in imported code that is not called\n",
		len(rep.called), countAccepted(rep.called, accepted), len(rep.notReach))
	return ok
}

func countAccepted(c map[string]*called, accepted map[string]string) int {
	n := 0
	for id, v := range c {
		if _, ok := accepted[id]; ok && toolchain(v.module) {
			n++
		}
	}
	return n
}

func fixedOr(v string) string {
	if v == "" {
		return "no release"
	}
	return v
}

// path renders a call path from the project's code (the last frame) to the
// vulnerable symbol (the first), eliding the middle of long ones.
func path(trace []*frame) string {
	name := func(f *frame) string {
		n := f.Function
		if f.Receiver != "" {
			n = strings.TrimPrefix(f.Receiver, "*") + "." + n
		}
		return f.Package + "." + n
	}
	entry := trace[len(trace)-1]
	s := name(entry)
	if entry.Position != nil {
		s += fmt.Sprintf(" (%s:%d)", entry.Position.Filename, entry.Position.Line)
	}
	switch n := len(trace); {
	case n == 1:
		return s
	case n > 3:
		s += fmt.Sprintf(" -> ... %d calls ...", n-2)
	case n == 3:
		s += " -> " + name(trace[1])
	}
	return s + " -> " + name(trace[0])
}

func readAccept(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason, _ := strings.Cut(line, " ")
		reason = strings.TrimSpace(reason)
		if !strings.HasPrefix(id, "GO-") || reason == "" {
			return nil, fmt.Errorf("%s:%d: want `GO-YYYY-NNNN reason`, got %q", path, i+1, line)
		}
		out[id] = reason
	}
	return out, nil
}
