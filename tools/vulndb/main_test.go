package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

const version = "v0.0.0-20261105234957-e22db6528018"

func writeOSV(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBuildWritesV1Layout(t *testing.T) {
	src, out := t.TempDir(), filepath.Join(t.TempDir(), "db")
	entry := `{"id":"GO-2026-0001","modified":"0001-01-01T00:00:00Z","affected":[{"package":{"name":"example.com/m"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"}]}]}]}`
	writeOSV(t, src, "GO-2026-0001.json", entry)
	// Re-introduced after the fix: no single fixed version supersedes it.
	writeOSV(t, src, "GO-2026-0002.json", `{"id":"GO-2026-0002","affected":[{"package":{"name":"example.com/m"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.1.0"},{"introduced":"1.3.0"}]}]}]}`)
	if n, err := build(src, version, out); err != nil || n != 2 {
		t.Fatalf("build = %d, %v", n, err)
	}
	got, err := os.ReadFile(filepath.Join(out, "ID", "GO-2026-0001.json"))
	if err != nil || string(got) != entry {
		t.Fatalf("entry not copied verbatim: %q, %v", got, err)
	}
	var db struct{ Modified string }
	readJSON(t, filepath.Join(out, "index", "db.json"), &db)
	if db.Modified != "2026-11-05T23:49:57Z" {
		t.Errorf("db modified = %q, want the pseudo-version time", db.Modified)
	}
	var mods []moduleMeta
	readJSON(t, filepath.Join(out, "index", "modules.json"), &mods)
	if len(mods) != 1 || mods[0].Path != "example.com/m" || len(mods[0].Vulns) != 2 {
		t.Fatalf("modules index = %+v", mods)
	}
	if v := mods[0].Vulns; v[0].ID != "GO-2026-0001" || v[0].Fixed != "1.2.0" || v[1].Fixed != "" {
		t.Errorf("vulns = %+v, want fixed 1.2.0 then none", v)
	}
}

func TestBuildRefusesMismatchedIDs(t *testing.T) {
	for name, body := range map[string]string{
		"GO-2026-0001.json": `{"id":"GO-2026-0009","affected":[]}`,
		"GO-2026-0002.json": `{"id":"../../x","affected":[]}`,
		"GO-2026-0003.json": `{"id":"GO-2026-0003","affected":[{"package":{"name":""}}]}`,
		"GO-2026-0004.json": `{"id":`,
	} {
		src, out := t.TempDir(), filepath.Join(t.TempDir(), "db")
		writeOSV(t, src, name, body)
		if _, err := build(src, version, out); err == nil {
			t.Errorf("%s %s: build accepted it", name, body)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s: a failed build left %s behind", name, out)
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
