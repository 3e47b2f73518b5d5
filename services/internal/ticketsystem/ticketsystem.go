// Package ticketsystem defines the system-neutral contract between the
// triage pipeline and a helpdesk (Freshdesk today). It is the Go form of Open
// Ticket AI's TicketSystemAdapter (update_ticket, find_tickets,
// find_first_ticket), widened with what a safe writer needs: reading one
// ticket, notes and their listing (to avoid writing a note twice), an ordered
// change feed for the fetcher, and a catalog of the helpdesk's vocabulary.
//
// Consumers should depend on the smallest interface they use (TicketGetter,
// TicketUpdater, ...); Adapter is only their composition.
package ticketsystem

import (
	"context"
	"slices"
	"time"
)

// Ticket is the system-neutral view of a ticket. Identifiers that the backing
// system reports as null are 0 here: real ids are never 0.
type Ticket struct {
	ID              int64
	Subject         string
	Description     string // plain text
	DescriptionHTML string
	Tags            []string
	Type            string // "" when the ticket has no type
	GroupID         int64  // 0 when unassigned
	ResponderID     int64  // 0 when unassigned
	RequesterID     int64
	Priority        int
	Status          int
	Source          int
	// CustomFields holds the backing system's custom fields by their API name
	// (Freshdesk: "cf_..."). Values are string, bool, int64, float64 or nil;
	// dates stay strings in the system's own format (YYYY-MM-DD).
	CustomFields map[string]any
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Spam         bool
	Deleted      bool
	// Unreadable is set when the system could not deliver this version
	// within the adapter's response limits (Freshdesk: over 8 MiB even
	// alone); it says why. The version then has its id, updated_at and
	// fields but no Description or DescriptionHTML, and must not be
	// classified as if its text were empty.
	Unreadable string
}

// HasTag reports whether the ticket carries tag (exact match).
func (t *Ticket) HasTag(tag string) bool { return slices.Contains(t.Tags, tag) }

// Update describes a change to a ticket. Nil pointers and nil maps mean "leave
// unchanged", so only the fields a caller sets are ever sent. Pointer-to-zero
// id fields (GroupID, ResponderID) clear the assignment.
type Update struct {
	Subject     *string
	Type        *string
	Status      *int
	Priority    *int
	GroupID     *int64
	ResponderID *int64
	// AddTags are merged into the ticket's current tags. Adapters whose
	// backing system replaces the whole tag set (Freshdesk) read the ticket
	// first; a tag that someone adds between that read and the write can be
	// lost, because the systems offer no conditional update.
	AddTags []string
	// SetTags, when non-nil, is the ticket's complete new tag set (an empty,
	// non-nil slice removes every tag). It takes precedence over AddTags.
	SetTags []string
	// CustomFields sets the named custom fields; other custom fields keep
	// their values. A nil value clears the field.
	CustomFields map[string]any
}

// IsZero reports whether u changes nothing.
func (u Update) IsZero() bool {
	return u.Subject == nil && u.Type == nil && u.Status == nil && u.Priority == nil &&
		u.GroupID == nil && u.ResponderID == nil && len(u.AddTags) == 0 && u.SetTags == nil &&
		len(u.CustomFields) == 0
}

// Note is a note to add to a ticket. Notes are private (agents only) unless
// Public is set, so the zero value never exposes machine output to customers.
type Note struct {
	BodyHTML string
	Public   bool
}

