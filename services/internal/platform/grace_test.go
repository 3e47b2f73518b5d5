package platform

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// graceMargin is how much longer than AUTOTRIAGE_SHUTDOWN_TIMEOUT the
// orchestrator must wait before it kills a stage: the process exits by the
// budget's deadline, and the margin covers signal delivery, the exit itself
// and a loaded node. (The pipelinetest shutdown tests allow 2s of it.)
const graceMargin = 5 * time.Second

// stages are the services whose shutdown the budget bounds; freshdesk-sim
// and the one-shot trainer are not among them.
var stages = []string{"fetcher", "classifier", "writer"}

// The Docker Compose files and the Kubernetes manifests give every stage
// more time between SIGTERM and SIGKILL than its shutdown budget, so a
// stage always finishes its bounded shutdown before it is killed, and the
// two numbers cannot drift apart unnoticed.
func TestGracePeriodsExceedTheShutdownBudget(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	def := shutdownDefault(t)
	envExample := readDotEnv(t, filepath.Join(root, ".env.example"))

	for _, file := range []string{"docker-compose.yml", filepath.Join("deploy", "docker-compose.cluster.yml")} {
		t.Run(file, func(t *testing.T) {
			docs := parseYAMLFile(t, filepath.Join(root, file))
			services, _ := lookup(docs[0], "services").(map[string]any)
			for _, name := range stages {
				svc, ok := services[name].(map[string]any)
				if !ok {
					t.Errorf("%s: no service %q", file, name)
					continue
				}
				grace := 10 * time.Second // Docker's default
				if v, ok := svc["stop_grace_period"].(string); ok {
					d, err := time.ParseDuration(v)
					if err != nil {
						t.Errorf("%s: %s: stop_grace_period %q: %v", file, name, v, err)
						continue
					}
					grace = d
				}
				budget := def
				if v, ok := envValue(svc["environment"], "AUTOTRIAGE_SHUTDOWN_TIMEOUT"); ok {
					budget = composeDuration(t, file, name, v, envExample, def)
				}
				checkGrace(t, file+": "+name+": stop_grace_period", grace, budget)
			}
		})
	}

	t.Run("deploy/k8s", func(t *testing.T) {
		dir := filepath.Join(root, "deploy", "k8s", "base")
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no manifests in %s: %v", dir, err)
		}
		configMap := map[string]any{}
		deployments := map[string]map[string]any{}
		for _, f := range files {
			for _, doc := range parseYAMLFile(t, f) {
				switch lookup(doc, "kind") {
				case "ConfigMap":
					if m, ok := lookup(doc, "data").(map[string]any); ok {
						configMap[lookup(doc, "metadata", "name").(string)] = m
					}
				case "Deployment":
					name, _ := lookup(doc, "metadata", "name").(string)
					deployments[name] = doc.(map[string]any)
				}
			}
		}
		for _, name := range stages {
			d, ok := deployments[name]
			if !ok {
				t.Errorf("no Deployment %q in %s", name, dir)
				continue
			}
			grace := 30 * time.Second // Kubernetes' default
			if v, ok := lookup(d, "spec", "template", "spec", "terminationGracePeriodSeconds").(string); ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Errorf("%s: terminationGracePeriodSeconds %q: %v", name, v, err)
					continue
				}
				grace = time.Duration(n) * time.Second
			}
			budget := def
			containers, _ := lookup(d, "spec", "template", "spec", "containers").([]any)
			for _, c := range containers {
				for _, from := range asList(lookup(c, "envFrom")) {
					if cm, ok := lookup(from, "configMapRef", "name").(string); ok {
						if v, ok := envValue(configMap[cm], "AUTOTRIAGE_SHUTDOWN_TIMEOUT"); ok {
							budget = mustDuration(t, name, v)
						}
					}
				}
				// env overrides envFrom.
				if v, ok := envValue(lookup(c, "env"), "AUTOTRIAGE_SHUTDOWN_TIMEOUT"); ok {
					budget = mustDuration(t, name, v)
				}
			}
			checkGrace(t, "deploy/k8s: "+name+": terminationGracePeriodSeconds", grace, budget)
		}
	})
}

func checkGrace(t *testing.T, what string, grace, budget time.Duration) {
	t.Helper()
	if grace < budget+graceMargin {
		t.Errorf("%s is %s, but AUTOTRIAGE_SHUTDOWN_TIMEOUT is %s: the grace period must be at least %s longer", what, grace, budget, graceMargin)
	} else {
		t.Logf("%s %s, shutdown budget %s", what, grace, budget)
	}
}

// shutdownDefault is AUTOTRIAGE_SHUTDOWN_TIMEOUT's default, from the code.
func shutdownDefault(t *testing.T) time.Duration {
	t.Helper()
	for _, v := range Vars(Common{}) {
		if v.Name == "AUTOTRIAGE_SHUTDOWN_TIMEOUT" {
			return mustDuration(t, "default", v.Default)
		}
	}
	t.Fatal("Common has no AUTOTRIAGE_SHUTDOWN_TIMEOUT")
	return 0
}

