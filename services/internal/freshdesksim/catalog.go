package freshdesksim

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesksim/helpdeskgen"
)

type statusDef struct {
	id              int
	agent, customer string
}

// Statuses include the custom statuses 6 and 7 seen in the reference.
var statuses = []statusDef{
	{2, "Open", "Being Processed"},
	{3, "Pending", "Awaiting your Reply"},
	{4, "Resolved", "This ticket has been Resolved"},
	{5, "Closed", "This ticket has been Closed"},
	{6, "Waiting on Customer", "Awaiting your Reply"},
	{7, "Waiting on Third Party", "Being Processed"},
}

var priorities = []struct {
	id   int
	name string
}{{1, "Low"}, {2, "Medium"}, {3, "High"}, {4, "Urgent"}}

var sourceChoices = []struct {
	name string
	id   int
}{
	{"Email", 1}, {"Portal", 2}, {"Phone", 3}, {"Forum", 4}, {"Twitter", 5}, {"Facebook", 6},
	{"Chat", 7}, {"MobiHelp", 8}, {"Feedback Widget", 9}, {"Outbound Email", 10},
	{"Ecommerce", 11}, {"Bot", 12}, {"Whatsapp", 13},
}

func statusName(id int) string {
	for _, st := range statuses {
		if st.id == id {
			return st.agent
		}
	}
	return strconv.Itoa(id)
}

func priorityName(id int) string {
	for _, p := range priorities {
		if p.id == id {
			return p.name
		}
	}
	return strconv.Itoa(id)
}

func validStatus(v int) bool {
	return slices.ContainsFunc(statuses, func(s statusDef) bool { return s.id == v })
}

func validSource(v int) bool {
	for _, s := range sourceChoices {
		if s.id == v {
			return true
		}
	}
	return false
}

func statusList() string {
	ids := make([]string, len(statuses))
	for i, s := range statuses {
		ids[i] = strconv.Itoa(s.id)
	}
	return strings.Join(ids, ",")
}

// customField is one cf_ field of the account.
type customField struct {
	id      int64
	name    string
	label   string
	typ     string // custom_dropdown, custom_text, custom_number, custom_checkbox, custom_date
	choices []string
}

type fieldCatalog struct {
	created time.Time
	types   []string
	custom  []customField
	cfNames []string
}

func newFieldCatalog(now time.Time) *fieldCatalog {
	fc := &fieldCatalog{
		created: now.Truncate(time.Second),
		types:   helpdeskgen.Types(),
		custom: []customField{
			{id: 60000000011, name: "cf_language", label: "Language", typ: "custom_dropdown", choices: helpdeskgen.Languages()},
			{id: 60000000012, name: "cf_product_area", label: "Product area", typ: "custom_dropdown", choices: helpdeskgen.ProductAreas()},
			{id: 60000000013, name: "cf_order_number", label: "Order number", typ: "custom_text"},
			{id: 60000000014, name: "cf_customer_number", label: "Customer number", typ: "custom_number"},
			{id: 60000000015, name: "cf_vip", label: "VIP", typ: "custom_checkbox"},
			{id: 60000000016, name: "cf_callback_date", label: "Callback date", typ: "custom_date"},
		},
	}
	for _, c := range fc.custom {
		fc.cfNames = append(fc.cfNames, c.name)
	}
	return fc
}

func (fc *fieldCatalog) customByName(name string) (*customField, bool) {
	for i := range fc.custom {
		if fc.custom[i].name == name {
			return &fc.custom[i], true
		}
	}
	return nil, false
}

// addAgent must be called with s.mu held for writing (or before the Sim is shared).
func (s *Sim) addAgent(name, email string, admin bool, now time.Time) int64 {
	s.nextID++
	a := &agent{id: 44000000000 + s.nextID, name: name, email: email, admin: admin, createdAt: now.Truncate(time.Second)}
	s.agents = append(s.agents, a)
	return a.id
}