// Conversation is one entry of a ticket's conversation: a note or a reply.
type Conversation struct {
	ID        int64
	TicketID  int64
	BodyHTML  string
	BodyText  string
	Private   bool
	Incoming  bool
	IsNote    bool
	UserID    int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Query selects tickets. Zero fields do not constrain; non-empty slices match
// any of their values. Adapters may serve a query from a search index that
// lags behind writes by minutes (Freshdesk does), so a query is not a change
// feed: use ChangedSince for that.
type Query struct {
	Status      []int
	Priority    []int
	GroupID     []int64
	Type        []string
	Tags        []string // any of these tags
	RequesterID int64
	// UpdatedSince keeps tickets updated at or after this instant.
	UpdatedSince time.Time
	// Limit caps the number of tickets returned; 0 means the adapter's own
	// maximum (Freshdesk search: 300).
	Limit int
}

// Catalog is the helpdesk's vocabulary: what names map to which ids. The
// writer uses it to refuse labels the helpdesk does not know.
type Catalog struct {
	Groups       []Choice
	Types        []string
	Priorities   []Choice
	Statuses     []Status
	Sources      []Choice
	CustomFields []CustomField
}

// Choice is an id with its display name.
type Choice struct {
	ID   int64
	Name string
}

// Status is a ticket status, including custom ones (Freshdesk: ids above 5).
type Status struct {
	ID            int64
	AgentLabel    string
	CustomerLabel string
}

// CustomField describes a custom field and, for dropdowns, its allowed values.
type CustomField struct {
	Name    string // API name, e.g. "cf_category"
	Label   string
	Type    string // system-specific, e.g. "custom_dropdown"
	Choices []string
}

// GroupByName returns the group with the given name (exact match).
func (c *Catalog) GroupByName(name string) (Choice, bool) { return findChoice(c.Groups, name) }

// PriorityByName returns the priority with the given name (exact match).
func (c *Catalog) PriorityByName(name string) (Choice, bool) {
	return findChoice(c.Priorities, name)
}

// HasType reports whether name is one of the ticket types.
func (c *Catalog) HasType(name string) bool { return slices.Contains(c.Types, name) }

// StatusByID returns the status with the given id.
func (c *Catalog) StatusByID(id int64) (Status, bool) {
	for _, s := range c.Statuses {
		if s.ID == id {
			return s, true
		}
	}
	return Status{}, false
}

func findChoice(cs []Choice, name string) (Choice, bool) {
	for _, c := range cs {
		if c.Name == name {
			return c, true
		}
	}
	return Choice{}, false
}

// TicketGetter reads one ticket. A missing ticket yields an error matching
// ErrNotFound.
type TicketGetter interface {
	GetTicket(ctx context.Context, id int64) (*Ticket, error)
}

// TicketFinder is Open Ticket AI's find_tickets/find_first_ticket.
type TicketFinder interface {
	// FindTickets returns the matching tickets, possibly none (an empty
	// result is not an error).
	FindTickets(ctx context.Context, q Query) ([]Ticket, error)
	// FindFirstTicket returns one matching ticket. When none matches it
	// returns (nil, err) with errors.Is(err, ErrNotFound); it never returns
	// (nil, nil).
	FindFirstTicket(ctx context.Context, q Query) (*Ticket, error)
}

// TicketUpdater applies an Update and returns the ticket as the system holds
// it afterwards. An Update that changes nothing performs no write.
type TicketUpdater interface {
	UpdateTicket(ctx context.Context, id int64, u Update) (*Ticket, error)
}

// NoteAdder adds a note. An error matching ErrOutcomeUnknown means the note
// may or may not have been written (the connection failed after the request
// was sent); callers must check Conversations before trying again, or they
// may write it twice.
type NoteAdder interface {
	AddNote(ctx context.Context, id int64, n Note) (*Conversation, error)
}

// ConversationLister lists a ticket's notes and replies, oldest first.
type ConversationLister interface {
	Conversations(ctx context.Context, id int64) ([]Conversation, error)
}

// ChangeFeed streams tickets changed at or after since, in ascending
// updated_at order, one page per call of fn. A ticket version is delivered at
// most once per call of ChangedSince; a ticket changed again while the feed
// runs may appear again with its newer updated_at. A version the system
// cannot deliver within limits is delivered in its place with
// Ticket.Unreadable set, so the feed does not stop on it. If fn returns an
// error the feed stops and returns it (wrapped). Callers resume by passing the last
// UpdatedAt they fully processed.
type ChangeFeed interface {
	ChangedSince(ctx context.Context, since time.Time, fn func(page []Ticket) error) error
}

// CatalogReader reads the helpdesk's vocabulary.
type CatalogReader interface {
	Catalog(ctx context.Context) (*Catalog, error)
}

// Adapter is everything the pipeline needs from a ticket system.
type Adapter interface {
	TicketGetter
	TicketFinder
	TicketUpdater
	NoteAdder
	ConversationLister
	ChangeFeed
	CatalogReader
}