func mustDuration(t *testing.T, what, v string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: AUTOTRIAGE_SHUTDOWN_TIMEOUT %q: %v", what, v, err)
	}
	return d
}

// composeDuration resolves a Compose value: "${VAR:-default}" is the
// default, "${VAR}" the .env.example value or else the code's default.
func composeDuration(t *testing.T, file, svc, v string, dotEnv map[string]string, def time.Duration) time.Duration {
	t.Helper()
	if strings.HasPrefix(v, "${") && strings.HasSuffix(v, "}") {
		inner := v[2 : len(v)-1]
		if _, d, ok := strings.Cut(inner, ":-"); ok {
			v = d
		} else if e, ok := dotEnv[inner]; ok && e != "" {
			v = e
		} else {
			return def
		}
	}
	return mustDuration(t, file+": "+svc, v)
}

func readDotEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return out
}

// envValue finds a variable in a Compose environment (a mapping, or a list
// of NAME=value), a ConfigMap's data, or a container's env list.
func envValue(env any, name string) (string, bool) {
	switch e := env.(type) {
	case map[string]any:
		v, ok := e[name].(string)
		return v, ok
	case []any:
		for _, item := range e {
			switch it := item.(type) {
			case string:
				if k, v, ok := strings.Cut(it, "="); ok && k == name {
					return v, true
				}
			case map[string]any:
				if it["name"] == name {
					v, ok := it["value"].(string)
					return v, ok
				}
			}
		}
	}
	return "", false
}

func lookup(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// ---------------------------------------------------------------------------
// A small YAML reader for the deploy files (services has no YAML library):
// block mappings and sequences by indentation, plain and quoted scalars,
// anchors (&name), aliases (*name) and merge keys (<<: *a, <<: [*a, *b]),
// comments, and documents separated by ---. Flow collections other than a
// merge list stay strings; block scalars (| and >) are skipped. Every scalar
// is a string.

type yamlLine struct {
	indent int
	text   string
	no     int
}

type yamlReader struct {
	lines   []yamlLine
	i       int
	anchors map[string]any
	err     error
}

func parseYAMLFile(t *testing.T, path string) []any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	docs, err := parseYAML(string(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return docs
}

func parseYAML(src string) ([]any, error) {
	var docs []any
	var cur []yamlLine
	flush := func() error {
		if len(cur) == 0 {
			return nil
		}
		r := &yamlReader{lines: cur, anchors: map[string]any{}}
		v := r.block(cur[0].indent)
		if r.err == nil && r.i < len(r.lines) {
			r.err = fmt.Errorf("line %d: unexpected indentation", r.lines[r.i].no)
		}
		if r.err != nil {
			return r.err
		}
		docs = append(docs, v)
		cur = nil
		return nil
	}
	for n, raw := range strings.Split(src, "\n") {
		text := stripComment(strings.TrimRight(raw, " \t\r"))
		trimmed := strings.TrimLeft(text, " ")
		if trimmed == "" {
			continue
		}
		if strings.HasPrefix(trimmed, "\t") {
			return nil, fmt.Errorf("line %d: tab indentation", n+1)
		}
		if text == "---" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		cur = append(cur, yamlLine{indent: len(text) - len(trimmed), text: trimmed, no: n + 1})
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return docs, nil
}

// stripComment drops a # comment that is outside quotes and starts the line
// or follows a space.
func stripComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || s[i-1] == ' '):
			return strings.TrimRight(s[:i], " ")
		}
	}
	return s
}

func isSeqItem(text string) bool { return text == "-" || strings.HasPrefix(text, "- ") }

func (r *yamlReader) block(indent int) any {
	if r.i >= len(r.lines) {
		return nil
	}
	if isSeqItem(r.lines[r.i].text) {
		return r.sequence(indent)
	}
	return r.mapping(indent)
}

func (r *yamlReader) mapping(indent int) map[string]any {
	m := map[string]any{}
	var merges []map[string]any
	for r.err == nil && r.i < len(r.lines) {
		l := r.lines[r.i]
		if l.indent < indent || (l.indent == indent && isSeqItem(l.text)) {
			break
		}
		if l.indent > indent {
			r.err = fmt.Errorf("line %d: unexpected indentation", l.no)
			break
		}
		key, rest, ok := splitKey(l.text)
		if !ok {
			r.err = fmt.Errorf("line %d: not a key: value: %q", l.no, l.text)
			break
		}
		r.i++
		v := r.value(indent, rest, l.no)
		if key == "<<" {
			merges = append(merges, mergeSources(v)...)
			continue
		}
		m[key] = v
	}
	for _, src := range merges {
		for k, v := range src {
			if _, set := m[k]; !set {
				m[k] = v
			}
		}
	}
	return m
}

