package freshdesk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// Adapter implements ticketsystem.Adapter on a Client.
type Adapter struct {
	c *Client
}

var _ ticketsystem.Adapter = (*Adapter)(nil)

// NewAdapter returns the ticketsystem.Adapter for c.
func NewAdapter(c *Client) *Adapter { return &Adapter{c: c} }

// Client returns the underlying client (for Freshdesk-specific calls).
func (a *Adapter) Client() *Client { return a.c }

// GetTicket implements ticketsystem.TicketGetter.
func (a *Adapter) GetTicket(ctx context.Context, id int64) (*ticketsystem.Ticket, error) {
	t, err := a.c.ViewTicket(ctx, id)
	if err != nil {
		return nil, err
	}
	n := ToNeutral(t)
	return &n, nil
}

// errLimitReached stops paging once a query's Limit is met.
var errLimitReached = errors.New("limit reached")

// FindTickets implements ticketsystem.TicketFinder. Queries constraining
// status, priority, group, type or tags go to the search API (index lag of
// minutes, at most 300 hits); others page through the ticket list, which
// without UpdatedSince only covers tickets created in the last 30 days.
// Every result is checked against the whole query, so both paths return
// exactly the matching tickets they saw.
func (a *Adapter) FindTickets(ctx context.Context, q ticketsystem.Query) ([]ticketsystem.Ticket, error) {
	var out []ticketsystem.Ticket
	collect := func(page []Ticket, unreadable string) error {
		for i := range page {
			n := ToNeutral(&page[i])
			n.Unreadable = unreadable
			if !Matches(q, &n) {
				continue
			}
			out = append(out, n)
			if q.Limit > 0 && len(out) >= q.Limit {
				return errLimitReached
			}
		}
		return nil
	}
	var err error
	if e, ok := searchExpr(q); ok {
		err = a.c.SearchAll(ctx, e, func(page []Ticket) error { return collect(page, "") })
	} else if !q.UpdatedSince.IsZero() {
		err = a.c.ChangesSince(ctx, q.UpdatedSince, func(p FeedPage) error { return collect(p.Tickets, p.Unreadable) })
	} else {
		err = a.listRecent(ctx, q, func(page []Ticket) error { return collect(page, "") })
	}
	if err != nil && !errors.Is(err, errLimitReached) {
		return nil, fmt.Errorf("freshdesk: find tickets: %w", err)
	}
	return out, nil
}

// listRecent pages through the default list (recently created tickets).
func (a *Adapter) listRecent(ctx context.Context, q ticketsystem.Query, fn func([]Ticket) error) error {
	page, err := a.c.ListTickets(ctx, ListOptions{RequesterID: q.RequesterID, OrderBy: "updated_at",
		OrderType: "asc", Include: []string{"description"}})
	for n := 1; ; n++ {
		if err != nil {
			return err
		}
		if err := fn(page.Tickets); err != nil {
			return err
		}
		if page.Next == "" || n >= MaxListPages {
			return nil
		}
		page, err = a.c.listPage(ctx, request{method: "GET", path: "/api/v2/tickets", rawURL: page.Next,
			endpoint: "tickets.list", idempotent: true, cost: listCostWithDescription})
	}
}

// searchExpr translates the indexable part of q; ok is false when q has no
// constraint that needs search.
func searchExpr(q ticketsystem.Query) (Expr, bool) {
	var parts []Expr
	anyOf := func(field string, n int, val func(i int) any) {
		if n == 0 {
			return
		}
		es := make([]Expr, n)
		for i := range n {
			es[i] = Eq(field, val(i))
		}
		parts = append(parts, Or(es...))
	}
	anyOf("status", len(q.Status), func(i int) any { return q.Status[i] })
	anyOf("priority", len(q.Priority), func(i int) any { return q.Priority[i] })
	anyOf("group_id", len(q.GroupID), func(i int) any {
		if q.GroupID[i] == 0 {
			return nil
		}
		return q.GroupID[i]
	})
	anyOf("type", len(q.Type), func(i int) any {
		if q.Type[i] == "" {
			return nil
		}
		return q.Type[i]
	})
	anyOf("tag", len(q.Tags), func(i int) any { return q.Tags[i] })
	if len(parts) == 0 {
		return Expr{}, false
	}
	if !q.UpdatedSince.IsZero() {
		// Search compares dates only; Matches refines to the instant.
		parts = append(parts, Gte("updated_at", q.UpdatedSince))
	}
	return And(parts...), true
}

// Matches reports whether t satisfies every constraint of q.
func Matches(q ticketsystem.Query, t *ticketsystem.Ticket) bool {
	if len(q.Status) > 0 && !slices.Contains(q.Status, t.Status) {
		return false
	}
	if len(q.Priority) > 0 && !slices.Contains(q.Priority, t.Priority) {
		return false
	}
	if len(q.GroupID) > 0 && !slices.Contains(q.GroupID, t.GroupID) {
		return false
	}
	if len(q.Type) > 0 && !slices.Contains(q.Type, t.Type) {
		return false
	}
	if len(q.Tags) > 0 && !slices.ContainsFunc(q.Tags, t.HasTag) {
		return false
	}
	if q.RequesterID != 0 && q.RequesterID != t.RequesterID {
		return false
	}
	if !q.UpdatedSince.IsZero() && t.UpdatedAt.Before(q.UpdatedSince) {
		return false
	}
	return true
}

