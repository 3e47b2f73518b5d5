package freshdesk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Ticket is a Freshdesk ticket as the API sends it. Nullable ids are
// pointers so that null and 0 stay distinct; unknown keys are ignored.
type Ticket struct {
	ID                     int64           `json:"id"`
	Subject                string          `json:"subject"`
	Description            string          `json:"description"`
	DescriptionText        string          `json:"description_text"`
	Type                   *string         `json:"type"`
	Status                 int             `json:"status"`
	Priority               int             `json:"priority"`
	Source                 int             `json:"source"`
	Tags                   []string        `json:"tags"`
	RequesterID            *int64          `json:"requester_id"`
	ResponderID            *int64          `json:"responder_id"`
	GroupID                *int64          `json:"group_id"`
	CompanyID              *int64          `json:"company_id"`
	ProductID              *int64          `json:"product_id"`
	EmailConfigID          *int64          `json:"email_config_id"`
	InternalAgentID        *int64          `json:"internal_agent_id"`
	InternalGroupID        *int64          `json:"internal_group_id"`
	CCEmails               []string        `json:"cc_emails"`
	FwdEmails              []string        `json:"fwd_emails"`
	ReplyCCEmails          []string        `json:"reply_cc_emails"`
	TicketCCEmails         []string        `json:"ticket_cc_emails"`
	ToEmails               []string        `json:"to_emails"`
	SupportEmail           *string         `json:"support_email"`
	Spam                   bool            `json:"spam"`
	Deleted                bool            `json:"deleted"`
	IsEscalated            bool            `json:"is_escalated"`
	FrEscalated            bool            `json:"fr_escalated"`
	NrEscalated            bool            `json:"nr_escalated"`
	CustomFields           CustomFields    `json:"custom_fields"`
	Attachments            []Attachment    `json:"attachments"`
	AssociationType        *int            `json:"association_type"`
	AssociatedTicketsCount *int            `json:"associated_tickets_count"`
	CreatedAt              time.Time       `json:"created_at"`
	UpdatedAt              time.Time       `json:"updated_at"`
	DueBy                  *time.Time      `json:"due_by"`
	FrDueBy                *time.Time      `json:"fr_due_by"`
	NrDueBy                *time.Time      `json:"nr_due_by"`
	Stats                  *TicketStats    `json:"stats,omitempty"`
	Requester              *Requester      `json:"requester,omitempty"`
	SourceAdditionalInfo   json.RawMessage `json:"source_additional_info,omitempty"`
	StructuredDescription  json.RawMessage `json:"structured_description,omitempty"`
}

// CustomFields maps a custom field's API name (usually "cf_...") to its
// value: string, bool, int64 (integral numbers), float64 or nil.
type CustomFields map[string]any

// UnmarshalJSON keeps integers exact (int64) instead of float64, and
// arrays and objects as json.RawMessage. null gives a nil map. A number
// that fits neither int64 nor float64 is an error naming the field (the
// first such field by name, so the message does not depend on map order).
func (c *CustomFields) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		*c = nil
		return nil
	}
	out := make(CustomFields, len(raw))
	var bad string
	var badErr error
	for k, v := range raw {
		val, err := decodeScalar(v)
		if err != nil {
			if badErr == nil || k < bad {
				bad, badErr = k, err
			}
			continue
		}
		out[k] = val
	}
	if badErr != nil {
		return fmt.Errorf("custom field %q: %w", bad, badErr)
	}
	*c = out
	return nil
}

// decodeScalar decodes a JSON scalar; arrays and objects are kept as
// json.RawMessage so nothing is lost.
func decodeScalar(v json.RawMessage) (any, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return nil, fmt.Errorf("empty value")
	}
	switch v[0] {
	case 'n':
		return nil, nil
	case 't', 'f':
		var b bool
		err := json.Unmarshal(v, &b)
		return b, err
	case '"':
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case '[', '{':
		return append(json.RawMessage(nil), v...), nil
	default:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return nil, fmt.Errorf("invalid number %q", v)
		}
		return f, nil
	}
}

