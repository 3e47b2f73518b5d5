package freshdesk_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
)

// ignoredKeys are fixture keys deliberately not modelled, with the reason.
var ignoredKeys = map[string]string{
	"priority_name": "not a v2 field (hand-edited fixture, see SOURCES.md)",
}

// TestGoldenFixturesDecodeLosslessly decodes every recorded API response
// and checks that re-encoding reproduces every key and value of the
// original: nothing is dropped, truncated (int64 ids) or mistyped.
func TestGoldenFixturesDecodeLosslessly(t *testing.T) {
	dir := filepath.Join(sharedDir(t), "fixtures", "freshdesk")
	target := map[string]func() any{
		"list_tickets_page1.json":               func() any { return &[]freshdesk.Ticket{} },
		"list_tickets_page2.json":               func() any { return &[]freshdesk.Ticket{} },
		"view_ticket_custom_fields.json":        func() any { return &freshdesk.Ticket{} },
		"view_ticket_with_stats_requester.json": func() any { return &freshdesk.Ticket{} },
		"create_note_private.json":              func() any { return &freshdesk.Conversation{} },
		"create_reply.json":                     func() any { return &freshdesk.Conversation{} },
		"list_conversations.json":               func() any { return &[]freshdesk.Conversation{} },
		"view_agent_docs_sample.json":           func() any { return &freshdesk.Agent{} },
		"list_agents_docs_sample.json":          func() any { return &[]freshdesk.Agent{} },
		"view_group_docs_sample.json":           func() any { return &freshdesk.Group{} },
		"list_groups_docs_sample.json":          func() any { return &[]freshdesk.Group{} },
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, "webhook_") {
			continue // webhooks: TestWebhookFixtures
		}
		if name == "view_contact_v1_shape.json" {
			continue // API v1 shape, not a v2 response (SOURCES.md)
		}
		mk, ok := target[name]
		if !ok {
			t.Errorf("fixture %s has no decoding target; add it to this test", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			raw := fixture(t, name)
			v := mk()
			if err := json.Unmarshal(raw, v); err != nil {
				t.Fatalf("decode: %v", err)
			}
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if err := subset(generic(t, raw), generic(t, again), "$"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func generic(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// subset checks that every key and value of want is in got.
func subset(want, got any, path string) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: got %T, want object", path, got)
		}
		for k, wv := range w {
			if _, ign := ignoredKeys[k]; ign {
				continue
			}
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s.%s: key lost", path, k)
			}
			if err := subset(wv, gv, path+"."+k); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: got %v, want %v", path, got, want)
		}
		for i := range w {
			if err := subset(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("%s: got %#v, want %#v", path, got, want)
	}
	return nil
}

func TestGoldenTicketValues(t *testing.T) {
	var tk freshdesk.Ticket
	if err := json.Unmarshal(fixture(t, "view_ticket_custom_fields.json"), &tk); err != nil {
		t.Fatal(err)
	}
	n := freshdesk.ToNeutral(&tk)
	if n.GroupID != 1080000528068 || n.RequesterID != 50000009103717 || n.ResponderID != 1080031140182 || n.Type != "Informatief" {
		t.Errorf("ids/type: %+v", n)
	}
	wantCF := map[string]any{"cf_skip_notifications": false, "cf_categorie": "Administratie",
		"cf_subcategorie": "Facturen & betalingen", "cf_domeinnaam": "www.ikbestavastnietdomein.nl",
		"cf_klantnummer": "1", "cf_chatgroepen": nil}
	if !reflect.DeepEqual(n.CustomFields, wantCF) {
		t.Errorf("custom fields %#v", n.CustomFields)
	}
	if tk.ToEmails != nil || tk.CCEmails == nil || len(tk.CCEmails) != 0 {
		t.Errorf("null vs empty arrays: to=%#v cc=%#v", tk.ToEmails, tk.CCEmails)
	}
	if !strings.HasPrefix(n.Description, "Lorem ipsum") || !strings.HasPrefix(n.DescriptionHTML, "<div") {
		t.Errorf("description text/html swapped")
	}
	var page []freshdesk.Ticket
	if err := json.Unmarshal(fixture(t, "list_tickets_page1.json"), &page); err != nil {
		t.Fatal(err)
	}
	if len(page) != 10 || page[0].ID != 29 || *page[0].RequesterID != 69005244534 || page[0].GroupID != nil {
		t.Errorf("page1: %d tickets, first %+v", len(page), page[0])
	}
}

func TestDecodeChoicesShapes(t *testing.T) {
	fields := `[
 {"name":"ticket_type","type":"default_ticket_type","default":true,"choices":["Question","Incident","Problem","Feature Request","Refund"]},
 {"name":"source","type":"default_source","default":true,"choices":{"Email":1,"Portal":2,"Phone":3,"Whatsapp":13}},
 {"name":"status","type":"default_status","default":true,"choices":{"2":["Open","Being Processed"],"3":["Pending","Awaiting your Reply"],"6":["Waiting on Customer","Awaiting your Reply"]}},
 {"name":"priority","type":"default_priority","default":true,"choices":{"Low":1,"Medium":2,"High":3,"Urgent":4}},
 {"name":"group","type":"default_group","default":true,"choices":{"Billing":10000000001,"Support":1080000528068}},
 {"name":"cf_category","label":"Category","type":"custom_dropdown","default":false,"choices":["Hardware","Software"]},
 {"name":"cf_product","type":"nested_field","default":false,"choices":{"Books":{"Fiction":["Classic","Modern"],"Poetry":[]},"Music":{}}},
 {"name":"cf_issue_type_297457","type":"custom_dropdown","default":false,"choices":[{"id":1,"value":"Bug","position":1,"parent_choice_id":null,"choices":[{"id":2,"value":"UI"}]}]},
 {"name":"requester","type":"default_requester","default":true}
]`
	var fs []freshdesk.TicketField
	if err := json.Unmarshal([]byte(fields), &fs); err != nil {
		t.Fatal(err)
	}
	cat, err := freshdesk.CatalogFromFields(fs)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cat.Types) != "[Question Incident Problem Feature Request Refund]" {
		t.Errorf("types %v", cat.Types)
	}
	if s, ok := cat.StatusByID(6); !ok || s.AgentLabel != "Waiting on Customer" || s.CustomerLabel != "Awaiting your Reply" {
		t.Errorf("status 6: %+v %v", s, ok)
	}
	if g, ok := cat.GroupByName("Support"); !ok || g.ID != 1080000528068 {
		t.Errorf("group: %+v", g)
	}
	if p, ok := cat.PriorityByName("Urgent"); !ok || p.ID != 4 {
		t.Errorf("priority: %+v", p)
	}
	if len(cat.Sources) != 4 || cat.Sources[3].ID != 13 {
		t.Errorf("sources (order kept): %+v", cat.Sources)
	}
	nested, err := fs[6].DecodeChoices()
	if err != nil || len(nested) != 2 || nested[0].Value != "Books" || nested[0].Choices[0].Choices[1].Value != "Modern" {
		t.Errorf("nested: %+v %v", nested, err)
	}
	admin, err := fs[7].DecodeChoices()
	if err != nil || admin[0].ID != 1 || admin[0].Value != "Bug" || admin[0].Choices[0].Value != "UI" {
		t.Errorf("admin: %+v %v", admin, err)
	}
	if len(cat.CustomFields) != 3 || cat.CustomFields[0].Name != "cf_category" || len(cat.CustomFields[0].Choices) != 2 {
		t.Errorf("custom fields: %+v", cat.CustomFields)
	}
	bad := freshdesk.TicketField{Name: "x", Choices: json.RawMessage(`{"Low":"x1"}`)}
	if _, err := bad.DecodeChoices(); err != nil {
		t.Errorf("string-valued choice rejected: %v", err)
	}
	bad.Choices = json.RawMessage(`{"Low":1.5}`)
	if _, err := bad.DecodeChoices(); err == nil {
		t.Error("fractional id accepted")
	}
}

func TestWebhookFixtures(t *testing.T) {
	cases := []struct {
		file     string
		kind     freshdesk.EventKind
		id       int64
		from, to int
		private  bool
		err      error
	}{
		{"webhook_ticket_created.json", freshdesk.EventTicketCreated, 11, 0, 0, false, nil},
		{"webhook_ticket_created_inline_images.json", freshdesk.EventTicketCreated, 12, 0, 0, false, nil},
		{"webhook_status_changed.json", freshdesk.EventStatusChanged, 11, 4, 6, false, nil},
		{"webhook_priority_changed.json", freshdesk.EventPriorityChanged, 11, 3, 1, false, nil},
		{"webhook_private_note.json", freshdesk.EventNoteAdded, 11, 0, 0, true, nil},
		{"webhook_public_note.json", freshdesk.EventNoteAdded, 11, 0, 0, false, nil},
		{"webhook_status_changed_missing_triggered_event.json", freshdesk.EventUnspecified, 11, 0, 0, false, nil},
		{"webhook_unknown_event.json", freshdesk.EventUnknown, 11, 0, 0, false, freshdesk.ErrUnknownEvent},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			ev, err := freshdesk.ParseWebhook(bytes.NewReader(fixture(t, tc.file)))
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("err = %v; want %v", err, tc.err)
			}
			if ev.TicketID != tc.id || ev.Kind != tc.kind || ev.From != tc.from || ev.To != tc.to || ev.Private != tc.private {
				t.Fatalf("event %+v", ev)
			}
		})
	}
	ev, _ := freshdesk.ParseWebhook(bytes.NewReader(fixture(t, "webhook_status_changed.json")))
	if ev.Fields["ticket_status"] != "Waiting on Customer" || !strings.Contains(ev.Fields["ticket_subject"], "☃") {
		t.Errorf("fields %v", ev.Fields)
	}
}

