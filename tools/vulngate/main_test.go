package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const header = `{"config":{"scanner_version":"v1.9.0","go_version":"go1.26.8","db":"file:///db"}}
{"SBOM":{"go_version":"go1.26.8","modules":[{"path":"stdlib"}],"roots":["example.com/a"]}}
`

// calledFinding builds a symbol-level finding; notCalled a module-level one.
func calledFinding(id, module string) string {
	return `{"finding":{"osv":"` + id + `","fixed_version":"v9.9.9","trace":[{"module":"` + module + `","version":"v1.0.0","package":"p","function":"F"},{"module":"example.com/a","package":"example.com/a","function":"main","position":{"filename":"a.go","line":3}}]}}` + "\n"
}

func notCalled(id, module string) string {
	return `{"finding":{"osv":"` + id + `","trace":[{"module":"` + module + `","version":"v1.0.0"}]}}` + "\n"
}

func judge(t *testing.T, stream string, accepted map[string]string) (bool, string) {
	t.Helper()
	rep, err := read(strings.NewReader(stream))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var out strings.Builder
	ok := rep.judge(&out, accepted)
	return ok, out.String()
}

func TestCleanScanPasses(t *testing.T) {
	if ok, out := judge(t, header+notCalled("GO-2026-0001", "example.com/dep"), nil); !ok {
		t.Fatalf("uncalled finding failed the gate:\n%s", out)
	}
}

func TestCalledModuleVulnFails(t *testing.T) {
	ok, out := judge(t, header+calledFinding("GO-2026-0002", "example.com/dep"), nil)
	if ok || !strings.Contains(out, "GO-2026-0002") || !strings.Contains(out, "a.go:3") {
		t.Fatalf("ok=%v, want failure naming the ID and the call site:\n%s", ok, out)
	}
}

func TestAcceptCoversOnlyToolchain(t *testing.T) {
	acc := map[string]string{"GO-2026-0003": "reason", "GO-2026-0004": "reason"}
	if ok, out := judge(t, header+calledFinding("GO-2026-0003", "stdlib"), acc); !ok {
		t.Fatalf("accepted stdlib finding failed the gate:\n%s", out)
	}
	ok, out := judge(t, header+calledFinding("GO-2026-0004", "example.com/dep"), acc)
	if ok || !strings.Contains(out, "go get example.com/dep@v9.9.9") {
		t.Fatalf("accepted module finding passed or gave no fix: ok=%v\n%s", ok, out)
	}
}

func TestUnacceptedStdlibFails(t *testing.T) {
	if ok, out := judge(t, header+calledFinding("GO-2026-0005", "stdlib"), map[string]string{"GO-2026-0006": "r"}); ok {
		t.Fatalf("stdlib finding not in the accept file passed:\n%s", out)
	}
}

func TestStaleAcceptIsReported(t *testing.T) {
	_, out := judge(t, header, map[string]string{"GO-2026-0007": "r"})
	if !strings.Contains(out, "GO-2026-0007 is in the accept file but no longer reported") {
		t.Fatalf("stale entry not reported:\n%s", out)
	}
}

// A scan that failed to load packages writes its config and nothing else;
// that must not read as clean.
func TestIncompleteScanIsAnError(t *testing.T) {
	for name, stream := range map[string]string{
		"empty":       "",
		"config only": strings.SplitAfter(header, "\n")[0],
		"garbage":     header + "go: error\n",
	} {
		if _, err := read(strings.NewReader(stream)); err == nil {
			t.Errorf("%s: read accepted an incomplete scan", name)
		}
	}
}

func TestReadAccept(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("# comment\n\nGO-2026-0001 fixed in go1.26.9\n"), 0o644)
	acc, err := readAccept(good)
	if err != nil || acc["GO-2026-0001"] != "fixed in go1.26.9" || len(acc) != 1 {
		t.Fatalf("readAccept = %v, %v", acc, err)
	}
	for _, bad := range []string{"GO-2026-0001\n", "CVE-2026-1 reason\n"} {
		p := filepath.Join(dir, "bad")
		os.WriteFile(p, []byte(bad), 0o644)
		if _, err := readAccept(p); err == nil {
			t.Errorf("readAccept(%q) accepted a line without an ID and a reason", bad)
		}
	}
}
