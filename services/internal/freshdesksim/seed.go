package freshdesksim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesksim/helpdeskgen"
)

// NewTicket is a ticket arriving from a customer. Arriving tickets are
// untriaged: open, no group, no type, no tags unless given here.
type NewTicket struct {
	Subject      string
	Description  string // HTML; plain text is wrapped in <div> and escaped
	Email        string // requester email (default "customer@example.com")
	Name         string // requester name
	Company      string
	Priority     int // default 1 (Low)
	Source       int // default 1 (Email)
	Tags         []string
	CustomFields map[string]any
	// Labels, when set, are the true labels returned by TrueLabels.
	Labels *Labels
}

// GenerateOptions says how much of the generated helpdesk to seed.
type GenerateOptions struct {
	History     int     // resolved/closed tickets with group, type, priority and tags set
	New         int     // untriaged open tickets created in the last hour
	HistoryDays int     // history spans this many days before now (default 90)
	ArrivalRate float64 // further untriaged tickets per real second after Generate (0 = none)
	Arrivals    int     // stop after this many arrivals (0 = until Close)
	// EmailShare (0..1) of the generated tickets are realistic HTML e-mails
	// with long-tailed sizes up to several MB (helpdeskgen.Options.EmailShare).
	// Default 0: the output for a seed is what it was before e-mails existed.
	EmailShare float64
}

// DatasetOptions says how to load a dataset directory.
type DatasetOptions struct {
	HistoryLimit int     // at most this many train.jsonl rows (0 = all)
	NewLimit     int     // at most this many test.jsonl rows (0 = all)
	Rate         float64 // test rows arriving per real second (0 = all at once)
}

// ValidationError is returned by AgentUpdate for rejected fields.
type ValidationError struct {
	Errors []FieldError `json:"errors"`
}

// FieldError is one rejected field, as in Freshdesk's validation body.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	Code    string `json:"code"`
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, f := range e.Errors {
		parts[i] = f.Field + ": " + f.Message + " (" + f.Code + ")"
	}
	return "freshdesksim: validation failed: " + strings.Join(parts, "; ")
}

// ErrNotFound is returned for an unknown ticket id.
var ErrNotFound = errNoTicket

func wrapText(s string) string {
	if strings.HasPrefix(strings.TrimSpace(s), "<") {
		return s
	}
	return "<div>" + strings.ReplaceAll(html.EscapeString(s), "\n", "<br>") + "</div>"
}

// newTicketLocked builds and stores an arriving ticket. Must hold s.mu.
func (s *Sim) newTicketLocked(nt NewTicket, created time.Time, indexAt time.Time) Ticket {
	if nt.Email == "" {
		nt.Email = "customer@example.com"
	}
	if nt.Priority == 0 {
		nt.Priority = 1
	}
	if nt.Source == 0 {
		nt.Source = 1
	}
	desc := wrapText(nt.Description)
	t := Ticket{
		ID: s.nextTicket, Subject: nt.Subject, Description: desc, DescriptionText: htmlToText(desc),
		Status: 2, Priority: nt.Priority, Source: nt.Source,
		RequesterID: s.ensureContact(nt.Email, nt.Name, nt.Company),
		Tags:        slices.Clone(nt.Tags), CustomFields: map[string]any{},
		CreatedAt: created, UpdatedAt: created,
		DueBy: created.Add(72 * time.Hour), FrDueBy: created.Add(24 * time.Hour),
	}
	if t.Tags == nil {
		t.Tags = []string{}
	}
	t.CompanyID = s.contacts[t.RequesterID].company
	for k, v := range nt.CustomFields {
		t.CustomFields[k] = v
	}
	s.nextTicket++
	s.store(t, indexAt)
	if nt.Labels != nil {
		s.labels[t.ID] = *nt.Labels
	}
	return t
}

// AddTicket makes a ticket arrive now and fires the "ticket created" webhook
// when one is configured.
func (s *Sim) AddTicket(nt NewTicket) (int64, error) {
	for k := range nt.CustomFields {
		if _, ok := s.fields.customByName(k); !ok {
			return 0, fmt.Errorf("freshdesksim: add ticket: unknown custom field %q", k)
		}
	}
	s.mu.Lock()
	now := s.nowSec()
	t := s.newTicketLocked(nt, now, now)
	var ev webhookEvent
	if s.hooks != nil {
		ev = s.createdEvent(t)
	}
	s.mu.Unlock()
	if s.hooks != nil {
		s.hooks.enqueue(ev)
	}
	return t.ID, nil
}

