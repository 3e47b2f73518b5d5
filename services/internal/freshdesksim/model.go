package freshdesksim

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Ticket is a snapshot of a simulated ticket, for assertions. Nullable ids are
// 0 when null; Type is "" when null. Timestamps are UTC whole seconds.
type Ticket struct {
	ID              int64
	Subject         string
	Description     string // HTML
	DescriptionText string
	Status          int
	Priority        int
	Source          int
	Type            string
	GroupID         int64
	ResponderID     int64
	RequesterID     int64
	CompanyID       int64
	ProductID       int64
	EmailConfigID   int64
	InternalAgentID int64
	InternalGroupID int64
	ParentID        int64
	Tags            []string
	CCEmails        []string
	CustomFields    map[string]any // keyed by cf_ name; string, int64, bool or nil
	Spam            bool
	Deleted         bool
	IsEscalated     bool
	FrEscalated     bool
	CreatedAt       time.Time
	UpdatedAt       time.Time
	DueBy           time.Time
	FrDueBy         time.Time
	// Stats timestamps (include=stats); zero means null.
	FirstRespondedAt time.Time
	ResolvedAt       time.Time
	ClosedAt         time.Time
	StatusUpdatedAt  time.Time
}

func (t Ticket) clone() Ticket {
	t.Tags = slices.Clone(t.Tags)
	t.CCEmails = slices.Clone(t.CCEmails)
	cf := make(map[string]any, len(t.CustomFields))
	for k, v := range t.CustomFields {
		cf[k] = v
	}
	t.CustomFields = cf
	return t
}

