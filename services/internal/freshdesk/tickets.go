package freshdesk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// FeedPage is one delivery of ChangesSince.
type FeedPage struct {
	Tickets []Ticket
	// Unreadable is set when Tickets holds one ticket version whose
	// response exceeded the client's size limit even alone (a list page of
	// one, and the ticket viewed by id): the version is then as listed
	// without include=description (Description and DescriptionText empty)
	// and Unreadable says why. The feed goes on past it; the caller decides
	// what becomes of it (the fetcher dead-letters it).
	Unreadable string
}

// ListTicketsSince streams every ticket updated at or after since, oldest
// update first, with descriptions (include=description, 3 credits a page),
// one page per fn call. It is ChangesSince without the Unreadable mark: a
// version too large to read even alone is delivered without its
// description.
func (c *Client) ListTicketsSince(ctx context.Context, since time.Time, fn func([]Ticket) error) error {
	return c.listSince(ctx, since, MaxListPages, func(p FeedPage) error { return fn(p.Tickets) })
}

// ChangesSince streams every ticket updated at or after since, oldest
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
//
// Pages are 100 tickets. A page whose response exceeds the size limit
// (Config.MaxResponseBytes) is read again from the same position with the
// same updated_since and order in pages half as large, down to one ticket,
// so no ticket is skipped; after each re-anchor the page size doubles back
// towards 100. A version too large even alone is identified by listing
// its position without descriptions and confirmed by viewing it by id; it
// is delivered as FeedPage.Unreadable.
func (c *Client) ChangesSince(ctx context.Context, since time.Time, fn func(FeedPage) error) error {
	return c.listSince(ctx, since, MaxListPages, fn)
}

// listSince is ChangesSince with a configurable page cap (tests).
func (c *Client) listSince(ctx context.Context, since time.Time, pageCap int, fn func(FeedPage) error) error {
	anchor := since.UTC().Truncate(time.Second)
	// seenAtLast holds the ids delivered with updated_at == last; only those
	// can come back after a re-anchor on last.
	var last time.Time
	seenAtLast := map[int64]struct{}{}
	// per is the page size of the next read: MaxPerPage unless a page was
	// too large.
	per := MaxPerPage
	// verify re-reads the tickets stamped in second sec from its first page
	// and delivers those not delivered yet: offset pages within one second
	// shift when some of its tickets change during the read, and the ones
	// that slide back onto a page already read would be missed.
	verify := func(sec time.Time) error {
		vper := per
		at := listPos{page: 1}
		for {
			r, err := c.readAt(ctx, sec, at, &vper)
			if err != nil {
				return err
			}
			var kept []Ticket
			beyond := false
			for _, t := range r.tickets {
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
				if err := fn(FeedPage{Tickets: kept, Unreadable: r.unreadable}); err != nil {
					return err
				}
			}
			if beyond || !r.more || r.page >= pageCap {
				return nil
			}
			at = r.following
		}
	}
	for {
		// The tickets already delivered at the anchor second come first on
		// the re-anchored listing; start on the page where the unseen ones
		// begin, so a burst stamped in one second is not read twice.
		at := listPos{page: 1}
		if last.Equal(anchor) {
			at.pos = len(seenAtLast) / per * per
			at.page = 1 + at.pos/per
		}
		// offset is set while pages within the anchor second are read by
		// offset; that second is verified before the read moves past it.
		offset := at.page > 1
		for {
			r, err := c.readAt(ctx, anchor, at, &per)
			if err != nil {
				return err
			}
			if offset && (!r.more || crosses(r.tickets, anchor)) {
				if err := verify(anchor); err != nil {
					return err
				}
				offset = false
			}
			kept := r.tickets[:0:0]
			for _, t := range r.tickets {
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
				if err := fn(FeedPage{Tickets: kept, Unreadable: r.unreadable}); err != nil {
					return err
				}
			}
			if !r.more {
				return nil
			}
			if r.page >= pageCap || last.After(anchor) {
				break // re-anchor on last: the next page by key
			}
			offset = true
			at = r.following
		}
		if !last.After(anchor) {
			return fmt.Errorf("freshdesk: more than %d pages of tickets share updated_at %s; cannot re-anchor",
				pageCap, anchor.Format(time.RFC3339))
		}
		anchor = last
		per = min(MaxPerPage, per*2)
	}
}

// listPos is where the next page of one anchor's listing starts.
type listPos struct {
	pos  int    // listing positions before it: tickets already read from the anchor
	page int    // its page number at the current page size
	link string // the server's link to it, when the page before gave one at the same page size
}

