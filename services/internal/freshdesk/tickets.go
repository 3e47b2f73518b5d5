package freshdesk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// Limits of the list endpoint.
const (
	// MaxPerPage is the largest per_page Freshdesk accepts.
	MaxPerPage = 100
	// MaxListPages is the deepest page GET /tickets serves; page 301 is a
	// 400 error. ListTicketsSince re-anchors instead of asking for it.
	MaxListPages = 300
	// listCostWithDescription is the credit cost of one list call with
	// include=description (1 + 2 per include).
	listCostWithDescription = 3
)

// ViewTicket fetches one ticket (GET /api/v2/tickets/{id}); the description
// is included by default. include may name "stats", "requester", "company"
// or "conversations" (1 extra credit each).
func (c *Client) ViewTicket(ctx context.Context, id int64, include ...string) (*Ticket, error) {
	r := request{method: "GET", path: "/api/v2/tickets/" + strconv.FormatInt(id, 10),
		endpoint: "tickets.view", idempotent: true, cost: 1 + len(include)}
	if len(include) > 0 {
		r.query = url.Values{"include": {strings.Join(include, ",")}}
	}
	return c.ticket(ctx, r)
}

// ticket sends r and decodes the one ticket it answers with.
func (c *Client) ticket(ctx context.Context, r request) (*Ticket, error) {
	res, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	defer res.release()
	var t Ticket
	if err := decode(r.method+" "+r.path, res, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// TicketUpdate is the body of PUT /tickets/{id}. Only non-nil fields are
// sent: Freshdesk rejects read-only keys, and sending unchanged fields would
// overwrite concurrent edits by agents. Tags, when non-nil, replace the
// ticket's whole tag set. A pointer to 0 for an id field sends null
// (unassign).
type TicketUpdate struct {
	Subject      *string
	Type         *string
	Status       *int
	Priority     *int
	GroupID      *int64
	ResponderID  *int64
	Tags         []string
	CustomFields map[string]any
}

// MarshalJSON emits only the fields that are set.
func (u TicketUpdate) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, 8)
	if u.Subject != nil {
		m["subject"] = *u.Subject
	}
	if u.Type != nil {
		m["type"] = *u.Type
	}
	if u.Status != nil {
		m["status"] = *u.Status
	}
	if u.Priority != nil {
		m["priority"] = *u.Priority
	}
	if u.GroupID != nil {
		m["group_id"] = nullableID(*u.GroupID)
	}
	if u.ResponderID != nil {
		m["responder_id"] = nullableID(*u.ResponderID)
	}
	if u.Tags != nil {
		m["tags"] = u.Tags
	}
	if len(u.CustomFields) > 0 {
		m["custom_fields"] = u.CustomFields
	}
	return json.Marshal(m)
}

// IsZero reports whether the update sends nothing.
func (u TicketUpdate) IsZero() bool {
	return u.Subject == nil && u.Type == nil && u.Status == nil && u.Priority == nil &&
		u.GroupID == nil && u.ResponderID == nil && u.Tags == nil && len(u.CustomFields) == 0
}

func nullableID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// UpdateTicket sends PUT /api/v2/tickets/{id} with exactly the set fields.
// PUT is idempotent, so it is retried on 5xx and broken connections.
func (c *Client) UpdateTicket(ctx context.Context, id int64, u TicketUpdate) (*Ticket, error) {
	if u.IsZero() {
		return nil, errors.New("freshdesk: update ticket: empty update")
	}
	r := request{method: "PUT", path: "/api/v2/tickets/" + strconv.FormatInt(id, 10), body: u,
		endpoint: "tickets.update", idempotent: true, cost: 1}
	return c.ticket(ctx, r)
}

// NewNote is the body of POST /tickets/{id}/notes. Private defaults to true
// on the server; this type makes the default explicit by sending
// "private": !Public.
type NewNote struct {
	Body         string
	Public       bool
	NotifyEmails []string
}

// AddNote posts a note (POST /api/v2/tickets/{id}/notes), private unless
// n.Public.
//
// POST is not idempotent: a note posted twice shows twice. The client
// retries it only when the server cannot have processed it (429, failed
// dial). A reset connection, timeout or 5xx after the request was sent
// returns an error matching ticketsystem.ErrOutcomeUnknown (and
// ErrTransient); the caller must list Conversations to learn whether the
// note exists before posting again.
func (c *Client) AddNote(ctx context.Context, ticketID int64, n NewNote) (*Conversation, error) {
	if strings.TrimSpace(n.Body) == "" {
		return nil, errors.New("freshdesk: add note: empty body")
	}
	body := map[string]any{"body": n.Body, "private": !n.Public}
	if len(n.NotifyEmails) > 0 {
		body["notify_emails"] = n.NotifyEmails
	}
	r := request{method: "POST", path: "/api/v2/tickets/" + strconv.FormatInt(ticketID, 10) + "/notes",
		body: body, endpoint: "tickets.notes", cost: 1}
	res, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	defer res.release()
	var conv Conversation
	if err := decode(r.method+" "+r.path, res, &conv); err != nil {
		return nil, err
	}
	return &conv, nil
}