// FindFirstTicket implements ticketsystem.TicketFinder: (nil, ErrNotFound)
// when nothing matches.
func (a *Adapter) FindFirstTicket(ctx context.Context, q ticketsystem.Query) (*ticketsystem.Ticket, error) {
	q.Limit = 1
	ts, err := a.FindTickets(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, &ticketsystem.Error{Kind: ticketsystem.ErrNotFound, Op: "freshdesk: find first ticket",
			Message: "no ticket matches the query"}
	}
	return &ts[0], nil
}

// UpdateTicket implements ticketsystem.TicketUpdater. Freshdesk's tags field
// replaces the whole set, so AddTags reads the ticket first and sends the
// union; when it has read the ticket it also drops fields that already hold
// the requested value. An update that changes nothing sends no PUT.
func (a *Adapter) UpdateTicket(ctx context.Context, id int64, u ticketsystem.Update) (*ticketsystem.Ticket, error) {
	var cur *Ticket
	if u.SetTags == nil && len(u.AddTags) > 0 {
		var err error
		if cur, err = a.c.ViewTicket(ctx, id); err != nil {
			return nil, fmt.Errorf("freshdesk: update ticket %d: reading current tags: %w", id, err)
		}
	}
	tu := TicketUpdate{Subject: u.Subject, Type: u.Type, Status: u.Status, Priority: u.Priority,
		GroupID: u.GroupID, ResponderID: u.ResponderID, CustomFields: u.CustomFields}
	switch {
	case u.SetTags != nil:
		tu.Tags = uniqueTags(nil, u.SetTags)
	case cur != nil:
		if merged := uniqueTags(cur.Tags, u.AddTags); len(merged) != len(uniqueTags(nil, cur.Tags)) {
			tu.Tags = merged
		}
	}
	if cur != nil {
		dropUnchanged(&tu, cur)
	}
	if tu.IsZero() {
		if cur == nil {
			return a.GetTicket(ctx, id)
		}
		n := ToNeutral(cur)
		return &n, nil
	}
	t, err := a.c.UpdateTicket(ctx, id, tu)
	if err != nil {
		return nil, err
	}
	n := ToNeutral(t)
	return &n, nil
}