// feedRead is one page read by readAt.
type feedRead struct {
	tickets    []Ticket // from the position asked for on
	page       int      // page number read
	more       bool     // the listing goes on after them
	following  listPos  // where the next page starts
	unreadable string   // see FeedPage.Unreadable
}

// maxAloneAttempts bounds how often readAt tries again to identify an
// oversized version whose position changed meanwhile.
const maxAloneAttempts = 3

// readAt reads the page of the listing from anchor (updated_at ascending,
// with descriptions) that starts at position at, in pages of *per tickets.
// A response over the size limit is read again from the same position with
// *per halved (the caller keeps the smaller size); at one ticket a page, the
// version is handed to readAlone.
func (c *Client) readAt(ctx context.Context, anchor time.Time, at listPos, per *int) (feedRead, error) {
	for attempt := 1; ; {
		if c.tooLarge.mayHold(anchor) {
			r, done, err := c.readAround(ctx, anchor, at, per)
			if err != nil || done {
				return r, err
			}
			if r.page != 0 {
				at.link = "" // the page size changed
			}
		}
		var page *TicketPage
		var err error
		skip := 0
		if at.link != "" {
			page, err = c.listPage(ctx, request{method: "GET", path: "/api/v2/tickets", rawURL: at.link,
				endpoint: "tickets.list", idempotent: true, cost: listCostWithDescription})
		} else {
			// After a shrink the position may fall inside a page: the
			// tickets before it on that page were read already.
			skip = at.pos % *per
			at.page = at.pos / *per + 1
			page, err = c.ListTickets(ctx, ListOptions{UpdatedSince: anchor, OrderBy: "updated_at",
				OrderType: "asc", Include: []string{"description"}, PerPage: *per, Page: at.page})
		}
		if err == nil {
			end := max(at.pos, at.pos-skip+len(page.Tickets))
			return feedRead{
				tickets:   page.Tickets[min(skip, len(page.Tickets)):],
				page:      at.page,
				more:      page.Next != "",
				following: listPos{pos: end, page: at.page + 1, link: page.Next},
			}, nil
		}
		if !errors.Is(err, ErrResponseTooLarge) {
			return feedRead{}, err
		}
		at.link = ""
		if *per > 1 {
			*per = max(1, *per/2)
			c.log.LogAttrs(ctx, slog.LevelDebug, "freshdesk: list page too large; reading it in smaller pages",
				slog.Time("updated_since", anchor), slog.Int("position", at.pos), slog.Int("per_page", *per))
			continue
		}
		r, again, err := c.readAlone(ctx, anchor, at.pos)
		if err != nil || !again {
			return r, err
		}
		if attempt++; attempt > maxAloneAttempts {
			return feedRead{}, fmt.Errorf("freshdesk: the oversized ticket at position %d after %s kept changing place: %w",
				at.pos, anchor.Format(time.RFC3339), ErrResponseTooLarge)
		}
	}
}

// readAround keeps versions already found unreadable (c.tooLarge) out of
// with-description reads: it lists the page at position at without
// descriptions (1 credit, small) and, when a known unreadable version is
// first there, delivers it as such (done); when one comes later, it lowers
// *per so that the next read ends before it (r.page is then set). Without
// this, every re-read of an unreadable version's second (each re-anchor on
// it, each poll's overlap) would download oversized responses again.
func (c *Client) readAround(ctx context.Context, anchor time.Time, at listPos, per *int) (r feedRead, done bool, err error) {
	skip := at.pos % *per
	n := at.pos / *per + 1
	lp, err := c.ListTickets(ctx, ListOptions{UpdatedSince: anchor, OrderBy: "updated_at",
		OrderType: "asc", PerPage: *per, Page: n})
	if err != nil {
		return feedRead{}, false, fmt.Errorf("freshdesk: listing without descriptions around an unreadable ticket: %w", err)
	}
	// A known version before the position (on the same page, after a
	// shrink) must not be on the next read either: the read then has to
	// start at the position exactly.
	align := false
	limit := *per
	for i, t := range lp.Tickets {
		reason, known := c.tooLarge.get(t.ID, t.UpdatedAt)
		switch {
		case !known:
			continue
		case i < skip:
			align = true
			continue
		case i == skip:
			return feedRead{tickets: []Ticket{t}, page: at.pos + 1, more: i+1 < len(lp.Tickets) || lp.Next != "",
				following: listPos{pos: at.pos + 1, page: at.pos + 2}, unreadable: reason}, true, nil
		}
		limit = i - skip
		break
	}
	if !align && limit == *per {
		return feedRead{}, false, nil
	}
	// The largest page size within limit on whose page boundary the
	// position lies: that page starts at the position and ends before the
	// unreadable version.
	d := limit
	for at.pos%d != 0 {
		d--
	}
	if d < *per {
		*per = d
		return feedRead{page: at.pos/d + 1}, false, nil
	}
	return feedRead{}, false, nil
}