// Ticket returns a snapshot of ticket id.
func (s *Sim) Ticket(id int64) (Ticket, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	tk := s.tickets[id]
	if tk == nil {
		return Ticket{}, false
	}
	return tk.t.clone(), true
}

// TicketIDs returns all ticket ids in ascending order.
func (s *Sim) TicketIDs() []int64 {
	s.mu.RLock()
	ids := make([]int64, 0, len(s.tickets))
	for id := range s.tickets {
		ids = append(ids, id)
	}
	s.mu.RUnlock()
	slices.Sort(ids)
	return ids
}

// TrueLabels returns the labels a perfect triage would set on ticket id
// (known for generated and dataset tickets, and for NewTicket.Labels).
func (s *Sim) TrueLabels(id int64) (Labels, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := s.labels[id]
	l.Tags = slices.Clone(l.Tags)
	return l, ok
}

// GroupID returns the id of the group named name.
func (s *Sim) GroupID(name string) (int64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if g := s.groupByName(name); g != nil {
		return g.id, true
	}
	return 0, false
}

// SetSpam marks a ticket as spam (or deleted), e.g. to test 405 on update.
func (s *Sim) SetSpam(id int64, spam, deleted bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tk := s.tickets[id]
	if tk == nil {
		return fmt.Errorf("set spam %d: %w", id, errNoTicket)
	}
	t := tk.t.clone()
	t.Spam, t.Deleted = spam, deleted
	t.UpdatedAt = s.bumpUpdated(t.UpdatedAt, s.nowSec())
	s.store(t, s.nowSec())
	return nil
}

// AgentUpdate applies a human agent's edit with the same validation as the
// API (fields use the API's JSON names, e.g. "status", "priority",
// "group_id", "tags", "custom_fields"). It bumps updated_at and fires a
// status or priority webhook when configured.
func (s *Sim) AgentUpdate(id int64, fields map[string]any) error {
	raw, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("freshdesksim: agent update %d: %w", id, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("freshdesksim: agent update %d: %w", id, err)
	}
	_, errs, err := s.updateTicket(id, m, true)
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		ve := &ValidationError{}
		for _, e := range errs {
			ve.Errors = append(ve.Errors, FieldError(e))
		}
		return ve
	}
	return nil
}

func (s *Sim) labelsFor(g helpdeskgen.Ticket) Labels {
	l := Labels{Group: g.Group, Type: g.Type, Priority: g.Priority, Tags: slices.Clone(g.Tags), Language: g.Language}
	if gr := s.groupByName(g.Group); gr != nil {
		l.GroupID = gr.id
	}
	return l
}

// Generate seeds the generated helpdesk: its groups (each with three agents),
// History resolved or closed tickets with every label set, and New untriaged
// open tickets. With ArrivalRate > 0 more untriaged tickets keep arriving
// until Arrivals is reached or Close is called. Generate is deterministic for
// a seed, except for timestamps, which are relative to the simulated clock.
func (s *Sim) Generate(opt GenerateOptions) error {
	if opt.History < 0 || opt.New < 0 || opt.ArrivalRate < 0 || opt.Arrivals < 0 || opt.HistoryDays < 0 {
		return errors.New("freshdesksim: generate: negative option")
	}
	if opt.EmailShare < 0 || opt.EmailShare > 1 {
		return errors.New("freshdesksim: generate: email share must be in [0,1]")
	}
	if opt.HistoryDays == 0 {
		opt.HistoryDays = 90
	}
	s.mu.Lock()
	s.gen.SetEmailShare(opt.EmailShare)
	for _, g := range helpdeskgen.Groups() {
		s.ensureGroup(g.Name, g.Description)
	}
	now := s.nowSec()
	rng := rand.New(rand.NewPCG(uint64(s.cfg.Seed), 0x5eed))
	span := time.Duration(opt.HistoryDays) * 24 * time.Hour
	for i := range opt.History {
		g := s.gen.Next()
		// Oldest first, evenly spread with jitter, so ids follow created_at.
		created := now.Add(-span + time.Duration(float64(span)*(float64(i)+rng.Float64()*0.5)/float64(opt.History+1))).Truncate(time.Second)
		s.storeHistory(g, created, rng)
	}
	for i := range opt.New {
		g := s.gen.Next()
		created := now.Add(-time.Hour + time.Duration(i)*time.Hour/time.Duration(opt.New+1)).Truncate(time.Second)
		s.newTicketLocked(s.untriaged(g), created, time.Time{})
	}
	s.mu.Unlock()
	if opt.ArrivalRate > 0 {
		gen := helpdeskgen.NewWithOptions(s.cfg.Seed+1, helpdeskgen.Options{EmailShare: opt.EmailShare})
		n := 0
		s.startArrivals(opt.ArrivalRate, func() (NewTicket, bool) {
			if opt.Arrivals > 0 && n >= opt.Arrivals {
				return NewTicket{}, false
			}
			n++
			return s.untriagedUnlocked(gen.Next()), true
		})
	}
	return nil
}