// Attachment is a file attached to a ticket or conversation.
type Attachment struct {
	ID            int64     `json:"id"`
	Name          string    `json:"name"`
	ContentType   string    `json:"content_type"`
	Size          int64     `json:"size"`
	FileSize      int64     `json:"file_size"`
	AttachmentURL string    `json:"attachment_url"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// TicketStats is the include=stats object.
type TicketStats struct {
	AgentRespondedAt     *time.Time `json:"agent_responded_at"`
	RequesterRespondedAt *time.Time `json:"requester_responded_at"`
	FirstRespondedAt     *time.Time `json:"first_responded_at"`
	StatusUpdatedAt      *time.Time `json:"status_updated_at"`
	ReopenedAt           *time.Time `json:"reopened_at"`
	ResolvedAt           *time.Time `json:"resolved_at"`
	ClosedAt             *time.Time `json:"closed_at"`
	PendingSince         *time.Time `json:"pending_since"`
}

// Requester is the include=requester object.
type Requester struct {
	ID     int64   `json:"id"`
	Name   string  `json:"name"`
	Email  *string `json:"email"`
	Mobile any     `json:"mobile"`
	Phone  any     `json:"phone"`
}

// Conversation is a note or reply.
type Conversation struct {
	ID               int64        `json:"id"`
	TicketID         int64        `json:"ticket_id"`
	Body             string       `json:"body"`
	BodyText         string       `json:"body_text"`
	Incoming         bool         `json:"incoming"`
	Private          bool         `json:"private"`
	UserID           int64        `json:"user_id"`
	Source           int          `json:"source"`
	Category         *int         `json:"category"`
	SupportEmail     *string      `json:"support_email"`
	FromEmail        *string      `json:"from_email"`
	ToEmails         []string     `json:"to_emails"`
	CCEmails         []string     `json:"cc_emails"`
	BCCEmails        []string     `json:"bcc_emails"`
	NotifiedTo       []string     `json:"notified_to"`
	Attachments      []Attachment `json:"attachments"`
	CreatedAt        time.Time    `json:"created_at"`
	UpdatedAt        time.Time    `json:"updated_at"`
	LastEditedAt     *time.Time   `json:"last_edited_at"`
	LastEditedUserID *int64       `json:"last_edited_user_id"`
}

// Conversation sources as listed by GET /tickets/{id}/conversations.
const (
	SourceReply    = 0
	SourceNote     = 2
	SourceFeedback = 6
	SourceForward  = 8
)

// Group is a Freshdesk group. The list endpoint omits AgentIDs.
type Group struct {
	ID               int64     `json:"id"`
	Name             string    `json:"name"`
	Description      *string   `json:"description"`
	EscalateTo       *int64    `json:"escalate_to"`
	UnassignedFor    *string   `json:"unassigned_for"`
	BusinessHourID   *int64    `json:"business_hour_id"`
	GroupType        string    `json:"group_type"`
	AutoTicketAssign any       `json:"auto_ticket_assign"` // int (0,1,2,3,12) or bool in old data
	AgentIDs         []int64   `json:"agent_ids"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// Agent is a Freshdesk agent (GET /agents/me).
type Agent struct {
	ID             int64        `json:"id"`
	Available      bool         `json:"available"`
	Occasional     bool         `json:"occasional"`
	Signature      *string      `json:"signature"`
	TicketScope    int          `json:"ticket_scope"`
	Type           string       `json:"type"`
	GroupIDs       []int64      `json:"group_ids"`
	RoleIDs        []int64      `json:"role_ids"`
	SkillIDs       []int64      `json:"skill_ids"`
	AvailableSince *time.Time   `json:"available_since"`
	LastActiveAt   *time.Time   `json:"last_active_at"`
	Contact        AgentContact `json:"contact"`
	CreatedAt      time.Time    `json:"created_at"`
	UpdatedAt      time.Time    `json:"updated_at"`
}

// AgentContact is the contact nested in an Agent. Mobile and phone arrive as
// numbers or strings depending on the account's age.
type AgentContact struct {
	Active      bool       `json:"active"`
	Email       string     `json:"email"`
	JobTitle    *string    `json:"job_title"`
	Language    string     `json:"language"`
	LastLoginAt *time.Time `json:"last_login_at"`
	Mobile      any        `json:"mobile"`
	Name        string     `json:"name"`
	Phone       any        `json:"phone"`
	TimeZone    string     `json:"time_zone"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// TicketField is an entry of GET /ticket_fields. Choices keeps the raw JSON
// because its shape depends on the field type; use DecodeChoices.
type TicketField struct {
	ID                   int64           `json:"id"`
	Name                 string          `json:"name"`
	Label                string          `json:"label"`
	LabelForCustomers    string          `json:"label_for_customers"`
	Description          *string         `json:"description"`
	Position             int             `json:"position"`
	Type                 string          `json:"type"`
	Default              bool            `json:"default"`
	RequiredForClosure   bool            `json:"required_for_closure"`
	RequiredForAgents    bool            `json:"required_for_agents"`
	RequiredForCustomers bool            `json:"required_for_customers"`
	CustomersCanEdit     bool            `json:"customers_can_edit"`
	DisplayedToCustomers bool            `json:"displayed_to_customers"`
	Choices              json.RawMessage `json:"choices,omitempty"`
	NestedTicketFields   json.RawMessage `json:"nested_ticket_fields,omitempty"`
	CreatedAt            time.Time       `json:"created_at"`
	UpdatedAt            time.Time       `json:"updated_at"`
}

// Choice is one decoded ticket-field choice. Depending on the shape, ID is
// the numeric id (name→id objects, id→labels objects, admin objects) or 0
// (plain string arrays); Labels holds [agent label, customer label] for
// statuses; Choices holds the next level of a nested field.
type Choice struct {
	ID      int64
	Value   string
	Labels  []string
	Choices []Choice
}

// DecodeChoices decodes every known shape of "choices", in document order:
//   - ["Question","Incident"]                      (ticket type, custom dropdown)
//   - {"Low":1,"Medium":2}                         (priority, source, group, agent, product)
//   - {"2":["Open","Being Processed"]}             (status)
//   - {"Books":{"Fiction":["Classic"]}}            (nested field)
//   - [{"id":1,"value":"A","choices":[...]}]       (admin API)
//
// A null or absent value yields no choices.
func (f *TicketField) DecodeChoices() ([]Choice, error) {
	if len(bytes.TrimSpace(f.Choices)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(f.Choices))
	dec.UseNumber()
	cs, err := decodeChoices(dec, 0)
	if err != nil {
		return nil, fmt.Errorf("freshdesk: ticket field %q choices: %w", f.Name, err)
	}
	return cs, nil
}

const maxChoiceDepth = 8

func decodeChoices(dec *json.Decoder, depth int) ([]Choice, error) {
	if depth > maxChoiceDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxChoiceDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return nil, nil
	case json.Delim:
		switch t {
		case '[':
			var out []Choice
			for dec.More() {
				c, err := decodeArrayChoice(dec, depth)
				if err != nil {
					return nil, err
				}
				out = append(out, c)
			}
			_, err := dec.Token() // ]
			return out, err
		case '{':
			var out []Choice
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string)
				c, err := decodeObjectChoice(dec, key, depth)
				if err != nil {
					return nil, err
				}
				out = append(out, c)
			}
			_, err := dec.Token() // }
			return out, err
		}
	}
	return nil, fmt.Errorf("unexpected %v", tok)
}

// decodeArrayChoice decodes an element of a choices array: a string or an
// admin-style object.
func decodeArrayChoice(dec *json.Decoder, depth int) (Choice, error) {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return Choice{}, err
	}
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) > 0 && raw[0] == '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return Choice{Value: s}, err
	case len(raw) > 0 && raw[0] == '{':
		var obj struct {
			ID      json.Number     `json:"id"`
			Value   string          `json:"value"`
			Label   string          `json:"label"`
			Choices json.RawMessage `json:"choices"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return Choice{}, err
		}
		c := Choice{Value: obj.Value}
		if c.Value == "" {
			c.Value = obj.Label
		}
		if obj.ID != "" {
			id, err := obj.ID.Int64()
			if err != nil {
				return Choice{}, fmt.Errorf("choice id %q: %w", obj.ID, err)
			}
			c.ID = id
		}
		if len(bytes.TrimSpace(obj.Choices)) > 0 {
			sub := json.NewDecoder(bytes.NewReader(obj.Choices))
			sub.UseNumber()
			cs, err := decodeChoices(sub, depth+1)
			if err != nil {
				return Choice{}, err
			}
			c.Choices = cs
		}
		return c, nil
	case len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')):
		return Choice{Value: string(raw)}, nil
	}
	return Choice{}, fmt.Errorf("unexpected choice %s", truncate(string(raw), 40))
}

