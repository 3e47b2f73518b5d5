// Command vulndb builds a Go vulnerability database in the v1 layout that
// `govulncheck -db file://DIR` reads (index/db.json, index/modules.json,
// ID/<id>.json; see https://go.dev/security/vuln/database#api) from the OSV
// files of a golang.org/x/vulndb module version.
//
// It exists because vuln.go.dev is out of reach from the developer machines
// and CI: only the Go module proxy is, and x/vulndb's own indexer pulls in
// git, cloud and gRPC libraries. The OSV entries are copied byte for byte;
// only the two index files are computed here.
//
// Usage: vulndb -osv $MODDIR/data/osv -version $MODVERSION -out DIR
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

func main() {
	osvDir := flag.String("osv", "", "directory of OSV JSON files (data/osv of golang.org/x/vulndb)")
	version := flag.String("version", "", "golang.org/x/vulndb pseudo-version the files come from; its time is the database's modified time")
	out := flag.String("out", "", "directory to write the database to (replaced)")
	flag.Parse()
	if *osvDir == "" || *version == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	n, err := build(*osvDir, *version, *out)
	if err != nil {
		log.Fatalf("vulndb: %v", err)
	}
	fmt.Printf("vulndb: %d entries from golang.org/x/vulndb@%s -> %s\n", n, *version, *out)
}

// entry is the part of an OSV record the index needs.
type entry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
		Ranges []osvRange `json:"ranges"`
	} `json:"affected"`
}

type osvRange struct {
	Type   string `json:"type"`
	Events []struct {
		Introduced string `json:"introduced"`
		Fixed      string `json:"fixed"`
	} `json:"events"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Fixed    string    `json:"fixed,omitempty"`
}

type moduleMeta struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

// idPattern keeps entry IDs usable as file names under ID/.
var idPattern = regexp.MustCompile(`^GO-[0-9]{4}-[0-9]{4,}$`)

func build(osvDir, version, out string) (int, error) {
	dbTime, err := module.PseudoVersionTime(version)
	if err != nil {
		return 0, fmt.Errorf("version %q: %w", version, err)
	}
	files, err := filepath.Glob(filepath.Join(osvDir, "*.json"))
	if err != nil {
		return 0, err
	}
	if len(files) == 0 {
		return 0, fmt.Errorf("no OSV files in %s", osvDir)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(out)), ".vulndb-*")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Join(tmp, "ID"), 0o755); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Join(tmp, "index"), 0o755); err != nil {
		return 0, err
	}

	modules := map[string]*moduleMeta{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		var e entry
		if err := json.Unmarshal(b, &e); err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
		if !idPattern.MatchString(e.ID) || filepath.Base(f) != e.ID+".json" {
			return 0, fmt.Errorf("%s: id %q does not match the file name", f, e.ID)
		}
		// The repository's OSV files carry zero timestamps (the hosted
		// database stamps them from git history); the data's commit time
		// is the honest replacement.
		modified := e.Modified
		if modified.IsZero() {
			modified = dbTime
		}
		for _, a := range e.Affected {
			path := a.Package.Name
			if path == "" {
				return 0, fmt.Errorf("%s: affected entry without a package name", f)
			}
			m := modules[path]
			if m == nil {
				m = &moduleMeta{Path: path}
				modules[path] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: modified, Fixed: nonSupersededFix(a.Ranges)})
		}
		if err := os.WriteFile(filepath.Join(tmp, "ID", e.ID+".json"), b, 0o644); err != nil {
			return 0, err
		}
	}

	list := make([]*moduleMeta, 0, len(modules))
	for _, m := range modules {
		sort.Slice(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	if err := writeJSON(filepath.Join(tmp, "index", "modules.json"), list); err != nil {
		return 0, err
	}
	if err := writeJSON(filepath.Join(tmp, "index", "db.json"), struct {
		Modified time.Time `json:"modified"`
	}{dbTime}); err != nil {
		return 0, err
	}

	if err := os.RemoveAll(out); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return 0, err
	}
	return len(files), nil
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// nonSupersededFix is the latest SEMVER fix not followed by a later
// re-introduction, or "" when there is none; "" makes govulncheck fetch the
// entry and decide from its ranges, so an error here only costs time.
// It mirrors golang.org/x/vuln/internal/semver.NonSupersededFix.
func nonSupersededFix(ranges []osvRange) string {
	latest := ""
	for _, r := range ranges {
		if r.Type != "SEMVER" {
			continue
		}
		for _, e := range r.Events {
			if e.Fixed != "" && less(latest, e.Fixed) {
				latest = e.Fixed
			}
		}
		for _, e := range r.Events {
			if e.Introduced != "" && e.Introduced != "0" && less(latest, e.Introduced) {
				latest = ""
				break
			}
		}
	}
	return latest
}

func less(a, b string) bool { return semver.Compare(canonical(a), canonical(b)) < 0 }

// canonical accepts OSV's bare versions as well as "v" and "go" prefixes.
func canonical(v string) string {
	v = strings.TrimPrefix(strings.TrimPrefix(v, "v"), "go")
	return "v" + v
}