// Conversation is a note or reply on a ticket, in the create_note response shape.
type Conversation struct {
	ID        int64     `json:"id"`
	Body      string    `json:"body"`
	BodyText  string    `json:"body_text"`
	Incoming  bool      `json:"incoming"`
	Private   bool      `json:"private"`
	UserID    int64     `json:"user_id"`
	Source    int       `json:"source"` // 2 = note
	TicketID  int64     `json:"ticket_id"`
	NotifyTo  []string  `json:"notified_to"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Labels are the true labels of a ticket: what a perfect triage would set.
type Labels struct {
	Group    string   `json:"group"`
	GroupID  int64    `json:"group_id"`
	Type     string   `json:"type"`
	Priority int      `json:"priority"` // 0 when unknown
	Tags     []string `json:"tags"`
	Language string   `json:"language"`
}

type contact struct {
	id      int64
	name    string
	email   string
	company int64
}

type company struct {
	id   int64
	name string
}

type group struct {
	id          int64
	name        string
	description string
	agentIDs    []int64
	createdAt   time.Time
}

type agent struct {
	id        int64
	name      string
	email     string
	groupIDs  []int64
	admin     bool
	createdAt time.Time
}

// ticket is the stored form: the public snapshot plus cached renderings.
// Invariant: the cached byte slices always match t and are replaced, never
// mutated, so readers may keep a reference after releasing the lock.
type ticket struct {
	t        Ticket
	list     []byte // list form, without description
	listDesc []byte // list form with description (include=description)
	view     []byte // view form
	// versions holds past states for the search index lag (IndexDelay > 0).
	versions []indexed
}

type indexed struct {
	at   time.Time
	t    Ticket
	list []byte
}

const tsLayout = "2006-01-02T15:04:05Z"

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, tsLayout)
	return append(b, '"')
}

func appendID(b []byte, id int64) []byte {
	if id == 0 {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, id, 10)
}

func appendNullStr(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendStr(b, s)
}

func appendBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

const hexDigits = "0123456789abcdef"

// appendStr appends s as a JSON string. Invalid UTF-8 becomes U+FFFD; HTML
// characters are not escaped (Freshdesk sends descriptions with raw '<').
func appendStr(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendStrs(b []byte, ss []string, nullIfNil bool) []byte {
	if ss == nil && nullIfNil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendStr(b, s)
	}
	return append(b, ']')
}

func appendAny(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendStr(b, x)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case bool:
		return strconv.AppendBool(b, x)
	case float64:
		return strconv.AppendFloat(b, x, 'f', -1, 64)
	default:
		return append(b, "null"...)
	}
}

// renderForm selects which keys a ticket rendering carries. The key sets and
// their order follow the recorded fixtures: list_tickets_page1.json (list) and
// view_ticket_custom_fields.json (view).
type renderForm int

const (
	formList renderForm = iota
	formListDesc
	formView
)

// renderTicket renders t. cfNames is the ordered list of custom field names:
// every ticket carries every custom field, null when blank.
func renderTicket(b []byte, t *Ticket, form renderForm, cfNames []string) []byte {
	b = append(b, `{"cc_emails":`...)
	b = appendStrs(b, t.CCEmails, false)
	b = append(b, `,"fwd_emails":[],"reply_cc_emails":`...)
	b = appendStrs(b, t.CCEmails, false)
	b = append(b, `,"ticket_cc_emails":`...)
	b = appendStrs(b, t.CCEmails, false)
	b = append(b, `,"fr_escalated":`...)
	b = appendBool(b, t.FrEscalated)
	b = append(b, `,"spam":`...)
	b = appendBool(b, t.Spam)
	b = append(b, `,"email_config_id":`...)
	b = appendID(b, t.EmailConfigID)
	b = append(b, `,"group_id":`...)
	b = appendID(b, t.GroupID)
	b = append(b, `,"priority":`...)
	b = strconv.AppendInt(b, int64(t.Priority), 10)
	b = append(b, `,"requester_id":`...)
	b = appendID(b, t.RequesterID)
	b = append(b, `,"responder_id":`...)
	b = appendID(b, t.ResponderID)
	b = append(b, `,"source":`...)
	b = strconv.AppendInt(b, int64(t.Source), 10)
	b = append(b, `,"company_id":`...)
	b = appendID(b, t.CompanyID)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(t.Status), 10)
	b = append(b, `,"subject":`...)
	b = appendStr(b, t.Subject)
	b = append(b, `,"association_type":null,"support_email":null,"to_emails":null,"product_id":`...)
	b = appendID(b, t.ProductID)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, t.ID, 10)
	b = append(b, `,"type":`...)
	b = appendNullStr(b, t.Type)
	b = append(b, `,"due_by":`...)
	b = appendTime(b, t.DueBy)
	b = append(b, `,"fr_due_by":`...)
	b = appendTime(b, t.FrDueBy)
	b = append(b, `,"is_escalated":`...)
	b = appendBool(b, t.IsEscalated)
	if form != formList {
		b = append(b, `,"description":`...)
		b = appendStr(b, t.Description)
		b = append(b, `,"description_text":`...)
		b = appendStr(b, t.DescriptionText)
	}
	b = append(b, `,"custom_fields":{`...)
	for i, name := range cfNames {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendStr(b, name)
		b = append(b, ':')
		b = appendAny(b, t.CustomFields[name])
	}
	b = append(b, `},"created_at":`...)
	b = appendTime(b, t.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, t.UpdatedAt)
	if form != formView {
		b = append(b, `,"associated_tickets_count":null`...)
	}
	b = append(b, `,"tags":`...)
	b = appendStrs(b, t.Tags, false)
	if form == formView {
		b = append(b, `,"attachments":[],"source_additional_info":null,"internal_agent_id":`...)
		b = appendID(b, t.InternalAgentID)
		b = append(b, `,"internal_group_id":`...)
		b = appendID(b, t.InternalGroupID)
	}
	b = append(b, `,"nr_due_by":null,"nr_escalated":false}`...)
	return b
}

// appendStats renders the include=stats object.
func appendStats(b []byte, t *Ticket) []byte {
	b = append(b, `{"agent_responded_at":`...)
	b = appendTime(b, t.FirstRespondedAt)
	b = append(b, `,"requester_responded_at":null,"first_responded_at":`...)
	b = appendTime(b, t.FirstRespondedAt)
	b = append(b, `,"status_updated_at":`...)
	b = appendTime(b, t.StatusUpdatedAt)
	b = append(b, `,"reopened_at":null,"resolved_at":`...)
	b = appendTime(b, t.ResolvedAt)
	b = append(b, `,"closed_at":`...)
	b = appendTime(b, t.ClosedAt)
	b = append(b, `,"pending_since":null}`...)
	return b
}

func appendRequester(b []byte, c *contact) []byte {
	if c == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, c.id, 10)
	b = append(b, `,"name":`...)
	b = appendStr(b, c.name)
	b = append(b, `,"email":`...)
	b = appendStr(b, c.email)
	b = append(b, `,"mobile":null,"phone":null}`...)
	return b
}

func appendConversation(b []byte, c *Conversation) []byte {
	b = append(b, `{"body":`...)
	b = appendStr(b, c.Body)
	b = append(b, `,"body_text":`...)
	b = appendStr(b, c.BodyText)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, c.ID, 10)
	b = append(b, `,"incoming":`...)
	b = appendBool(b, c.Incoming)
	b = append(b, `,"private":`...)
	b = appendBool(b, c.Private)
	b = append(b, `,"user_id":`...)
	b = strconv.AppendInt(b, c.UserID, 10)
	b = append(b, `,"support_email":null,"source":`...)
	b = strconv.AppendInt(b, int64(c.Source), 10)
	b = append(b, `,"ticket_id":`...)
	b = strconv.AppendInt(b, c.TicketID, 10)
	b = append(b, `,"to_emails":[],"from_email":null,"cc_emails":null,"bcc_emails":null,"notified_to":`...)
	b = appendStrs(b, c.NotifyTo, false)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, c.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, c.UpdatedAt)
	b = append(b, `,"attachments":[]}`...)
	return b
}

// spliceKeys appends obj (a rendered JSON object) with extra key/value pairs
// added before its closing brace.
func spliceKeys(b, obj []byte, extra []byte) []byte {
	b = append(b, obj[:len(obj)-1]...)
	b = append(b, extra...)
	return append(b, '}')
}

// htmlToText is a small HTML-to-text conversion for description_text and
// body_text: tags dropped, block ends become spaces, a few entities decoded,
// whitespace runs collapsed.
func htmlToText(s string) string {
	var b strings.Builder
	inTag := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '<':
			inTag = true
			b.WriteByte(' ')
		case c == '>' && inTag:
			inTag = false
		case !inTag:
			b.WriteByte(c)
		}
	}
	out := strings.NewReplacer("&nbsp;", " ", "&lt;", "<", "&gt;", ">", "&quot;", `"`, "&#39;", "'", "&amp;", "&").Replace(b.String())
	return strings.Join(strings.Fields(out), " ")
}
