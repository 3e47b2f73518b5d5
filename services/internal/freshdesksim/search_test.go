package freshdesksim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func searchIDs(t *testing.T, e *env, q string, page int) (int, []int64, result) {
	t.Helper()
	path := "/api/v2/search/tickets?query=" + url.QueryEscape(q)
	if page > 0 {
		path += fmt.Sprintf("&page=%d", page)
	}
	r := e.get(path)
	if r.status != 200 {
		return 0, nil, r
	}
	var body struct {
		Total   int               `json:"total"`
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("search body: %v %s", err, r.body)
	}
	var out []int64
	for _, raw := range body.Results {
		var x struct {
			ID int64 `json:"id"`
		}
		_ = json.Unmarshal(raw, &x)
		out = append(out, x.ID)
	}
	return body.Total, out, r
}

func TestSearch(t *testing.T) {
	e := newEnv(t, Config{})
	if err := e.sim.Generate(GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	billing, _ := e.sim.GroupID("Billing")
	mk := func(subject string, upd map[string]any) int64 {
		id, err := e.sim.AddTicket(NewTicket{Subject: subject, Description: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if upd != nil {
			if err := e.sim.AgentUpdate(id, upd); err != nil {
				t.Fatal(err)
			}
		}
		e.clock.Add(24 * time.Hour)
		return id
	}
	// Created on 2025-03-10, -11, -12, -13.
	t1 := mk("a", map[string]any{"priority": 4, "status": 2, "group_id": billing, "tags": []string{"vip", "invoice"}, "type": "Question"})
	t2 := mk("b", map[string]any{"priority": 2, "status": 6, "custom_fields": map[string]any{"cf_language": "de", "cf_vip": true, "cf_customer_number": 7}})
	t3 := mk("c", map[string]any{"priority": 3, "status": 3, "type": "Incident", "custom_fields": map[string]any{"cf_callback_date": "2025-04-01"}})
	t4 := mk("d", nil)
	tests := []struct {
		q    string
		want []int64
	}{
		{`"priority:4"`, []int64{t1}},
		{`"priority:>3"`, []int64{t3, t1}}, // inclusive
		{`"priority:<2"`, []int64{t4, t2}},
		{`"priority:>2 AND priority:<3"`, []int64{t3, t2}},
		{`"status:2 OR status:6"`, []int64{t4, t2, t1}},
		{`"(status:3 OR status:6) AND priority:3"`, []int64{t3}},
		{`"group_id:` + fmt.Sprint(billing) + `"`, []int64{t1}},
		{`"group_id:null"`, []int64{t4, t3, t2}},
		{`"agent_id:null AND priority:4"`, []int64{t1}},
		{`"tag:'vip'"`, []int64{t1}},
		{`"tag:null"`, []int64{t4, t3, t2}},
		{`"type:'incident'"`, []int64{t3}},
		{`"type:null"`, []int64{t4, t2}},
		{`"created_at:'2025-03-11'"`, []int64{t2}},
		{`"created_at:>'2025-03-12'"`, []int64{t4, t3}},
		{`"created_at:<'2025-03-11'"`, []int64{t2, t1}},
		{`"cf_language:'de'"`, []int64{t2}},
		{`"cf_vip:true"`, []int64{t2}},
		{`"cf_customer_number:>5"`, []int64{t2}},
		{`"cf_callback_date:<'2025-04-01'"`, []int64{t3}},
		{`"cf_language:null AND status:2"`, []int64{t4, t1}},
	}
	for _, tc := range tests {
		t.Run(tc.q, func(t *testing.T) {
			total, got, r := searchIDs(t, e, tc.q, 0)
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if total != len(tc.want) || !slices.Equal(got, tc.want) {
				t.Fatalf("total %d ids %v, want %v", total, got, tc.want)
			}
		})
	}
}

func TestSearchErrors(t *testing.T) {
	e := newEnv(t, Config{})
	bad := []string{
		`priority:4`,                // no quotes
		`'priority:4'`,              // single quotes around
		`"priority:'4'"`,            // string for a number
		`"Priority:4"`,              // case-sensitive field
		`"priority:4 and status:2"`, // lowercase keyword
		`"subject:'x'"`,             // not searchable
		`"(priority:4"`,             // unbalanced
		`"priority:4)"`,             // unbalanced
		`"type:>'a'"`,               // ordering on a string
		`"created_at:'2025-13-01'"`, // bad date
		`"cf_nope:1"`,               // unknown custom field
		`"priority:"`,               // no value
		`""`,                        // empty
		`"tag:'unterminated"`,       // string
		`"priority:4 AND"`,          // dangling
		`"` + strings.Repeat("priority:1 OR ", 40) + `priority:1"`, // > 512 chars
	}
	for _, q := range bad {
		t.Run(q[:min(len(q), 40)], func(t *testing.T) {
			_, _, r := searchIDs(t, e, q, 0)
			var body struct {
				Description string       `json:"description"`
				Errors      []fieldError `json:"errors"`
			}
			if r.status != 400 || json.Unmarshal(r.body, &body) != nil || body.Description == "" || len(body.Errors) == 0 {
				t.Fatalf("want 400 {description, errors}: %d %s", r.status, r.body)
			}
		})
	}
	for _, c := range []struct {
		page   int
		status int
	}{{10, 200}, {11, 400}, {0, 200}} {
		_, _, r := searchIDs(t, e, `"priority:1"`, c.page)
		if r.status != c.status {
			t.Errorf("page %d: %d", c.page, r.status)
		}
	}
	if r := e.get("/api/v2/search/tickets?query=%22priority:1%22&per_page=5"); r.status != 400 {
		t.Errorf("per_page on search: %d", r.status)
	}
}

func TestSearchPagingAndIndexDelay(t *testing.T) {
	e := newEnv(t, Config{IndexDelay: 2 * time.Minute})
	if err := e.sim.Generate(GenerateOptions{History: 70}); err != nil {
		t.Fatal(err)
	}
	total, got, _ := searchIDs(t, e, `"status:4 OR status:5"`, 3)
	if total != 70 || len(got) != 10 {
		t.Fatalf("total %d page 3 has %d", total, len(got))
	}
	id, _ := e.sim.AddTicket(NewTicket{Subject: "fresh", Description: "x"})
	if total, _, _ := searchIDs(t, e, `"status:2"`, 0); total != 0 {
		t.Fatal("new ticket visible before the index delay")
	}
	e.clock.Add(2 * time.Minute)
	if total, got, _ := searchIDs(t, e, `"status:2"`, 0); total != 1 || got[0] != id {
		t.Fatal("new ticket not visible after the index delay")
	}
	if err := e.sim.AgentUpdate(id, map[string]any{"priority": 4}); err != nil {
		t.Fatal(err)
	}
	if total, _, _ := searchIDs(t, e, `"priority:4 AND status:2"`, 0); total != 0 {
		t.Fatal("update visible before the index delay")
	}
	if total, _, _ := searchIDs(t, e, `"priority:1 AND status:2"`, 0); total != 1 {
		t.Fatal("old state not served during the index delay")
	}
	e.clock.Add(3 * time.Minute)
	if total, _, _ := searchIDs(t, e, `"priority:4 AND status:2"`, 0); total != 1 {
		t.Fatal("update not visible after the index delay")
	}
}

// FuzzParseQuery checks that the parser never panics and that whatever it
// accepts can be evaluated.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		`"priority:4"`, `"(status:2 OR status:6) AND group_id:null"`, `"tag:'a b'"`,
		`"created_at:>'2024-01-01' AND created_at:<'2024-02-01'"`, `"cf_vip:true"`, `"((("`, `"a:"`,
		`"priority:-"`, `"priority:99999999999999999999"`, `"type:'x' OR"`, "\"\x00\"",
	} {
		f.Add(s)
	}
	fc := newFieldCatalog(time.Unix(0, 0))
	tk := Ticket{Tags: []string{"a"}, CustomFields: map[string]any{"cf_vip": true, "cf_callback_date": "2024-01-01"}}
	f.Fuzz(func(t *testing.T, q string) {
		n, err := parseQuery(q, fc.searchField)
		if err == nil {
			if n == nil {
				t.Fatal("nil node without error")
			}
			n.match(&tk)
		}
	})
}