func mergeSources(v any) []map[string]any {
	switch s := v.(type) {
	case map[string]any:
		return []map[string]any{s}
	case []any:
		var out []map[string]any
		for _, e := range s {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

// value reads what follows "key:" (rest) or "- " on a line at indent.
func (r *yamlReader) value(indent int, rest string, no int) any {
	anchor := ""
	if strings.HasPrefix(rest, "&") {
		name, after, _ := strings.Cut(rest[1:], " ")
		anchor, rest = name, strings.TrimSpace(after)
	}
	var v any
	switch {
	case rest == "|" || rest == ">" || strings.HasPrefix(rest, "|") || strings.HasPrefix(rest, ">"):
		for r.i < len(r.lines) && r.lines[r.i].indent > indent {
			r.i++
		}
		v = ""
	case rest == "":
		if r.i < len(r.lines) {
			next := r.lines[r.i]
			switch {
			case next.indent > indent:
				v = r.block(next.indent)
			case next.indent == indent && isSeqItem(next.text):
				v = r.sequence(indent)
			}
		}
	case strings.HasPrefix(rest, "*"):
		a, ok := r.anchors[rest[1:]]
		if !ok {
			r.err = fmt.Errorf("line %d: unknown alias %s", no, rest)
		}
		v = a
	case strings.HasPrefix(rest, "[") && strings.Contains(rest, "*"):
		var items []any
		for _, e := range strings.Split(strings.Trim(rest, "[]"), ",") {
			e = strings.TrimSpace(e)
			if a, ok := r.anchors[strings.TrimPrefix(e, "*")]; ok && strings.HasPrefix(e, "*") {
				items = append(items, a)
			} else {
				items = append(items, unquote(e))
			}
		}
		v = items
	default:
		v = unquote(rest)
	}
	if anchor != "" {
		r.anchors[anchor] = v
	}
	return v
}

func (r *yamlReader) sequence(indent int) []any {
	var out []any
	for r.err == nil && r.i < len(r.lines) {
		l := r.lines[r.i]
		if l.indent != indent || !isSeqItem(l.text) {
			break
		}
		item := strings.TrimSpace(strings.TrimPrefix(l.text, "-"))
		if _, _, isMap := splitKey(item); isMap && !strings.ContainsAny(item[:1], `"'[{`) {
			// "- key: value": a mapping whose keys line up with key.
			inner := indent + (len(l.text) - len(item))
			r.lines[r.i] = yamlLine{indent: inner, text: item, no: l.no}
			out = append(out, r.mapping(inner))
			continue
		}
		r.i++
		out = append(out, r.value(indent, item, l.no))
	}
	return out
}

// splitKey splits "key: rest" or "key:" at the first colon outside quotes
// that ends the line or precedes a space.
func splitKey(text string) (key, rest string, ok bool) {
	var quote byte
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case (c == '"' || c == '\'') && i == 0:
			quote = c
		case c == ':' && (i == len(text)-1 || text[i+1] == ' '):
			return unquote(text[:i]), strings.TrimSpace(text[i+1:]), true
		}
	}
	return "", "", false
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// The reader resolves what the deploy files use: anchors merged into
// services with an override, lists of mappings, nested sequences at the
// parent's indentation, comments, and several documents.
func TestParseYAML(t *testing.T) {
	src := `# a compose-like file
x-base: &base
  restart: unless-stopped   # comment
  stop_grace_period: 30s
  tmpfs:
    - /tmp
x-env: &env
  A: "1"
services:
  one:
    <<: *base
    environment:
      <<: [*env]
      B: 'two # not a comment'
  two:
    <<: *base
    stop_grace_period: 45s
    ports:
    - "127.0.0.1:80:80"
---
kind: Deployment
spec:
  containers:
    - name: c
      env:
        - name: X
          value: "y"
      args: ["a", "b"]
`
	docs, err := parseYAML(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("%d documents, want 2", len(docs))
	}
	checks := []struct {
		got  any
		want any
	}{
		{lookup(docs[0], "services", "one", "stop_grace_period"), "30s"},
		{lookup(docs[0], "services", "one", "restart"), "unless-stopped"},
		{lookup(docs[0], "services", "one", "tmpfs"), []any{"/tmp"}},
		{lookup(docs[0], "services", "one", "environment"), map[string]any{"A": "1", "B": "two # not a comment"}},
		{lookup(docs[0], "services", "two", "stop_grace_period"), "45s"},
		{lookup(docs[0], "services", "two", "ports"), []any{"127.0.0.1:80:80"}},
		{lookup(docs[1], "kind"), "Deployment"},
		{lookup(asList(lookup(docs[1], "spec", "containers"))[0], "env"), []any{map[string]any{"name": "X", "value": "y"}}},
		{lookup(asList(lookup(docs[1], "spec", "containers"))[0], "args"), `["a", "b"]`},
	}
	for i, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("check %d: got %#v, want %#v", i, c.got, c.want)
		}
	}
	if _, err := parseYAML("a:\n  b: 1\n c: 2\n"); err == nil {
		t.Error("bad indentation accepted")
	}
}
