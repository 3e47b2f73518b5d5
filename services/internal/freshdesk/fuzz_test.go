package freshdesk

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// seedFixtures adds the shared fixtures with the given prefix to f's corpus,
// when the shared material is present.
func seedFixtures(f *testing.F, match func(string) bool) {
	dir := os.Getenv("AUTOTRIAGE_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared")
	}
	dir = filepath.Join(dir, "fixtures", "freshdesk")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") && match(e.Name()) {
			if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
				f.Add(b)
			}
		}
	}
}

func FuzzParseWebhook(f *testing.F) {
	seedFixtures(f, func(n string) bool { return strings.HasPrefix(n, "webhook_") })
	f.Add([]byte(`{"ticket_id":1,"triggered_event":"{status:{from:1,to:2}}"}`))
	f.Add([]byte(`{"freshdesk_webhook":{"ticket_id":"7","triggered_event":"{priority:{from:,to:}}"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParseWebhook(bytes.NewReader(b))
		if err == nil && ev.TicketID <= 0 {
			t.Fatalf("accepted payload without a positive ticket id: %+v", ev)
		}
		if err == nil && ev.Kind == EventUnknown {
			t.Fatalf("unknown event without error")
		}
	})
}

func FuzzDecodeTicket(f *testing.F) {
	seedFixtures(f, func(n string) bool { return !strings.HasPrefix(n, "webhook_") })
	f.Add([]byte(`{"id":1,"custom_fields":{"a":1,"b":1.5,"c":[1],"d":{"x":null}},"tags":null}`))
	f.Add([]byte(`[{"name":"f","choices":{"a":{"b":{"c":["d"]}}}}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var tk Ticket
		if json.Unmarshal(b, &tk) == nil {
			n := ToNeutral(&tk)
			if n.Tags == nil {
				t.Fatal("neutral ticket with nil tags")
			}
		}
		var page []Ticket
		_ = json.Unmarshal(b, &page)
		var fields []TicketField
		if json.Unmarshal(b, &fields) == nil {
			_, _ = CatalogFromFields(fields)
		}
		tf := TicketField{Choices: b}
		_, _ = tf.DecodeChoices()
		var c Conversation
		_ = json.Unmarshal(b, &c)
	})
}

func FuzzQueryBuilder(f *testing.F) {
	f.Add("status", "Question", int64(2))
	f.Add("cf_x", `it's "q" \`, int64(-1))
	f.Add("tag", strings.Repeat("é", 300), int64(1<<40))
	f.Fuzz(func(t *testing.T, field, value string, n int64) {
		e := Or(And(Eq(field, value), Gte(field, n)), Null(field), Eq("tag", value))
		q, err := e.Build()
		if err != nil {
			return
		}
		if !utf8.ValidString(q) || len([]rune(q)) > MaxQueryLength || q[0] != '"' || q[len(q)-1] != '"' {
			t.Fatalf("bad query %q", q)
		}
		if strings.Contains(q[1:len(q)-1], `"`) {
			t.Fatalf("unescaped double quote inside %q", q)
		}
		// Every single quote inside a value is escaped: outside values the
		// quotes come in pairs, so the count of unescaped quotes is even.
		inner, unescaped := q[1:len(q)-1], 0
		for i := 0; i < len(inner); i++ {
			switch inner[i] {
			case '\\':
				i++
			case '\'':
				unescaped++
			}
		}
		if unescaped%2 != 0 {
			t.Fatalf("unbalanced quotes in %q", q)
		}
	})
}

func FuzzParseLink(f *testing.F) {
	f.Add(`<https://a.freshdesk.com/api/v2/tickets?page=2>; rel="next"`)
	f.Add(`<a,b>; rel="prev", <c>; title="x, y"; rel=next`)
	f.Fuzz(func(t *testing.T, h string) {
		u, ok := parseLinkNext(h)
		if ok && strings.Contains(u, ">") {
			t.Fatalf("target %q runs past its closing bracket", u)
		}
	})
}
