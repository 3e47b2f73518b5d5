package freshdesk

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Search limits documented by Freshdesk.
const (
	// MaxQueryLength is the longest query accepted, counted here including
	// the surrounding double quotes (the stricter reading of the docs).
	MaxQueryLength = 512
	// SearchPageSize is the fixed number of results per search page.
	SearchPageSize = 30
	// MaxSearchPages is the last page search serves; page 11 is a 400.
	MaxSearchPages = 10
)

// ErrInvalidQuery is returned (wrapped) for queries that cannot be expressed
// in Freshdesk's search syntax or exceed its limits.
var ErrInvalidQuery = errors.New("freshdesk: invalid search query")

// Expr is a search-query expression built with Eq, Gte, Lte, Null, And and
// Or. Errors (bad field names, unsupported values) are carried along and
// reported by Build, so expressions compose without error checks.
type Expr struct {
	s   string
	op  byte // 0 atom, '&' and, '|' or
	err error
}

var fieldNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// Eq matches field:value. value is a string (quoted), an integer or bool
// (bare), a time.Time (the UTC date, 'YYYY-MM-DD') or nil (null).
func Eq(field string, value any) Expr { return cmp(field, ":", value) }

// Gte matches field >= value (Freshdesk's ":>", which is inclusive) for
// integers and dates.
func Gte(field string, value any) Expr { return cmp(field, ":>", value) }

// Lte matches field <= value (Freshdesk's ":<", inclusive) for integers and
// dates.
func Lte(field string, value any) Expr { return cmp(field, ":<", value) }

// Null matches an empty field (field:null).
func Null(field string) Expr { return cmp(field, ":", nil) }

// CF names a custom field: CF("category") is "cf_category".
func CF(name string) string {
	if strings.HasPrefix(name, "cf_") {
		return name
	}
	return "cf_" + name
}

// And joins expressions with AND; compound operands are parenthesised.
func And(es ...Expr) Expr { return join('&', " AND ", es) }

// Or joins expressions with OR; compound operands are parenthesised.
func Or(es ...Expr) Expr { return join('|', " OR ", es) }

func join(op byte, sep string, es []Expr) Expr {
	switch len(es) {
	case 0:
		return Expr{err: fmt.Errorf("%w: empty %s", ErrInvalidQuery, strings.TrimSpace(sep))}
	case 1:
		return es[0]
	}
	var b strings.Builder
	for i, e := range es {
		if e.err != nil {
			return Expr{err: e.err}
		}
		if e.s == "" {
			return Expr{err: fmt.Errorf("%w: empty operand", ErrInvalidQuery)}
		}
		if i > 0 {
			b.WriteString(sep)
		}
		if e.op != 0 && e.op != op {
			b.WriteString("(" + e.s + ")")
		} else {
			b.WriteString(e.s)
		}
	}
	return Expr{s: b.String(), op: op}
}

func cmp(field, operator string, value any) Expr {
	if !fieldNameRE.MatchString(field) {
		return Expr{err: fmt.Errorf("%w: field name %q", ErrInvalidQuery, truncate(field, 40))}
	}
	v, ordered, err := formatValue(value)
	if err != nil {
		return Expr{err: fmt.Errorf("%w: field %s: %w", ErrInvalidQuery, field, err)}
	}
	if operator != ":" && !ordered {
		return Expr{err: fmt.Errorf("%w: field %s: %s needs an integer or a date", ErrInvalidQuery, field, operator)}
	}
	return Expr{s: field + operator + v}
}

