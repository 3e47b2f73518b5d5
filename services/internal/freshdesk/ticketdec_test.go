package freshdesk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stdTicket has Ticket's fields without its UnmarshalJSON: decoding into it
// is plain encoding/json, the reference for the fast decoder.
type stdTicket Ticket

// refCustomFields is the original encoding/json-based CustomFields decoder,
// the reference for the fast one.
type refCustomFields map[string]any

func (c *refCustomFields) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*c = nil
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(refCustomFields, len(raw))
	for k, v := range raw {
		val, err := decodeScalar(v)
		if err != nil {
			return fmt.Errorf("custom field %q: %w", k, err)
		}
		out[k] = val
	}
	*c = out
	return nil
}

var decoderEdgeCases = []string{
	`{"id":1,"custom_fields":{"a":1,"b":1.5,"c":[1],"d":{"x":null},"e":9007199254740993,"f":-0,"g":1e400},"tags":null}`,
	`{"id":1,"custom_fields":{"a":1,"b":1.5,"c":[1, 2 ],"d":{"x":null},"e":9007199254740993,"f":-0,"g":"\u00e9"}}`,
	`{"custom_fields":{"a":1,"a":"x","b":true,"c":false,"d":null}}`,
	`{"custom_fields":null}`, `{"custom_fields":{}}`, `{"custom_fields":[]}`, `{"custom_fields":{"a":01}}`,
	`{"ID":5,"Subject":"x","TAGS":[],"Created_At":"2022-02-22T10:03:42Z","ſubject":"long s"}`,
	`{"id":1,"id":2,"tags":["a","b"],"tags":["c"],"attachments":[{"id":1,"name":"a"},{"id":2}],"attachments":[{"size":3}]}`,
	`{"subject":"\ud800x\u00e9\xff\"\\\/\b\f\n\r\t\ud83d\ude00\udc00\ud800\u0041"}`,
	"{\"subject\":\"a\x7fb\xc3\xa9\xed\xa0\x80\"}",
	"{\"subject\":\"a\x01\"}", `{"subject":"\'"}`, `{"subject":"\u12"}`, `{"subject":"\x"}`,
	`{"id":1e3}`, `{"id":1.0}`, `{"id":"1"}`, `{"id":-9223372036854775808}`, `{"id":9223372036854775808}`,
	`{"id":-}`, `{"id":01}`, `{"id":1.}`, `{"id":1e}`, `{"id":1e+}`, `{"id":.5}`, `{"id":+1}`, `{"status":2147483648}`,
	`{"created_at":"2022-02-22T10:03:42+01:00","updated_at":"2022-02-22T10:03:42.123456789Z"}`,
	`{"created_at":"2022-02-22 10:03:42Z"}`, `{"created_at":"2022-02-30T10:03:42Z"}`, `{"created_at":"2024-02-29T23:59:59Z"}`,
	`{"created_at":"2023-02-29T10:03:42Z"}`, `{"created_at":"2022-02-22T24:00:00Z"}`, `{"created_at":"2022-02-22T10:03:60Z"}`,
	`{"created_at":"0000-01-01T00:00:00Z"}`, `{"created_at":"2022-02-22t10:03:42z"}`, `{"created_at":"2022\u002d02-22T10:03:42Z"}`,
	`{"created_at":null,"due_by":null,"fr_due_by":"2022-02-22T18:03:42Z"}`, `{"created_at":5}`, `{"due_by":{}}`,
	`{"status":null,"type":null,"spam":null,"tags":[null,"x"],"subject":null,"requester_id":null}`,
	`{"type":"x","type":"y","group_id":5,"group_id":null}`,
	`{"spam":1}`, `{"tags":"x"}`, `{"tags":[1]}`, `{"subject":1}`, `{"attachments":{}}`, `{"attachments":[1]}`,
	`{"stats":{"resolved_at":"2022-02-22T18:03:42Z"},"requester":{"id":1,"mobile":123,"phone":"x","email":null}}`,
	`{"stats":{"resolved_at":"x"}}`, `{"stats":null,"requester":null}`, `{"requester":{"id":"x"}}`,
	`{"source_additional_info":null,"structured_description":{"a": [1, 2]}}`, `{"source_additional_info":[ ]}`,
	`{"unknown":{"a":[1,{"b":null}],"c":"\u00e9"},"priority_name":"Low"}`, `{"unknown":[1,]}`, `{"unknown":{"a":1,}}`,
	`{"id":1} x`, `{"id":1}  `, ` {"id":1}`, `{"id":1`, `{"id"`, `{"id":`, `{`, `{"id" 1}`, `{"id":1 "x":2}`, `{,}`, `{"a":1,}`,
	`null`, `5`, `"x"`, `[]`, `[{"id":1},null,{"id":2}]`, `[{"id":1},]`, `[`, ``, ` `, `{"subject":"abc`, `{"subject":"abcdefghijklmnop`,
	`{"a":tru}`, `{"a":nul}`, `{"a":falsey}`, `{"spam":tru}`, `{"spam":nulls}`,
	`{"unknown":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
	`{"unknown":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `}`,
	`{"custom_fields":{"a":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `}}`,
	`{"custom_fields":{"a":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}}`,
}

func decoderSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, s := range decoderEdgeCases {
		seeds = append(seeds, []byte(s))
	}
	dir := os.Getenv("AUTOTRIAGE_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared")
	}
	dir = filepath.Join(dir, "fixtures", "freshdesk")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			seeds = append(seeds, b)
		}
	}
	return seeds
}

// checkAgainstStd decodes b with the fast decoder and with encoding/json,
// twice into the same target (so that the reuse of existing values is
// compared too), and fails on any difference in acceptance or result.
func checkAgainstStd(t *testing.T, b []byte) {
	t.Helper()
	var fast Ticket
	var ref stdTicket
	for pass := 0; pass < 2; pass++ {
		errF := fast.UnmarshalJSON(b)
		errS := json.Unmarshal(b, &ref)
		if (errF == nil) != (errS == nil) {
			t.Fatalf("ticket %.200q: fast err %v, encoding/json err %v", b, errF, errS)
		}
		if errF != nil {
			break
		}
		if !reflect.DeepEqual(fast, Ticket(ref)) {
			t.Fatalf("ticket %.200q:\nfast %+v\nstd  %+v", b, fast, Ticket(ref))
		}
	}

	var fastList []Ticket
	var refList []stdTicket
	errF := decodeTickets(b, &fastList)
	errS := json.Unmarshal(b, &refList)
	if (errF == nil) != (errS == nil) {
		t.Fatalf("list %.200q: fast err %v, encoding/json err %v", b, errF, errS)
	}
	if errF == nil {
		if (fastList == nil) != (refList == nil) || len(fastList) != len(refList) {
			t.Fatalf("list %.200q: %d vs %d tickets", b, len(fastList), len(refList))
		}
		for i := range fastList {
			if !reflect.DeepEqual(fastList[i], Ticket(refList[i])) {
				t.Fatalf("list %.200q [%d]:\nfast %+v\nstd  %+v", b, i, fastList[i], Ticket(refList[i]))
			}
		}
	}

	var fastCF CustomFields
	var refCF refCustomFields
	errF = fastCF.UnmarshalJSON(b)
	errS = json.Unmarshal(b, &refCF)
	if (errF == nil) != (errS == nil) {
		t.Fatalf("custom fields %.200q: fast err %v, reference err %v", b, errF, errS)
	}
	if errF == nil && !reflect.DeepEqual(map[string]any(fastCF), map[string]any(refCF)) {
		t.Fatalf("custom fields %.200q:\nfast %#v\nref  %#v", b, fastCF, refCF)
	}
}

func TestTicketDecoderMatchesStd(t *testing.T) {
	for i, b := range decoderSeeds(t) {
		t.Run(strconv.Itoa(i), func(t *testing.T) { checkAgainstStd(t, b) })
		// Every truncation of a valid document is rejected alike.
		if i < len(decoderEdgeCases) || len(b) > 20000 {
			continue
		}
		for n := 0; n < len(b); n += 7 {
			checkAgainstStd(t, b[:n])
		}
	}
}

func FuzzTicketDecoderMatchesStd(f *testing.F) {
	for _, b := range decoderSeeds(f) {
		if len(b) <= 16<<10 { // the deep-nesting cases stall minimization
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkAgainstStd(t, b) })
}

// TestDecoderCoversAllFields fails when a field is added to Ticket or
// Attachment without a case in ticketdec_fields.go.
func TestDecoderCoversAllFields(t *testing.T) {
	check := func(typ reflect.Type, field func(*jsonReader, string) (bool, error)) {
		for i := 0; i < typ.NumField(); i++ {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			d := jsonReader{b: []byte("null")}
			if known, err := field(&d, name); !known || err != nil {
				t.Errorf("%s.%s (%q) is not decoded by the fast decoder", typ.Name(), typ.Field(i).Name, name)
			}
		}
	}
	check(reflect.TypeFor[Ticket](), new(Ticket).field)
	check(reflect.TypeFor[Attachment](), new(Attachment).field)
}

func TestParseUTCSecondsMatchesTime(t *testing.T) {
	for _, s := range []string{"2022-02-22T10:03:42Z", "2024-02-29T23:59:59Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1900-02-28T00:00:00Z", "2000-02-29T12:00:00Z"} {
		got, ok := parseUTCSeconds([]byte(s))
		var want time.Time
		if err := json.Unmarshal([]byte(strconv.Quote(s)), &want); err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: fast %v %v, std %v %v", s, got, ok, want, err)
		}
	}
	for _, s := range []string{"1900-02-29T00:00:00Z", "2022-13-01T00:00:00Z", "2022-00-01T00:00:00Z", "2022-01-00T00:00:00Z", "2022-04-31T00:00:00Z", "202a-01-01T00:00:00Z", "2022-01-01T00:00:00+00:00"} {
		if _, ok := parseUTCSeconds([]byte(s)); ok {
			t.Errorf("%s accepted by the fast path", s)
		}
	}
}

func BenchmarkDecodeTicket(b *testing.B) {
	var body []byte
	for _, s := range decoderSeeds(b) {
		if bytes.Contains(s, []byte(`"cf_klantnummer"`)) { // view_ticket_custom_fields.json
			body = s
		}
	}
	if body == nil {
		b.Skip("shared fixtures not found")
	}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var t Ticket
			if err := t.UnmarshalJSON(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var t stdTicket
			if err := json.Unmarshal(body, &t); err != nil {
				b.Fatal(err)
			}
		}
	})
}
