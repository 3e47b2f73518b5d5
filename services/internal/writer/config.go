package writer

import (
	"fmt"
	"strings"
	"time"

	"github.com/autotriage/autotriage/services/internal/platform"
)

// Config is the writer stage's own configuration.
type Config struct {
	Concurrency int  `env:"AUTOTRIAGE_WRITER_CONCURRENCY" envDefault:"16" help:"predictions handled at once by this replica (each waits mostly on Freshdesk and KV round trips; the API rate limit, not this, bounds the write rate against a real account)"`
	Notes       bool `env:"AUTOTRIAGE_WRITER_NOTES" envDefault:"true" help:"add a private note explaining each decision that suggests or applies something (suggest mode needs it)"`
	// Reread makes the writer read the ticket (GET, 1 credit) before every
	// write and compare, instead of relying on the newest version the
	// fetcher observed. On by default: "never overwrite a person" is the
	// headline promise, and the read gives the narrowest window Freshdesk
	// allows (it has no conditional update).
	Reread   bool   `env:"AUTOTRIAGE_WRITER_REREAD" envDefault:"true" help:"read the ticket (GET /tickets/{id}, +1 API credit per written ticket) just before writing and leave alone every field a person changed: the no-clobber window is (read -> PUT). false saves the credit and compares with the newest version the fetcher observed instead: the window grows to (that observation -> PUT), seconds with webhooks on ticket updates, up to the poll interval without."`
	Tag      string `env:"AUTOTRIAGE_TAG" envDefault:"autotriage" help:"tag added to every ticket autotriage writes to"`
	LabelMap string `env:"AUTOTRIAGE_LABEL_MAP" help:"model labels renamed in the helpdesk, e.g. 'group:Billing Dept=Billing,type:Bug=Incident'"`
	// CatalogTTL bounds how stale the cached catalog may be; a label the
	// cache does not know triggers an earlier refresh (at most once per
	// CatalogMinRefresh).
	CatalogTTL        time.Duration `env:"AUTOTRIAGE_WRITER_CATALOG_TTL" envDefault:"10m" help:"how long the helpdesk catalog (groups, types, priorities) is cached"`
	CatalogMinRefresh time.Duration `env:"AUTOTRIAGE_WRITER_CATALOG_MIN_REFRESH" envDefault:"30s" help:"minimum time between catalog refreshes caused by unknown labels"`
	// NoteLease is how long a note claimed as pending in the ticket's
	// ledger record is presumed to belong to a live writer. After it, a
	// writer that finds no note with the decision's marker in the ticket's
	// conversations posts it.
	// Lease is how long a delivery may hold a ticket's write lease (see
	// lease.go): other predictions for the ticket wait meanwhile, its writes
	// are cancelled shortly before it ends, and a writer that dies holding
	// it is replaced after it.
	Lease time.Duration `env:"AUTOTRIAGE_WRITER_LEASE" envDefault:"2m" help:"how long one writer may hold a ticket's write lease: other predictions for the ticket (on any replica) wait meanwhile, a write not finished within it is cancelled and retried, and a writer that dies holding it is replaced after at most this long (replica clocks must agree to well within a fifth of it)"`
	// TicketURL links the similar tickets a note lists; empty means the
	// Freshdesk origin's agent view, <origin>/a/tickets/{id} (Build).
	TicketURL string        `env:"AUTOTRIAGE_TICKET_URL" help:"link of a ticket in the agent UI for the similar tickets in notes, {id} replaced by the ticket id (default <Freshdesk origin>/a/tickets/{id})"`
	NoteLease time.Duration `env:"AUTOTRIAGE_WRITER_NOTE_LEASE" envDefault:"2m" help:"how long a note whose outcome is unknown is waited for before it is posted again (after checking the ticket's conversations)"`
}

// Validate checks the settings; platform.LoadConfig calls it through the
// binary's config struct.
func (c Config) Validate() error {
	switch {
	case c.Concurrency < 1:
		return &platform.ConfigError{Var: "AUTOTRIAGE_WRITER_CONCURRENCY", Msg: "must be at least 1"}
	case strings.TrimSpace(c.Tag) == "" || strings.Contains(c.Tag, ","):
		return &platform.ConfigError{Var: "AUTOTRIAGE_TAG", Msg: "must be a non-empty tag without commas"}
	case len(c.Tag) > 255:
		return &platform.ConfigError{Var: "AUTOTRIAGE_TAG", Msg: "must be at most 255 characters"}
	case c.CatalogTTL <= 0:
		return &platform.ConfigError{Var: "AUTOTRIAGE_WRITER_CATALOG_TTL", Msg: "must be positive"}
	case c.CatalogMinRefresh < 0:
		return &platform.ConfigError{Var: "AUTOTRIAGE_WRITER_CATALOG_MIN_REFRESH", Msg: "must not be negative"}
	case c.Lease < time.Second:
		return &platform.ConfigError{Var: "AUTOTRIAGE_WRITER_LEASE", Msg: "must be at least 1s"}
	case c.NoteLease <= 0:
		return &platform.ConfigError{Var: "AUTOTRIAGE_WRITER_NOTE_LEASE", Msg: "must be positive"}
	case c.TicketURL != "" && (!strings.Contains(c.TicketURL, "{id}") ||
		!strings.HasPrefix(c.TicketURL, "https://") && !strings.HasPrefix(c.TicketURL, "http://") || len(c.TicketURL) > 1024):
		return &platform.ConfigError{Var: "AUTOTRIAGE_TICKET_URL", Msg: "must be an http(s) URL of at most 1024 bytes containing {id}"}
	}
	if _, err := ParseLabelMap(c.LabelMap); err != nil {
		return &platform.ConfigError{Var: "AUTOTRIAGE_LABEL_MAP", Msg: err.Error()}
	}
	return nil
}

// Fields the writer knows, as FieldPrediction.field names them.
const (
	FieldGroup    = "group"
	FieldPriority = "priority"
	FieldType     = "type"
	FieldTags     = "tags"
)

// LabelMap renames model labels to the helpdesk's names, per field: the
// model was trained on history in which a group was called "Billing Dept",
// the helpdesk now calls it "Billing".
type LabelMap map[string]map[string]string

// ParseLabelMap parses "field:label=name,field:label=name". Fields are
// group, type, priority and tags; labels and names are trimmed and may not
// contain ',' or '='.
func ParseLabelMap(s string) (LabelMap, error) {
	m := LabelMap{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		field, rest, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("entry %q: want field:label=name", part)
		}
		field = strings.TrimSpace(field)
		switch field {
		case FieldGroup, FieldType, FieldPriority, FieldTags:
		default:
			return nil, fmt.Errorf("entry %q: unknown field %q (want group, type, priority or tags)", part, field)
		}
		label, name, ok := strings.Cut(rest, "=")
		label, name = strings.TrimSpace(label), strings.TrimSpace(name)
		if !ok || label == "" || name == "" || strings.Contains(name, "=") {
			return nil, fmt.Errorf("entry %q: want field:label=name", part)
		}
		if m[field] == nil {
			m[field] = map[string]string{}
		}
		if _, dup := m[field][label]; dup {
			return nil, fmt.Errorf("entry %q: label mapped twice", part)
		}
		m[field][label] = name
	}
	return m, nil
}

// Name returns the helpdesk name of a model label (the label itself when it
// is not renamed).
func (m LabelMap) Name(field, label string) string {
	if n, ok := m[field][label]; ok {
		return n
	}
	return label
}
