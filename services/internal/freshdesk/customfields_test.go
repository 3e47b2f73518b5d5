package freshdesk

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// Tickets, pages, ticket fields and conversations are plain encoding/json
// into the structs of types.go. The one hand-written rule is CustomFields:
// integers stay exact, arrays and objects stay raw. These tests pin it.

func TestCustomFieldsShapes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want CustomFields // nil with wantErr == "": a null map
		err  string       // substring of the error, "" for success
	}{
		{in: `null`},
		{in: `{}`, want: CustomFields{}},
		{in: `{"a":1,"b":1.5,"c":[1, 2 ],"d":{"x":null},"e":9007199254740993,"f":-0,"g":"\u00e9","h":true,"i":false,"j":null,"k":-9223372036854775808}`,
			want: CustomFields{"a": int64(1), "b": 1.5, "c": json.RawMessage(`[1, 2 ]`), "d": json.RawMessage(`{"x":null}`),
				"e": int64(9007199254740993), "f": int64(0), "g": "é", "h": true, "i": false, "j": nil, "k": int64(-9223372036854775808)}},
		// Integral but beyond int64: float64, as before.
		{in: `{"a":9223372036854775808,"b":1e3}`, want: CustomFields{"a": 9223372036854775808.0, "b": 1000.0}},
		// Duplicate keys: the last wins (encoding/json's map rule).
		{in: `{"a":1,"a":"x"}`, want: CustomFields{"a": "x"}},
		{in: `{"cf_x":1e400}`, err: `custom field "cf_x": invalid number "1e400"`},
		// Two bad fields: the error names the first by name, every time.
		{in: `{"z":1e400,"b":-1e999,"m":2e308}`, err: `custom field "b"`},
		{in: `[]`, err: "cannot unmarshal array"},
		{in: `{"a":01}`, err: "invalid character"},
		{in: `{"a":1,}`, err: "invalid character"},
		{in: `{"a":1} x`, err: "invalid character"},
	} {
		for range 3 { // map order varies between runs; the result must not
			var got CustomFields
			err := json.Unmarshal([]byte(c.in), &got)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("%s: err %v, want %q", c.in, err, c.err)
				}
				continue
			}
			if err != nil || !reflect.DeepEqual(got, c.want) || (got == nil) != (c.want == nil) {
				t.Fatalf("%s: got %#v, %v; want %#v", c.in, got, err, c.want)
			}
		}
	}
}

// TestTicketDecodeContract pins what the client relies on from decoding a
// ticket: unknown keys are ignored, null keeps a pointer nil and an array
// nil, timestamps in any RFC 3339 form are accepted, and a value of the
// wrong type is an error naming the field.
func TestTicketDecodeContract(t *testing.T) {
	var tk Ticket
	err := json.Unmarshal([]byte(`{"id":7,"priority_name":"Low","unknown":{"a":[1]},"group_id":null,"responder_id":0,
		"tags":null,"cc_emails":[],"type":null,"created_at":"2022-02-22T10:03:42+01:00","due_by":null,
		"updated_at":"2022-02-22T10:03:42.5Z","custom_fields":{"cf_n":12}}`), &tk)
	if err != nil {
		t.Fatal(err)
	}
	if tk.ID != 7 || tk.GroupID != nil || tk.ResponderID == nil || *tk.ResponderID != 0 || tk.Type != nil || tk.DueBy != nil {
		t.Errorf("ids: %+v", tk)
	}
	if tk.Tags != nil || tk.CCEmails == nil || len(tk.CCEmails) != 0 {
		t.Errorf("null vs empty arrays: tags=%#v cc=%#v", tk.Tags, tk.CCEmails)
	}
	if tk.CreatedAt.UTC().Hour() != 9 || tk.UpdatedAt.Nanosecond() != 5e8 {
		t.Errorf("timestamps: %v %v", tk.CreatedAt, tk.UpdatedAt)
	}
	if tk.CustomFields["cf_n"] != int64(12) {
		t.Errorf("custom fields: %#v", tk.CustomFields)
	}
	for in, field := range map[string]string{
		`{"id":"7"}`:                        "Ticket.id",
		`{"status":2147483648000000000000}`: "Ticket.status",
		`{"tags":"x"}`:                      "Ticket.tags",
		`{"created_at":"yesterday"}`:        "yesterday",
		`{"custom_fields":{"cf_a":1e999}}`:  `custom field "cf_a"`,
	} {
		err := json.Unmarshal([]byte(in), new(Ticket))
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: err %v, want one naming %s", in, err, field)
		}
	}
}