// ensureGroup returns the id of the group named name, creating it (with three
// agents) if needed. Must be called with s.mu held for writing.
func (s *Sim) ensureGroup(name, description string) int64 {
	for _, g := range s.groups {
		if g.name == name {
			return g.id
		}
	}
	now := s.nowSec()
	s.nextID++
	g := &group{id: 43000000000 + s.nextID, name: name, description: description, createdAt: now}
	s.groups = append(s.groups, g)
	for i := range 3 {
		n := strconv.Itoa(len(s.agents) + 1)
		aid := s.addAgent(name+" Agent "+strconv.Itoa(i+1), "agent"+n+"@"+s.cfg.Domain+".example", false, now)
		a := s.agentByID(aid)
		a.groupIDs = append(a.groupIDs, g.id)
		g.agentIDs = append(g.agentIDs, aid)
	}
	return g.id
}

func (s *Sim) groupByID(id int64) *group {
	for _, g := range s.groups {
		if g.id == id {
			return g
		}
	}
	return nil
}

func (s *Sim) groupByName(name string) *group {
	for _, g := range s.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

func (s *Sim) agentByID(id int64) *agent {
	for _, a := range s.agents {
		if a.id == id {
			return a
		}
	}
	return nil
}

// Unverified: escalate_to and unassigned_for values; auto_ticket_assign is
// rendered as the integer mode of the current API (0 = off), and group_type as
// in real list records.
func appendGroup(b []byte, g *group, withAgents bool) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, g.id, 10)
	b = append(b, `,"name":`...)
	b = appendStr(b, g.name)
	b = append(b, `,"description":`...)
	b = appendNullStr(b, g.description)
	b = append(b, `,"business_hour_id":null,"escalate_to":null,"unassigned_for":"30m"`...)
	if withAgents {
		b = append(b, `,"agent_ids":[`...)
		for i, id := range g.agentIDs {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, id, 10)
		}
		b = append(b, ']')
	}
	b = append(b, `,"auto_ticket_assign":0,"group_type":"support_agent_group","created_at":`...)
	b = appendTime(b, g.createdAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, g.createdAt)
	return append(b, '}')
}

func appendAgent(b []byte, a *agent) []byte {
	b = append(b, `{"available":true,"occasional":false,"signature":null,"id":`...)
	b = strconv.AppendInt(b, a.id, 10)
	scope := 2
	if a.admin {
		scope = 1
	}
	b = append(b, `,"ticket_scope":`...)
	b = strconv.AppendInt(b, int64(scope), 10)
	b = append(b, `,"type":"support_agent","group_ids":[`...)
	for i, id := range a.groupIDs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	b = append(b, `],"role_ids":[],"skill_ids":[],"focus_mode":true,"created_at":`...)
	b = appendTime(b, a.createdAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, a.createdAt)
	b = append(b, `,"available_since":null,"last_active_at":null,"contact":{"active":true,"email":`...)
	b = appendStr(b, a.email)
	b = append(b, `,"job_title":null,"language":"en","last_login_at":null,"mobile":null,"name":`...)
	b = appendStr(b, a.name)
	b = append(b, `,"phone":null,"time_zone":"UTC","created_at":`...)
	b = appendTime(b, a.createdAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, a.createdAt)
	return append(b, "}}"...)
}

func forbidden(w http.ResponseWriter) {
	writeCodeMessage(w, http.StatusForbidden, "access_denied", "You are not authorized to perform this action.")
}

func (s *Sim) handleGroups(w http.ResponseWriter, r *http.Request, rc *reqCtx, _ int64) {
	if rc.role != roleAdmin {
		forbidden(w)
		return
	}
	q := r.URL.Query()
	if !checkParams(w, q, "page", "per_page") {
		return
	}
	page, perPage, ok := pageParams(w, q, 30, 0)
	if !ok {
		return
	}
	s.mu.RLock()
	gs := slices.Clone(s.groups)
	s.mu.RUnlock()
	lo, hi, more := pageBounds(len(gs), page, perPage)
	b := []byte{'['}
	for i, g := range gs[lo:hi] {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendGroup(b, g, false)
	}
	b = append(b, ']')
	setNextLink(w, r, more, page)
	writeJSON(w, http.StatusOK, b)
}