// decodeObjectChoice decodes the value under key in a choices object.
func decodeObjectChoice(dec *json.Decoder, key string, depth int) (Choice, error) {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return Choice{}, err
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return Choice{}, fmt.Errorf("empty value for %q", key)
	}
	switch raw[0] {
	case '[': // status: "2": ["Open","Being Processed"], or nested leaf list
		var labels []string
		if err := json.Unmarshal(raw, &labels); err == nil {
			if id, err := strconv.ParseInt(key, 10, 64); err == nil {
				c := Choice{ID: id, Labels: labels}
				if len(labels) > 0 {
					c.Value = labels[0]
				}
				return c, nil
			}
			c := Choice{Value: key}
			for _, l := range labels {
				c.Choices = append(c.Choices, Choice{Value: l})
			}
			return c, nil
		}
		sub := json.NewDecoder(bytes.NewReader(raw))
		sub.UseNumber()
		cs, err := decodeChoices(sub, depth+1)
		return Choice{Value: key, Choices: cs}, err
	case '{':
		sub := json.NewDecoder(bytes.NewReader(raw))
		sub.UseNumber()
		cs, err := decodeChoices(sub, depth+1)
		return Choice{Value: key, Choices: cs}, err
	case 'n':
		return Choice{Value: key}, nil
	case '"': // {"name":"value"}: unusual, keep both
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Choice{}, err
		}
		c := Choice{Value: key, Labels: []string{s}}
		if id, err := strconv.ParseInt(s, 10, 64); err == nil {
			c.ID = id
		}
		return c, nil
	default: // "Low": 1
		id, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return Choice{}, fmt.Errorf("choice %q: id %s is not an integer", key, truncate(string(raw), 40))
		}
		return Choice{ID: id, Value: key}, nil
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