// readAlone deals with the version at position pos of the listing from
// anchor whose response is too large even as a page of one. That response
// cannot be decoded, so the version is identified by listing the same
// position without descriptions (1 credit, small), and confirmed by viewing
// the ticket by id: the view carries the description too, so an oversized
// view means the version cannot be read at all. again is true when the
// position holds something else by now (the listing changed between the
// calls): the caller reads the position again.
func (c *Client) readAlone(ctx context.Context, anchor time.Time, pos int) (r feedRead, again bool, err error) {
	lp, err := c.ListTickets(ctx, ListOptions{UpdatedSince: anchor, OrderBy: "updated_at",
		OrderType: "asc", PerPage: 1, Page: pos + 1})
	if err != nil {
		return feedRead{}, false, fmt.Errorf("freshdesk: identifying an oversized ticket by listing it without its description: %w", err)
	}
	if len(lp.Tickets) == 0 {
		return feedRead{}, true, nil
	}
	t := lp.Tickets[0]
	// The description-less listing's link must not be followed: its pages
	// lack descriptions.
	r = feedRead{tickets: []Ticket{t}, page: pos + 1, more: lp.Next != "",
		following: listPos{pos: pos + 1, page: pos + 2}}
	if reason, known := c.tooLarge.get(t.ID, t.UpdatedAt); known {
		r.unreadable = reason
		return r, false, nil
	}
	v, err := c.ViewTicket(ctx, t.ID)
	var tooLarge *ResponseTooLargeError
	switch {
	case errors.As(err, &tooLarge):
		r.unreadable = fmt.Sprintf("ticket %d version %s is too large to read: its response exceeds the %d-byte limit even alone (list page of one and GET /tickets/%d)",
			t.ID, t.UpdatedAt.UTC().Format(time.RFC3339), tooLarge.Limit, t.ID)
		c.tooLarge.put(t.ID, t.UpdatedAt, r.unreadable)
		c.log.LogAttrs(ctx, slog.LevelWarn, "freshdesk: ticket too large to read even alone",
			slog.Int64("ticket", t.ID), slog.Time("updated_at", t.UpdatedAt), slog.Int64("limit", tooLarge.Limit))
		return r, false, nil
	case errors.Is(err, ticketsystem.ErrNotFound):
		return feedRead{}, true, nil
	case err != nil:
		return feedRead{}, false, fmt.Errorf("freshdesk: viewing oversized ticket %d: %w", t.ID, err)
	case !v.UpdatedAt.Equal(t.UpdatedAt):
		return feedRead{}, true, nil
	}
	// The same version reads alone by id (the list page's framing was what
	// tipped it over the limit).
	r.tickets[0] = *v
	return r, false, nil
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

// maxRememberedUnreadable bounds Client.tooLarge.
const maxRememberedUnreadable = 1024

// unreadableSet remembers ticket versions found too large to read even
// alone, with the reason given for them. It is bounded: past
// maxRememberedUnreadable entries the oldest versions are forgotten (they
// are then identified the expensive way again if read again).
type unreadableSet struct {
	mu sync.Mutex
	m  map[int64]unreadableVersion
}

type unreadableVersion struct {
	updatedAt time.Time
	reason    string
}

func (s *unreadableSet) put(id int64, updatedAt time.Time, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[int64]unreadableVersion{}
	}
	if len(s.m) >= maxRememberedUnreadable {
		var oldest int64
		first := true
		for k, v := range s.m {
			if first || v.updatedAt.Before(s.m[oldest].updatedAt) {
				oldest, first = k, false
			}
		}
		delete(s.m, oldest)
	}
	s.m[id] = unreadableVersion{updatedAt: updatedAt.UTC(), reason: reason}
}

func (s *unreadableSet) get(id int64, updatedAt time.Time) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok || !v.updatedAt.Equal(updatedAt.UTC()) {
		return "", false
	}
	return v.reason, true
}

// mayHold reports whether a listing from anchor can contain a remembered
// version.
func (s *unreadableSet) mayHold(anchor time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.m {
		if !v.updatedAt.Before(anchor) {
			return true
		}
	}
	return false
}