func (s *Sim) handleGroup(w http.ResponseWriter, _ *http.Request, rc *reqCtx, id int64) {
	if rc.role != roleAdmin {
		forbidden(w)
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groupByID(id)
	if g == nil {
		writeJSON(w, http.StatusNotFound, nil)
		return
	}
	writeJSON(w, http.StatusOK, appendGroup(nil, g, true))
}

func (s *Sim) handleAgents(w http.ResponseWriter, r *http.Request, rc *reqCtx, _ int64) {
	if rc.role != roleAdmin {
		forbidden(w)
		return
	}
	q := r.URL.Query()
	if !checkParams(w, q, "page", "per_page", "email", "mobile", "phone", "state") {
		return
	}
	page, perPage, ok := pageParams(w, q, 30, 0)
	if !ok {
		return
	}
	if st := q.Get("state"); st != "" && st != "fulltime" && st != "occasional" {
		writeValidation(w, fieldError{"state", "It should be one of these values: 'fulltime,occasional'", "invalid_value"})
		return
	}
	s.mu.RLock()
	var as []*agent
	for _, a := range s.agents {
		if e := q.Get("email"); e != "" && !strings.EqualFold(e, a.email) {
			continue
		}
		if q.Get("state") == "occasional" || q.Get("mobile") != "" || q.Get("phone") != "" {
			continue // simulated agents are all full-time and have no phone numbers
		}
		as = append(as, a)
	}
	s.mu.RUnlock()
	lo, hi, more := pageBounds(len(as), page, perPage)
	b := []byte{'['}
	for i, a := range as[lo:hi] {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendAgent(b, a)
	}
	setNextLink(w, r, more, page)
	writeJSON(w, http.StatusOK, append(b, ']'))
}

func (s *Sim) handleAgent(w http.ResponseWriter, _ *http.Request, rc *reqCtx, id int64) {
	if rc.role != roleAdmin {
		forbidden(w)
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := s.agentByID(id)
	if a == nil {
		writeJSON(w, http.StatusNotFound, nil)
		return
	}
	writeJSON(w, http.StatusOK, appendAgent(nil, a))
}

// handleAgentMe returns the key owner; allowed for any valid key.
func (s *Sim) handleAgentMe(w http.ResponseWriter, _ *http.Request, rc *reqCtx, _ int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	writeJSON(w, http.StatusOK, appendAgent(nil, s.agentByID(rc.agentID)))
}

// handleTicketFields lists the ticket fields. Agents may call it too (the
// reference: agents who may view ticket fields). The choices shape depends
// on the field type, as in the real API.
func (s *Sim) handleTicketFields(w http.ResponseWriter, r *http.Request, _ *reqCtx, _ int64) {
	q := r.URL.Query()
	if !checkParams(w, q, "type") {
		return
	}
	s.mu.RLock()
	b := s.renderFields(q.Get("type"))
	s.mu.RUnlock()
	writeJSON(w, http.StatusOK, b)
}

func (s *Sim) renderFields(onlyType string) []byte {
	fc := s.fields
	defs := []fieldDef{
		{id: 60000000001, name: "requester", label: "Search a requester", typ: "default_requester"},
		{id: 60000000002, name: "subject", label: "Subject", typ: "default_subject"},
		{id: 60000000003, name: "ticket_type", label: "Type", typ: "default_ticket_type", choices: strArray(fc.types)},
		{id: 60000000004, name: "source", label: "Source", typ: "default_source", choices: sourceChoicesJSON},
		{id: 60000000005, name: "status", label: "Status", typ: "default_status", choices: statusChoicesJSON},
		{id: 60000000006, name: "priority", label: "Priority", typ: "default_priority", choices: priorityChoicesJSON},
		{id: 60000000007, name: "group", label: "Group", typ: "default_group", choices: s.groupChoicesJSON},
		{id: 60000000008, name: "agent", label: "Agent", typ: "default_agent", choices: s.agentChoicesJSON},
		{id: 60000000009, name: "description", label: "Description", typ: "default_description"},
		{id: 60000000010, name: "company", label: "Company", typ: "default_company"},
	}
	for i := range defs {
		defs[i].def = true
	}
	for _, c := range fc.custom {
		d := fieldDef{id: c.id, name: c.name, label: c.label, typ: c.typ}
		if c.typ == "custom_dropdown" {
			d.choices = strArray(c.choices)
		}
		defs = append(defs, d)
	}
	b := []byte{'['}
	first := true
	for i, d := range defs {
		if onlyType != "" && d.typ != onlyType {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendField(b, &d, i+1, fc.created)
	}
	return append(b, ']')
}

// fieldDef is one entry of GET /ticket_fields; choices renders its
// "choices" value (nil: none).
type fieldDef struct {
	id               int64
	name, label, typ string
	def              bool // a default (not custom) field
	choices          func([]byte) []byte
}

func appendField(b []byte, d *fieldDef, pos int, created time.Time) []byte {
	required := d.name == "requester" || d.name == "subject"
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, d.id, 10)
	b = append(b, `,"name":`...)
	b = appendStr(b, d.name)
	b = append(b, `,"label":`...)
	b = appendStr(b, d.label)
	b = append(b, `,"description":`...)
	b = appendStr(b, d.label)
	b = append(b, `,"position":`...)
	b = strconv.AppendInt(b, int64(pos), 10)
	b = append(b, `,"required_for_closure":false,"required_for_agents":`...)
	b = appendBool(b, required)
	b = append(b, `,"type":`...)
	b = appendStr(b, d.typ)
	b = append(b, `,"default":`...)
	b = appendBool(b, d.def)
	b = append(b, `,"customers_can_edit":`...)
	b = appendBool(b, d.def)
	b = append(b, `,"label_for_customers":`...)
	b = appendStr(b, d.label)
	b = append(b, `,"required_for_customers":`...)
	b = appendBool(b, required)
	b = append(b, `,"displayed_to_customers":`...)
	b = appendBool(b, d.def)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, created)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, created)
	if d.choices != nil {
		b = append(b, `,"choices":`...)
		b = d.choices(b)
	}
	return append(b, '}')
}