// Conversations lists a ticket's notes and replies, following pagination.
func (c *Client) Conversations(ctx context.Context, ticketID int64) ([]Conversation, error) {
	var out []Conversation
	err := listAll(ctx, c, "/api/v2/tickets/"+strconv.FormatInt(ticketID, 10)+"/conversations",
		"tickets.conversations", func(page []Conversation) error {
			out = append(out, page...)
			return nil
		})
	return out, err
}

// Groups lists all groups (admin only), following pagination.
func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	var out []Group
	err := listAll(ctx, c, "/api/v2/groups", "groups.list", func(page []Group) error {
		out = append(out, page...)
		return nil
	})
	return out, err
}

// Me returns the agent who owns the API key (GET /api/v2/agents/me).
func (c *Client) Me(ctx context.Context) (*Agent, error) {
	r := request{method: "GET", path: "/api/v2/agents/me", endpoint: "agents.me", idempotent: true, cost: 1}
	res, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	defer res.release()
	var a Agent
	if err := decode(r.method+" "+r.path, res, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// TicketFields lists the ticket fields with their choices.
func (c *Client) TicketFields(ctx context.Context) ([]TicketField, error) {
	r := request{method: "GET", path: "/api/v2/ticket_fields", endpoint: "ticket_fields.list", idempotent: true, cost: 1}
	res, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	defer res.release()
	var fs []TicketField
	if err := decode(r.method+" "+r.path, res, &fs); err != nil {
		return nil, err
	}
	return fs, nil
}

// maxPaginatedPages bounds link-following on endpoints other than ticket
// listing, so a server that always announces a next page cannot loop us.
const maxPaginatedPages = 500

// listAll pages through a list endpoint with per_page=100, following link
// rel="next".
func listAll[T any](ctx context.Context, c *Client, path, endpoint string, fn func([]T) error) error {
	r := request{method: "GET", path: path, query: url.Values{"per_page": {strconv.Itoa(MaxPerPage)}},
		endpoint: endpoint, idempotent: true, cost: 1}
	for page := 1; ; page++ {
		res, err := c.do(ctx, r)
		if err != nil {
			return err
		}
		var items []T
		err = decode(r.method+" "+path, res, &items)
		res.release()
		if err != nil {
			return err
		}
		if err := fn(items); err != nil {
			return err
		}
		next, err := c.nextLink(res)
		if err != nil || next == "" {
			return err
		}
		if page >= maxPaginatedPages {
			return fmt.Errorf("GET %s: more than %d pages", path, maxPaginatedPages)
		}
		r.rawURL = next
	}
}

// nextLink returns the validated rel="next" URL of a response, or "".
// A next link to another origin is an error: following it would send the
// API key there.
func (c *Client) nextLink(res *response) (string, error) {
	raw := ""
	for _, h := range res.header.Values("Link") {
		if u, ok := parseLinkNext(h); ok {
			raw = u
			break
		}
	}
	if raw == "" {
		return "", nil
	}
	u, err := c.base.Parse(raw)
	if err != nil {
		return "", &ticketsystem.Error{Kind: ticketsystem.ErrInvalidResponse, Message: "invalid link header", Err: err}
	}
	if u.Scheme != c.base.Scheme || u.Host != c.base.Host || !strings.HasPrefix(u.Path, c.base.Path+"/") {
		return "", &ticketsystem.Error{Kind: ticketsystem.ErrInvalidResponse,
			Message: fmt.Sprintf("link header points outside %s", c.base)}
	}
	return u.String(), nil
}

// parseLinkNext extracts the target of rel="next" from an RFC 8288 Link
// header value: `<url>; rel="next", <url2>; rel="prev"`. Commas inside <>
// and inside quoted parameters are not separators.
func parseLinkNext(h string) (string, bool) {
	for len(h) > 0 {
		h = strings.TrimLeft(h, " \t,")
		if !strings.HasPrefix(h, "<") {
			return "", false
		}
		end := strings.IndexByte(h, '>')
		if end < 0 {
			return "", false
		}
		target := h[1:end]
		h = h[end+1:]
		// Parameters run to the next comma outside quotes.
		isNext := false
		for {
			h = strings.TrimLeft(h, " \t")
			if !strings.HasPrefix(h, ";") {
				break
			}
			h = strings.TrimLeft(h[1:], " \t")
			eq := strings.IndexAny(h, "=;,")
			var name, val string
			if eq < 0 || h[eq] != '=' {
				if eq < 0 {
					eq = len(h)
				}
				name, h = h[:eq], h[eq:]
			} else {
				name, h = h[:eq], strings.TrimLeft(h[eq+1:], " \t")
				if strings.HasPrefix(h, `"`) {
					i := 1
					for i < len(h) && h[i] != '"' {
						if h[i] == '\\' {
							i++
						}
						i++
					}
					val = strings.ReplaceAll(h[1:min(i, len(h))], `\`, "")
					h = h[min(i+1, len(h)):]
				} else {
					j := strings.IndexAny(h, ";,")
					if j < 0 {
						j = len(h)
					}
					val, h = strings.TrimSpace(h[:j]), h[j:]
				}
			}
			if strings.EqualFold(strings.TrimSpace(name), "rel") {
				if slices.ContainsFunc(strings.Fields(val), func(s string) bool { return strings.EqualFold(s, "next") }) {
					isNext = true
				}
			}
		}
		if isNext {
			return target, true
		}
		if i := strings.IndexByte(h, ','); i >= 0 {
			h = h[i+1:]
		} else {
			return "", false
		}
	}
	return "", false
}

// ListOptions selects one page of GET /api/v2/tickets.
type ListOptions struct {
	UpdatedSince time.Time // zero: Freshdesk's default (created in the last 30 days)
	OrderBy      string    // created_at (default), due_by, updated_at, status
	OrderType    string    // asc or desc (default)
	PerPage      int       // 1..100; 0 means 100
	Page         int       // 1..300; 0 means 1
	Include      []string  // e.g. "description": +2 credits each
	Filter       string    // new_and_my_open, watching, spam, deleted
	RequesterID  int64
}

// TicketPage is one page of a ticket list.
type TicketPage struct {
	Tickets []Ticket
	// Next is the validated URL of the next page, "" on the last page.
	Next string
}

// ListTickets fetches one page of GET /api/v2/tickets.
func (c *Client) ListTickets(ctx context.Context, o ListOptions) (*TicketPage, error) {
	q := url.Values{}
	if !o.UpdatedSince.IsZero() {
		q.Set("updated_since", o.UpdatedSince.UTC().Format(time.RFC3339))
	}
	if o.OrderBy != "" {
		q.Set("order_by", o.OrderBy)
	}
	if o.OrderType != "" {
		q.Set("order_type", o.OrderType)
	}
	perPage := o.PerPage
	if perPage <= 0 {
		perPage = MaxPerPage
	}
	if perPage > MaxPerPage {
		return nil, fmt.Errorf("freshdesk: per_page %d exceeds %d", perPage, MaxPerPage)
	}
	q.Set("per_page", strconv.Itoa(perPage))
	if o.Page > MaxListPages {
		return nil, fmt.Errorf("freshdesk: page %d beyond the %d-page cap", o.Page, MaxListPages)
	}
	if o.Page > 1 {
		q.Set("page", strconv.Itoa(o.Page))
	}
	if len(o.Include) > 0 {
		q.Set("include", strings.Join(o.Include, ","))
	}
	if o.Filter != "" {
		q.Set("filter", o.Filter)
	}
	if o.RequesterID != 0 {
		q.Set("requester_id", strconv.FormatInt(o.RequesterID, 10))
	}
	return c.listPage(ctx, request{method: "GET", path: "/api/v2/tickets", query: q,
		endpoint: "tickets.list", idempotent: true, cost: 1 + 2*len(o.Include)})
}

func (c *Client) listPage(ctx context.Context, r request) (*TicketPage, error) {
	res, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	defer res.release()
	var p TicketPage
	if err := decode(r.method+" "+r.path, res, &p.Tickets); err != nil {
		return nil, err
	}
	if p.Next, err = c.nextLink(res); err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	return &p, nil
}

// ListTicketsSince streams every ticket updated at or after since, oldest
// update first, with descriptions (include=description, 3 credits a page),
// one page per fn call.
//
// It pages by key, not by offset: after each page it asks again with
// updated_since set to the last updated_at seen. Offset pages (the link
// header) shift under a listing that changes while it is read — a ticket
// updated meanwhile (by autotriage's own writer, say) leaves its place, and
// the ticket after it slides onto a page already read and is never seen. A
// key-paged read cannot skip one: a ticket that moves reappears later with
// its new version. The link header is followed only while a whole page
// shares one updated_at second, up to the 300-page cap. Tickets delivered
// with the anchor's updated_at are not delivered again, so a ticket version
// is delivered once; pages left empty by that are skipped.
func (c *Client) ListTicketsSince(ctx context.Context, since time.Time, fn func([]Ticket) error) error {
	return c.listSince(ctx, since, MaxListPages, fn)
}

// listSince is ListTicketsSince with a configurable page cap (tests).
func (c *Client) listSince(ctx context.Context, since time.Time, pageCap int, fn func([]Ticket) error) error {
	anchor := since.UTC().Truncate(time.Second)
	// seenAtLast holds the ids delivered with updated_at == last; only those
	// can come back after a re-anchor on last.
	var last time.Time
	seenAtLast := map[int64]struct{}{}
	// verify re-reads the tickets stamped in second sec from its first page
	// and delivers those not delivered yet: offset pages within one second
	// shift when some of its tickets change during the read, and the ones
	// that slide back onto a page already read would be missed.
	verify := func(sec time.Time) error {
		page, err := c.ListTickets(ctx, ListOptions{UpdatedSince: sec, OrderBy: "updated_at",
			OrderType: "asc", Include: []string{"description"}})
		for n := 1; ; n++ {
			if err != nil {
				return err
			}
			var kept []Ticket
			beyond := false
			for _, t := range page.Tickets {
				u := t.UpdatedAt.UTC()
				if u.After(sec) {
					beyond = true
					break
				}
				if _, dup := seenAtLast[t.ID]; u.Equal(sec) && !dup {
					seenAtLast[t.ID] = struct{}{}
					kept = append(kept, t)
				}
			}
			if len(kept) > 0 {
				if err := fn(kept); err != nil {
					return err
				}
			}
			if beyond || page.Next == "" || n >= pageCap {
				return nil
			}
			page, err = c.listPage(ctx, request{method: "GET", path: "/api/v2/tickets", rawURL: page.Next,
				endpoint: "tickets.list", idempotent: true, cost: listCostWithDescription})
		}
	}
	for {
		// The tickets already delivered at the anchor second come first on
		// the re-anchored listing; start on the page where the unseen ones
		// begin, so a burst stamped in one second is not read twice.
		first := 1 + len(seenAtLast)/MaxPerPage
		if !last.Equal(anchor) {
			first = 1
		}
		// offset is set while pages within the anchor second are read by
		// offset; that second is verified before the read moves past it.
		offset := first > 1
		page, err := c.ListTickets(ctx, ListOptions{UpdatedSince: anchor, OrderBy: "updated_at",
			OrderType: "asc", Include: []string{"description"}, Page: first})
		if err != nil {
			return err
		}
		for n := first; ; n++ {
			if offset && (page.Next == "" || crosses(page.Tickets, anchor)) {
				if err := verify(anchor); err != nil {
					return err
				}
				offset = false
			}
			kept := page.Tickets[:0:0]
			for _, t := range page.Tickets {
				u := t.UpdatedAt.UTC()
				if u.Equal(last) {
					if _, dup := seenAtLast[t.ID]; dup {
						continue
					}
				} else if u.After(last) {
					last = u
					clear(seenAtLast)
				}
				seenAtLast[t.ID] = struct{}{}
				kept = append(kept, t)
			}
			if len(kept) > 0 {
				if err := fn(kept); err != nil {
					return err
				}
			}
			if page.Next == "" {
				return nil
			}
			if n >= pageCap || last.After(anchor) {
				break // re-anchor on last: the next page by key
			}
			offset = true
			page, err = c.listPage(ctx, request{method: "GET", path: "/api/v2/tickets", rawURL: page.Next,
				endpoint: "tickets.list", idempotent: true, cost: listCostWithDescription})
			if err != nil {
				return err
			}
		}
		if !last.After(anchor) {
			return fmt.Errorf("freshdesk: more than %d pages of tickets share updated_at %s; cannot re-anchor",
				pageCap, anchor.Format(time.RFC3339))
		}
		anchor = last
	}
}

// crosses reports whether a page holds a ticket stamped after sec.
func crosses(page []Ticket, sec time.Time) bool {
	for _, t := range page {
		if t.UpdatedAt.UTC().After(sec) {
			return true
		}
	}
	return false
}