// untriaged turns a generated ticket into an arriving one: default priority,
// no group, type or tags; the truth goes to Labels. Must hold s.mu.
func (s *Sim) untriaged(g helpdeskgen.Ticket) NewTicket {
	l := s.labelsFor(g)
	return NewTicket{
		Subject: g.Subject, Description: g.Description, Email: g.RequesterEmail, Name: g.RequesterName,
		Company: g.Company, Source: g.Source, Labels: &l,
	}
}

func (s *Sim) untriagedUnlocked(g helpdeskgen.Ticket) NewTicket {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.untriaged(g)
}

// storeHistory stores a resolved/closed ticket with labels set. Must hold s.mu.
func (s *Sim) storeHistory(g helpdeskgen.Ticket, created time.Time, rng *rand.Rand) {
	gr := s.groupByName(g.Group)
	resolved := created.Add(time.Duration(1+rng.IntN(96)) * time.Hour)
	// History is in the past: a resolution time after now would drag a
	// client's updated_since cursor into the future, past every new ticket.
	if now := s.now().Truncate(time.Second); resolved.After(now) {
		resolved = now
		if resolved.Before(created) {
			resolved = created
		}
	}
	status := 5
	if rng.IntN(10) < 3 {
		status = 4
	}
	t := Ticket{
		ID: s.nextTicket, Subject: g.Subject, Description: g.Description, DescriptionText: g.DescriptionText,
		Status: status, Priority: g.Priority, Source: g.Source, Type: g.Type,
		RequesterID: s.ensureContact(g.RequesterEmail, g.RequesterName, g.Company),
		Tags:        slices.Clone(g.Tags),
		CustomFields: map[string]any{
			"cf_language": g.Language, "cf_product_area": g.ProductArea,
			"cf_vip": slices.Contains(g.Tags, "vip"),
		},
		CreatedAt: created, UpdatedAt: resolved, DueBy: created.Add(72 * time.Hour), FrDueBy: created.Add(24 * time.Hour),
		FirstRespondedAt: created.Add(time.Duration(5+rng.IntN(240)) * time.Minute),
		ResolvedAt:       resolved, StatusUpdatedAt: resolved,
	}
	if status == 5 {
		t.ClosedAt = resolved
	}
	if gr != nil {
		t.GroupID = gr.id
		t.ResponderID = gr.agentIDs[rng.IntN(len(gr.agentIDs))]
	}
	t.CompanyID = s.contacts[t.RequesterID].company
	s.nextTicket++
	s.store(t, time.Time{})
	s.labels[t.ID] = s.labelsFor(g)
}

// startArrivals adds next() tickets at rate per real second until next
// reports false or the Sim is closed.
func (s *Sim) startArrivals(rate float64, next func() (NewTicket, bool)) {
	interval := time.Duration(float64(time.Second) / rate)
	if interval <= 0 {
		interval = time.Nanosecond
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-tick.C:
				nt, ok := next()
				if !ok {
					return
				}
				_, _ = s.AddTicket(nt) // custom fields come from the sim itself: cannot fail
			}
		}
	}()
}

// datasetRow is one line of a dataset JSONL file (shared/datasets/README.md).
type datasetRow struct {
	ID       string `json:"id"`
	Subject  string `json:"subject"`
	Body     string `json:"body"`
	Group    string `json:"group"`
	Priority any    `json:"priority"`
	Type     string `json:"type"`
	Language string `json:"language"`
}