func TestWebhookErrors(t *testing.T) {
	cases := []struct {
		body string
		err  error
		id   int64
	}{
		{`not json`, freshdesk.ErrMalformedWebhook, 0},
		{`[1,2]`, freshdesk.ErrMalformedWebhook, 0},
		{`null`, freshdesk.ErrMalformedWebhook, 0},
		{`{"freshdesk_webhook":"x"}`, freshdesk.ErrMalformedWebhook, 0},
		{`{"freshdesk_webhook":{"triggered_event":"{ticket_action:created}"}}`, freshdesk.ErrMissingTicketID, 0},
		{`{"ticket_id":"abc","triggered_event":"{ticket_action:created}"}`, freshdesk.ErrMissingTicketID, 0},
		{`{"ticket_id":"-3"}`, freshdesk.ErrMissingTicketID, 0},
		{`{"ticket_id":"99999999999999999999"}`, freshdesk.ErrMissingTicketID, 0},
		{`{"ticket_id":12,"triggered_event":"{status:{from:x,to:2}}"}`, freshdesk.ErrUnknownEvent, 12},
		{`{"ticket_id":12,"triggered_event":"garbage"}`, freshdesk.ErrUnknownEvent, 12},
		{`{"ticket_id":12,"triggered_event":"{ticket_action:deleted}"}`, freshdesk.ErrUnknownEvent, 12},
		{`{"ticket_id":"#13","triggered_event":"{\"status\":{\"from\":2,\"to\":3}}"}`, nil, 13},
		{`{"ticket_id":` + strings.Repeat(" ", freshdesk.MaxWebhookBytes) + `1}`, freshdesk.ErrWebhookTooLarge, 0},
	}
	for _, tc := range cases {
		ev, err := freshdesk.ParseWebhook(strings.NewReader(tc.body))
		if tc.err == nil && err != nil || !errors.Is(err, tc.err) {
			t.Errorf("ParseWebhook(%.60q) err = %v; want %v", tc.body, err, tc.err)
		}
		if ev.TicketID != tc.id {
			t.Errorf("ParseWebhook(%.60q) id = %d; want %d", tc.body, ev.TicketID, tc.id)
		}
	}
}