// FuzzCustomFields checks CustomFields against encoding/json's generic
// decoding (with UseNumber): the same documents are accepted, except for
// numbers out of float64's range at the top level, which are rejected with
// the field's name; every key survives; integral numbers that fit are
// int64, other numbers the float64 the text denotes; arrays and objects are
// kept as raw JSON that decodes to the generic value.
func FuzzCustomFields(f *testing.F) {
	seedFixtures(f, func(n string) bool { return strings.HasPrefix(n, "view_ticket") })
	for _, s := range []string{`null`, `{}`, `[]`, `{"a":1,"a":"x"}`, `{"a":1e400,"a":1}`, `{"a":[1e400]}`,
		`{"a":1,"b":1.5,"c":[1],"d":{"x":null},"e":9007199254740993,"f":-0,"g":"\u00e9\ud800","h":true,"i":null}`,
		`{"a":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// A fixture is a whole ticket: check its custom_fields too.
		var wrapper struct {
			CF json.RawMessage `json:"custom_fields"`
		}
		if json.Unmarshal(b, &wrapper) == nil && len(wrapper.CF) > 0 {
			checkCustomFields(t, wrapper.CF)
		}
		checkCustomFields(t, b)
	})
}

func checkCustomFields(t *testing.T, b []byte) {
	t.Helper()
	var cf CustomFields
	errCF := json.Unmarshal(b, &cf)
	gen, errG := decodeGeneric(b)
	if errG != nil {
		if errCF == nil {
			t.Fatalf("%.200q: accepted by CustomFields, rejected by encoding/json: %v", b, errG)
		}
		return
	}
	obj, isObj := gen.(map[string]any)
	if errCF != nil {
		if !isObj && gen != nil {
			return // null and objects are accepted, nothing else
		}
		for k, v := range obj {
			if n, ok := v.(json.Number); ok {
				if _, err := strconv.ParseFloat(string(n), 64); err != nil && strings.Contains(errCF.Error(), strconv.Quote(k)) {
					return
				}
			}
		}
		t.Fatalf("%.200q: rejected by CustomFields (%v) without an out-of-range number in the named field", b, errCF)
	}
	if gen == nil {
		if cf != nil {
			t.Fatalf("%.200q: null gave %#v", b, cf)
		}
		return
	}
	if !isObj {
		t.Fatalf("%.200q: accepted a %T", b, gen)
	}
	if len(cf) != len(obj) {
		t.Fatalf("%.200q: %d keys, encoding/json %d", b, len(cf), len(obj))
	}
	for k, want := range obj {
		got, ok := cf[k]
		if !ok {
			t.Fatalf("%.200q: key %q lost", b, k)
		}
		switch g := got.(type) {
		case nil, bool, string:
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%.200q: %q = %#v, want %#v", b, k, got, want)
			}
		case int64:
			if n, ok := want.(json.Number); !ok || !equalsInt(n, g) {
				t.Fatalf("%.200q: %q = int64 %d, want %#v", b, k, g, want)
			}
		case float64:
			n, ok := want.(json.Number)
			if !ok {
				t.Fatalf("%.200q: %q = float64, want %#v", b, k, want)
			}
			if _, err := strconv.ParseInt(string(n), 10, 64); err == nil {
				t.Fatalf("%.200q: %q = %s decoded as float64", b, k, n)
			}
			if f, err := strconv.ParseFloat(string(n), 64); err != nil || f != g {
				t.Fatalf("%.200q: %q = %v, want %s", b, k, g, n)
			}
		case json.RawMessage:
			sub, err := decodeGeneric(g)
			if err != nil || !reflect.DeepEqual(sub, want) {
				t.Fatalf("%.200q: %q raw %.100q decodes to %#v (%v), want %#v", b, k, g, sub, err, want)
			}
		default:
			t.Fatalf("%.200q: %q has type %T", b, k, got)
		}
	}
}

// equalsInt reports whether n is an integer literal for v ("-0" for 0).
func equalsInt(n json.Number, v int64) bool {
	i, err := strconv.ParseInt(string(n), 10, 64)
	return err == nil && i == v
}

func decodeGeneric(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the top-level value")
	}
	return v, nil
}