func readRows(path string, limit int) ([]datasetRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("freshdesksim: dataset: %w", err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var rows []datasetRow
	line := 0
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r datasetRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("freshdesksim: dataset %s line %d: %w", path, line, err)
		}
		if r.Group == "" {
			return nil, fmt.Errorf("freshdesksim: dataset %s line %d: missing group", path, line)
		}
		rows = append(rows, r)
		if limit > 0 && len(rows) >= limit {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("freshdesksim: dataset %s: %w", path, err)
	}
	return rows, nil
}

// parsePriority accepts 1-4 as a number or string, or a priority name.
func parsePriority(v any) int {
	switch x := v.(type) {
	case float64:
		if x >= 1 && x <= 4 {
			return int(x)
		}
	case string:
		if n, err := strconv.Atoi(x); err == nil && n >= 1 && n <= 4 {
			return n
		}
		for _, p := range priorities {
			if strings.EqualFold(p.name, x) {
				return p.id
			}
		}
	}
	return 0
}

// LoadDataset loads dir/train.jsonl as resolved history with labels set and
// dir/test.jsonl as untriaged arriving tickets (all at once, or at opt.Rate
// per real second). Groups are created from the labels found. Rows keep their
// text unchanged: an empty subject stays empty. A type outside the account's
// ticket types is kept only as a true label.
func (s *Sim) LoadDataset(dir string, opt DatasetOptions) error {
	train, err := readRows(filepath.Join(dir, "train.jsonl"), opt.HistoryLimit)
	if err != nil {
		return err
	}
	test, err := readRows(filepath.Join(dir, "test.jsonl"), opt.NewLimit)
	if err != nil {
		return err
	}
	toLabels := func(r datasetRow) Labels {
		return Labels{Group: r.Group, Type: r.Type, Priority: parsePriority(r.Priority), Language: r.Language, Tags: []string{}}
	}
	s.mu.Lock()
	for _, rows := range [][]datasetRow{train, test} {
		for _, r := range rows {
			s.ensureGroup(r.Group, "")
		}
	}
	now := s.nowSec()
	rng := rand.New(rand.NewPCG(uint64(s.cfg.Seed), 0xda7a))
	span := 90 * 24 * time.Hour
	for i, r := range train {
		created := now.Add(-span + time.Duration(float64(span)*float64(i)/float64(len(train)+1))).Truncate(time.Second)
		l := toLabels(r)
		g := helpdeskgen.Ticket{
			Subject: r.Subject, Description: wrapText(r.Body), DescriptionText: r.Body,
			Group: r.Group, Priority: max(1, l.Priority), Tags: []string{}, Language: r.Language,
			RequesterEmail: "customer-" + r.ID + "@dataset.example", RequesterName: "Customer " + r.ID, Source: 1,
		}
		if slices.Contains(s.fields.types, r.Type) {
			g.Type = r.Type
		}
		s.storeHistory(g, created, rng)
		lbl := s.labels[s.nextTicket-1]
		lbl.Type = r.Type // keep the dataset's own type as the truth
		s.labels[s.nextTicket-1] = lbl
		tk := s.tickets[s.nextTicket-1]
		t := tk.t.clone()
		if !slices.Contains(helpdeskgen.Languages(), r.Language) {
			t.CustomFields["cf_language"] = nil
		}
		t.CustomFields["cf_product_area"] = nil
		s.store(t, time.Time{})
	}
	arriving := make([]NewTicket, len(test))
	for i, r := range test {
		l := toLabels(r)
		if g := s.groupByName(r.Group); g != nil {
			l.GroupID = g.id
		}
		arriving[i] = NewTicket{
			Subject: r.Subject, Description: r.Body,
			Email: "customer-t" + r.ID + "@dataset.example", Name: "Customer T" + r.ID, Labels: &l,
		}
	}
	if opt.Rate <= 0 {
		for i := range arriving {
			created := now.Add(-time.Duration(len(arriving)-i) * time.Second)
			s.newTicketLocked(arriving[i], created, time.Time{})
		}
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	i := 0
	s.startArrivals(opt.Rate, func() (NewTicket, bool) {
		if i >= len(arriving) {
			return NewTicket{}, false
		}
		i++
		return arriving[i-1], true
	})
	return nil
}