// uniqueTags returns base followed by the tags of add not yet present,
// without duplicates, never nil.
func uniqueTags(base, add []string) []string {
	out := make([]string, 0, len(base)+len(add))
	for _, list := range [][]string{base, add} {
		for _, t := range list {
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

func dropUnchanged(tu *TicketUpdate, cur *Ticket) {
	if tu.Subject != nil && *tu.Subject == cur.Subject {
		tu.Subject = nil
	}
	if tu.Type != nil && cur.Type != nil && *tu.Type == *cur.Type {
		tu.Type = nil
	}
	if tu.Status != nil && *tu.Status == cur.Status {
		tu.Status = nil
	}
	if tu.Priority != nil && *tu.Priority == cur.Priority {
		tu.Priority = nil
	}
	if tu.GroupID != nil && *tu.GroupID == deref(cur.GroupID) {
		tu.GroupID = nil
	}
	if tu.ResponderID != nil && *tu.ResponderID == deref(cur.ResponderID) {
		tu.ResponderID = nil
	}
	if len(tu.CustomFields) > 0 {
		changed := make(map[string]any, len(tu.CustomFields))
		for k, v := range tu.CustomFields {
			if old, ok := cur.CustomFields[k]; !ok || !sameScalar(old, v) {
				changed[k] = v
			}
		}
		tu.CustomFields = changed
	}
}

// sameScalar compares a decoded custom-field value with a caller's value,
// treating integer types alike.
func sameScalar(a, b any) bool {
	ai, aok := asInt64(a)
	bi, bok := asInt64(b)
	if aok || bok {
		return aok && bok && ai == bi
	}
	switch x := a.(type) {
	case string, bool, float64, nil:
		return x == b
	}
	return false
}

func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// AddNote implements ticketsystem.NoteAdder; see Client.AddNote for the
// outcome-unknown contract.
func (a *Adapter) AddNote(ctx context.Context, id int64, n ticketsystem.Note) (*ticketsystem.Conversation, error) {
	c, err := a.c.AddNote(ctx, id, NewNote{Body: n.BodyHTML, Public: n.Public})
	if err != nil {
		return nil, err
	}
	conv := convToNeutral(c)
	// The create response carries no source; a created note is a note.
	conv.IsNote = true
	return &conv, nil
}

// Conversations implements ticketsystem.ConversationLister.
func (a *Adapter) Conversations(ctx context.Context, id int64) ([]ticketsystem.Conversation, error) {
	cs, err := a.c.Conversations(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make([]ticketsystem.Conversation, len(cs))
	for i := range cs {
		out[i] = convToNeutral(&cs[i])
	}
	return out, nil
}

// ChangedSince implements ticketsystem.ChangeFeed with ChangesSince: pages
// too large for the response limit are read in smaller pages, and a version
// too large even alone comes with Ticket.Unreadable set.
func (a *Adapter) ChangedSince(ctx context.Context, since time.Time, fn func([]ticketsystem.Ticket) error) error {
	return a.c.ChangesSince(ctx, since, func(p FeedPage) error {
		out := make([]ticketsystem.Ticket, len(p.Tickets))
		for i := range p.Tickets {
			out[i] = ToNeutral(&p.Tickets[i])
			out[i].Unreadable = p.Unreadable
		}
		return fn(out)
	})
}

// Catalog implements ticketsystem.CatalogReader from /ticket_fields and, when
// the key's role allows it (admin), /groups. Without that privilege the
// groups come from the default_group field's choices.
func (a *Adapter) Catalog(ctx context.Context) (*ticketsystem.Catalog, error) {
	fields, err := a.c.TicketFields(ctx)
	if err != nil {
		return nil, fmt.Errorf("freshdesk: catalog: %w", err)
	}
	cat, err := CatalogFromFields(fields)
	if err != nil {
		return nil, fmt.Errorf("freshdesk: catalog: %w", err)
	}
	groups, err := a.c.Groups(ctx)
	switch {
	case err == nil:
		cat.Groups = cat.Groups[:0]
		for _, g := range groups {
			cat.Groups = append(cat.Groups, ticketsystem.Choice{ID: g.ID, Name: g.Name})
		}
	case errors.Is(err, ticketsystem.ErrPermission):
		// Keep the groups from default_group.
	default:
		return nil, fmt.Errorf("freshdesk: catalog: %w", err)
	}
	return cat, nil
}

// CatalogFromFields builds a catalog from GET /ticket_fields.
func CatalogFromFields(fields []TicketField) (*ticketsystem.Catalog, error) {
	cat := &ticketsystem.Catalog{}
	for i := range fields {
		f := &fields[i]
		cs, err := f.DecodeChoices()
		if err != nil {
			return nil, err
		}
		switch f.Type {
		case "default_ticket_type":
			for _, c := range cs {
				cat.Types = append(cat.Types, c.Value)
			}
		case "default_priority":
			cat.Priorities = appendChoices(cat.Priorities, cs)
		case "default_source":
			cat.Sources = appendChoices(cat.Sources, cs)
		case "default_group":
			cat.Groups = appendChoices(cat.Groups, cs)
		case "default_status":
			for _, c := range cs {
				s := ticketsystem.Status{ID: c.ID, AgentLabel: c.Value}
				if len(c.Labels) > 1 {
					s.CustomerLabel = c.Labels[1]
				}
				cat.Statuses = append(cat.Statuses, s)
			}
		default:
			if f.Default {
				continue
			}
			cf := ticketsystem.CustomField{Name: f.Name, Label: f.Label, Type: f.Type}
			for _, c := range cs {
				cf.Choices = append(cf.Choices, c.Value)
			}
			cat.CustomFields = append(cat.CustomFields, cf)
		}
	}
	return cat, nil
}

func appendChoices(dst []ticketsystem.Choice, cs []Choice) []ticketsystem.Choice {
	for _, c := range cs {
		dst = append(dst, ticketsystem.Choice{ID: c.ID, Name: c.Value})
	}
	return dst
}

// ToNeutral converts a Freshdesk ticket to the system-neutral form.
func ToNeutral(t *Ticket) ticketsystem.Ticket {
	n := ticketsystem.Ticket{
		ID: t.ID, Subject: t.Subject, Description: t.DescriptionText, DescriptionHTML: t.Description,
		Tags: t.Tags, Type: deref(t.Type), GroupID: deref(t.GroupID), ResponderID: deref(t.ResponderID),
		RequesterID: deref(t.RequesterID), Priority: t.Priority, Status: t.Status, Source: t.Source,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, Spam: t.Spam, Deleted: t.Deleted,
	}
	if n.Tags == nil {
		n.Tags = []string{}
	}
	if len(t.CustomFields) > 0 {
		n.CustomFields = make(map[string]any, len(t.CustomFields))
		for k, v := range t.CustomFields {
			n.CustomFields[k] = v
		}
	}
	return n
}

func convToNeutral(c *Conversation) ticketsystem.Conversation {
	return ticketsystem.Conversation{ID: c.ID, TicketID: c.TicketID, BodyHTML: c.Body, BodyText: c.BodyText,
		Private: c.Private, Incoming: c.Incoming, IsNote: c.Source == SourceNote, UserID: c.UserID,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}