func strArray(xs []string) func([]byte) []byte {
	return func(b []byte) []byte { return appendStrs(b, xs, false) }
}

// appendNameIDs renders n entries as a {"name":id,...} object.
func appendNameIDs(b []byte, n int, entry func(i int) (string, int64)) []byte {
	b = append(b, '{')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		name, id := entry(i)
		b = appendStr(b, name)
		b = append(b, ':')
		b = strconv.AppendInt(b, id, 10)
	}
	return append(b, '}')
}

func sourceChoicesJSON(b []byte) []byte {
	return appendNameIDs(b, len(sourceChoices), func(i int) (string, int64) {
		return sourceChoices[i].name, int64(sourceChoices[i].id)
	})
}

func priorityChoicesJSON(b []byte) []byte {
	return appendNameIDs(b, len(priorities), func(i int) (string, int64) {
		return priorities[i].name, int64(priorities[i].id)
	})
}

func (s *Sim) groupChoicesJSON(b []byte) []byte {
	return appendNameIDs(b, len(s.groups), func(i int) (string, int64) { return s.groups[i].name, s.groups[i].id })
}

func (s *Sim) agentChoicesJSON(b []byte) []byte {
	return appendNameIDs(b, len(s.agents), func(i int) (string, int64) { return s.agents[i].name, s.agents[i].id })
}

// statusChoicesJSON renders {"id":[agent label, customer label],...}.
func statusChoicesJSON(b []byte) []byte {
	b = append(b, '{')
	for i, st := range statuses {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendStr(b, strconv.Itoa(st.id))
		b = append(b, ":["...)
		b = appendStr(b, st.agent)
		b = append(b, ',')
		b = appendStr(b, st.customer)
		b = append(b, ']')
	}
	return append(b, '}')
}
