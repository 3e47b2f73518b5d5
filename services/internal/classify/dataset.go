package classify

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Example is one labelled ticket. A label field left empty (or Tags nil)
// means the ticket carries no label for that field; it is then left out of
// that field's training and evaluation.
type Example struct {
	ID       string   `json:"id"`
	Subject  string   `json:"subject"`
	Body     string   `json:"body"`
	Group    string   `json:"group"`
	Priority string   `json:"priority,omitempty"`
	Type     string   `json:"type,omitempty"`
	Tags     []string `json:"tags,omitempty"`
	Language string   `json:"language,omitempty"`
	// UpdatedAt is when the ticket reached this version (its resolution,
	// for history read from the helpdesk): the continuous trainer orders
	// examples by it to hold out the most recent weeks. Zero when unknown.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Field names of the label fields.
const (
	FieldGroup    = "group"
	FieldPriority = "priority"
	FieldType     = "type"
	FieldTags     = "tags"
)

// Fields lists the label fields in their canonical order.
var Fields = []string{FieldGroup, FieldPriority, FieldType, FieldTags}

// label returns the single label of field, "" when absent.
func (e *Example) label(field string) string {
	switch field {
	case FieldGroup:
		return e.Group
	case FieldPriority:
		return e.Priority
	case FieldType:
		return e.Type
	}
	return ""
}

// LineError reports a malformed dataset line.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// maxLineBytes bounds one JSONL record; a longer line is reported, not read
// into memory whole.
const maxLineBytes = 16 << 20

// ReadJSONL reads the dataset format: one JSON object a line with id,
// subject, body, group and optionally priority (string or number), type,
// tags and language. Blank lines are skipped. All malformed lines are
// reported together (joined LineErrors) along with the examples that did
// parse, so a caller may choose to proceed.
func ReadJSONL(r io.Reader) ([]Example, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var out []Example
	var errs []error
	line := 0
	for {
		b, tooLong, err := readLine(br)
		if err == io.EOF && len(b) == 0 && !tooLong {
			break
		}
		line++
		if tooLong {
			errs = append(errs, &LineError{line, fmt.Errorf("longer than %d bytes", maxLineBytes)})
		} else if t := bytes.TrimSpace(b); len(t) > 0 {
			ex, perr := parseExample(t)
			if perr != nil {
				errs = append(errs, &LineError{line, perr})
			} else {
				out = append(out, ex)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, fmt.Errorf("read dataset: %w", err)
		}
		if len(errs) > 100 {
			errs = append(errs, errors.New("too many errors, stopped"))
			break
		}
	}
	return out, errors.Join(errs...)
}

// readLine returns the next line without its newline; tooLong reports a
// line over maxLineBytes (whose bytes are discarded).
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLineBytes {
			tooLong = true
			buf = buf[:0]
		} else if !tooLong {
			buf = append(buf, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return bytes.TrimRight(buf, "\r\n"), tooLong, err
	}
}

type rawExample struct {
	ID       json.RawMessage `json:"id"`
	Subject  string          `json:"subject"`
	Body     string          `json:"body"`
	Group    json.RawMessage `json:"group"`
	Priority json.RawMessage `json:"priority"`
	Type     json.RawMessage `json:"type"`
	Tags     []string        `json:"tags"`
	Language string          `json:"language"`
}

func parseExample(b []byte) (Example, error) {
	var raw rawExample
	if err := json.Unmarshal(b, &raw); err != nil {
		return Example{}, err
	}
	ex := Example{Subject: raw.Subject, Body: raw.Body, Tags: raw.Tags, Language: raw.Language}
	var err error
	if ex.ID, err = scalarString(raw.ID, "id"); err != nil {
		return ex, err
	}
	if ex.Group, err = scalarString(raw.Group, "group"); err != nil {
		return ex, err
	}
	if ex.Priority, err = scalarString(raw.Priority, "priority"); err != nil {
		return ex, err
	}
	if ex.Type, err = scalarString(raw.Type, "type"); err != nil {
		return ex, err
	}
	if ex.Group == "" && ex.Priority == "" && ex.Type == "" && ex.Tags == nil {
		return ex, errors.New("no label (group, priority, type or tags)")
	}
	return ex, nil
}

// scalarString accepts a JSON string, number or null.
func scalarString(m json.RawMessage, name string) (string, error) {
	if len(m) == 0 || string(m) == "null" {
		return "", nil
	}
	if m[0] == '"' {
		var s string
		if err := json.Unmarshal(m, &s); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return strings.TrimSpace(s), nil
	}
	var f json.Number
	if err := json.Unmarshal(m, &f); err != nil {
		return "", fmt.Errorf("%s: want string or number: %w", name, err)
	}
	if _, err := strconv.ParseFloat(string(f), 64); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return string(f), nil
}

// LoadJSONL reads a dataset file; see ReadJSONL.
func LoadJSONL(path string) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load dataset: %w", err)
	}
	defer f.Close()
	ex, err := ReadJSONL(f)
	if err != nil {
		return ex, fmt.Errorf("%s: %w", path, err)
	}
	return ex, nil
}