// formatValue renders a value; ordered reports whether :> and :< apply.
func formatValue(v any) (s string, ordered bool, err error) {
	switch x := v.(type) {
	case nil:
		return "null", false, nil
	case string:
		q, err := quote(x)
		return q, false, err
	case bool:
		return strconv.FormatBool(x), false, nil
	case int:
		return strconv.FormatInt(int64(x), 10), true, nil
	case int8:
		return strconv.FormatInt(int64(x), 10), true, nil
	case int16:
		return strconv.FormatInt(int64(x), 10), true, nil
	case int32:
		return strconv.FormatInt(int64(x), 10), true, nil
	case int64:
		return strconv.FormatInt(x, 10), true, nil
	case uint8:
		return strconv.FormatUint(uint64(x), 10), true, nil
	case uint16:
		return strconv.FormatUint(uint64(x), 10), true, nil
	case uint32:
		return strconv.FormatUint(uint64(x), 10), true, nil
	case uint64:
		return strconv.FormatUint(x, 10), true, nil
	case uint:
		return strconv.FormatUint(uint64(x), 10), true, nil
	case time.Time:
		if x.IsZero() {
			return "", false, errors.New("zero date")
		}
		return "'" + x.UTC().Format(time.DateOnly) + "'", true, nil
	}
	return "", false, fmt.Errorf("unsupported value type %T", v)
}

// quote wraps s in single quotes. Freshdesk documents no escape syntax, so
// this client escapes ' and \ with a backslash and refuses what cannot be
// represented safely: a double quote (it would end the quoted query) and
// control characters.
func quote(s string) (string, error) {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for _, r := range s {
		switch {
		case r == '"':
			return "", errors.New(`double quote in value`)
		case r == '\'' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == unicode.ReplacementChar || unicode.IsControl(r):
			return "", errors.New("control or invalid character in value")
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String(), nil
}

// Build returns the query as sent: wrapped in double quotes, at most
// MaxQueryLength characters.
func (e Expr) Build() (string, error) {
	if e.err != nil {
		return "", e.err
	}
	if e.s == "" {
		return "", fmt.Errorf("%w: empty query", ErrInvalidQuery)
	}
	q := `"` + e.s + `"`
	if n := len([]rune(q)); n > MaxQueryLength {
		return "", fmt.Errorf("%w: %d characters, limit %d", ErrInvalidQuery, n, MaxQueryLength)
	}
	return q, nil
}

// String returns the unquoted expression, or the error text.
func (e Expr) String() string {
	if e.err != nil {
		return "!(" + e.err.Error() + ")"
	}
	return e.s
}

// SearchResult is one page of GET /api/v2/search/tickets.
type SearchResult struct {
	Total   int      `json:"total"`
	Results []Ticket `json:"results"`
}

// SearchTickets fetches one page (1..10) of a ticket search. Search results
// lag writes by minutes (index delay); do not use search as a change feed.
func (c *Client) SearchTickets(ctx context.Context, e Expr, page int) (*SearchResult, error) {
	q, err := e.Build()
	if err != nil {
		return nil, err
	}
	if page < 1 || page > MaxSearchPages {
		return nil, fmt.Errorf("%w: page %d outside 1..%d", ErrInvalidQuery, page, MaxSearchPages)
	}
	// The documented wire form encodes spaces as %20 and the quotes as %22.
	raw := "query=" + strings.ReplaceAll(url.QueryEscape(q), "+", "%20")
	if page > 1 {
		raw += "&page=" + strconv.Itoa(page)
	}
	u := *c.base
	u.Path = c.base.Path + "/api/v2/search/tickets"
	u.RawQuery = raw
	r := request{method: "GET", path: "/api/v2/search/tickets", rawURL: u.String(),
		endpoint: "search", idempotent: true, cost: 1}
	res, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	defer res.release()
	var sr SearchResult
	if err := decode(r.method+" "+r.path, res, &sr); err != nil {
		return nil, err
	}
	return &sr, nil
}

// SearchAll streams every page of a search, at most MaxSearchPages (300
// hits), stopping early when a page is short or the total is reached.
func (c *Client) SearchAll(ctx context.Context, e Expr, fn func([]Ticket) error) error {
	seen := 0
	for page := 1; page <= MaxSearchPages; page++ {
		sr, err := c.SearchTickets(ctx, e, page)
		if err != nil {
			return err
		}
		if len(sr.Results) > 0 {
			if err := fn(sr.Results); err != nil {
				return err
			}
		}
		seen += len(sr.Results)
		if len(sr.Results) < SearchPageSize || seen >= sr.Total {
			return nil
		}
	}
	return nil
}
