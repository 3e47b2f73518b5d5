package classify

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadJSONL: dataset files come from operators and exports. Any input
// gives examples and/or line errors, never a panic; every example has a
// label, and every error names a line within the input.
func FuzzReadJSONL(f *testing.F) {
	if dir := os.Getenv("AUTOTRIAGE_SHARED"); dir != "" {
		for _, ds := range []string{"banking77", "it-service-tickets"} {
			if fh, err := os.Open(filepath.Join(dir, "datasets", ds, "train.jsonl")); err == nil {
				sc := bufio.NewScanner(fh)
				sc.Buffer(nil, 1<<20)
				var lines []string
				for len(lines) < 3 && sc.Scan() {
					lines = append(lines, sc.Text())
				}
				fh.Close()
				f.Add([]byte(strings.Join(lines, "\n")))
			}
		}
	}
	f.Add([]byte(`{"id":1,"subject":"s","body":"b","group":"g","priority":2,"tags":["a"]}` + "\n\n" + `{"id":"x","group":null}`))
	f.Add([]byte(`{"id":1e999,"group":"g"}` + "\r\n" + `{"priority":"-0"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		exs, err := ReadJSONL(bytes.NewReader(b))
		for _, ex := range exs {
			if ex.Group == "" && ex.Priority == "" && ex.Type == "" && ex.Tags == nil {
				t.Fatalf("example without a label: %+v", ex)
			}
		}
		lines := bytes.Count(b, []byte("\n")) + 1
		var le *LineError
		for _, e := range unwrapAll(err) {
			if errors.As(e, &le) && (le.Line < 1 || le.Line > lines) {
				t.Fatalf("line error %d outside 1..%d", le.Line, lines)
			}
		}
	})
}

func unwrapAll(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
