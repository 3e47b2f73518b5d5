package freshdesksim

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The search query language of GET /api/v2/search/tickets:
//
//	query     = '"' expr '"'                      (at most 512 characters)
//	expr      = term { "OR" term }
//	term      = factor { "AND" factor }
//	factor    = "(" expr ")" | condition
//	condition = field ( ":" | ":>" | ":<" ) value
//	value     = integer | "'" chars "'" | "null" | "true" | "false"
//
// Field names and the keywords are case-sensitive. ":>" and ":<" are
// inclusive (>= and <=). Dates are 'YYYY-MM-DD' and compare by UTC day.

const maxQueryLen = 512

type tokKind int

const (
	tEOF tokKind = iota
	tLParen
	tRParen
	tAnd
	tOr
	tIdent
	tOp // ":", ":>", ":<"
	tString
	tInt
	tNull
	tTrue
	tFalse
)

type token struct {
	kind tokKind
	text string
	pos  int
}

type queryError struct {
	pos int
	msg string
}

func (e *queryError) Error() string { return fmt.Sprintf("position %d: %s", e.pos, e.msg) }

func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tRParen, ")", i})
			i++
		case c == ':':
			if i+1 < len(s) && (s[i+1] == '>' || s[i+1] == '<') {
				toks = append(toks, token{tOp, s[i : i+2], i})
				i += 2
			} else {
				toks = append(toks, token{tOp, ":", i})
				i++
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, &queryError{i, "unterminated string"}
			}
			toks = append(toks, token{tString, s[i+1 : i+1+j], i})
			i += j + 2
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if s[i:j] == "-" {
				return nil, &queryError{i, "invalid number"}
			}
			toks = append(toks, token{tInt, s[i:j], i})
			i = j
		case c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			j := i + 1
			for j < len(s) && (s[j] == '_' || (s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') || (s[j] >= '0' && s[j] <= '9')) {
				j++
			}
			w := s[i:j]
			k := tIdent
			switch w {
			case "AND":
				k = tAnd
			case "OR":
				k = tOr
			case "null":
				k = tNull
			case "true":
				k = tTrue
			case "false":
				k = tFalse
			}
			toks = append(toks, token{k, w, i})
			i = j
		default:
			return nil, &queryError{i, fmt.Sprintf("unexpected character %q", c)}
		}
	}
	return append(toks, token{tEOF, "", len(s)}), nil
}

// fieldKind is the value type a searchable field takes.
type fieldKind int

const (
	kID     fieldKind = iota // agent_id, group_id: integer or null
	kEnum                    // priority, status: integer, orderable
	kString                  // type, tag, text and dropdown custom fields
	kDate                    // due_by, ... and custom date fields
	kNumber                  // custom number fields
	kBool                    // custom checkbox fields
)

type queryNode interface {
	match(t *Ticket) bool
}

type orNode []queryNode

func (n orNode) match(t *Ticket) bool {
	for _, c := range n {
		if c.match(t) {
			return true
		}
	}
	return false
}

type andNode []queryNode

func (n andNode) match(t *Ticket) bool {
	for _, c := range n {
		if !c.match(t) {
			return false
		}
	}
	return true
}

type condNode struct {
	field string
	kind  fieldKind
	op    string
	null  bool
	i     int64
	s     string
	b     bool
	day   time.Time
}

func cmpInt(op string, a, b int64) bool {
	switch op {
	case ":>":
		return a >= b
	case ":<":
		return a <= b
	}
	return a == b
}

func (c *condNode) match(t *Ticket) bool {
	switch c.field {
	case "agent_id", "group_id":
		v := t.ResponderID
		if c.field == "group_id" {
			v = t.GroupID
		}
		if c.null {
			return v == 0
		}
		return v != 0 && cmpInt(c.op, v, c.i)
	case "priority":
		return cmpInt(c.op, int64(t.Priority), c.i)
	case "status":
		return cmpInt(c.op, int64(t.Status), c.i)
	case "type":
		if c.null {
			return t.Type == ""
		}
		return strings.EqualFold(t.Type, c.s)
	case "tag":
		if c.null {
			return len(t.Tags) == 0
		}
		for _, tag := range t.Tags {
			if strings.EqualFold(tag, c.s) {
				return true
			}
		}
		return false
	case "due_by", "fr_due_by", "created_at", "updated_at":
		var v time.Time
		switch c.field {
		case "due_by":
			v = t.DueBy
		case "fr_due_by":
			v = t.FrDueBy
		case "created_at":
			v = t.CreatedAt
		default:
			v = t.UpdatedAt
		}
		if c.null {
			return v.IsZero()
		}
		return !v.IsZero() && cmpInt(c.op, dayOf(v).Unix(), c.day.Unix())
	}
	// custom field
	v, ok := t.CustomFields[c.field]
	if c.null {
		return !ok || v == nil
	}
	switch c.kind {
	case kString:
		x, ok := v.(string)
		return ok && strings.EqualFold(x, c.s)
	case kNumber:
		x, ok := v.(int64)
		return ok && cmpInt(c.op, x, c.i)
	case kBool:
		x, ok := v.(bool)
		return ok && x == c.b
	case kDate:
		x, ok := v.(string)
		if !ok {
			return false
		}
		d, err := time.Parse("2006-01-02", x)
		return err == nil && cmpInt(c.op, d.Unix(), c.day.Unix())
	}
	return false
}

func dayOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

type parser struct {
	toks   []token
	pos    int
	fields func(name string) (fieldKind, bool)
	depth  int
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) expr() (queryNode, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > 64 {
		return nil, &queryError{p.peek().pos, "too deeply nested"}
	}
	first, err := p.term()
	if err != nil {
		return nil, err
	}
	or := orNode{first}
	for p.peek().kind == tOr {
		p.next()
		n, err := p.term()
		if err != nil {
			return nil, err
		}
		or = append(or, n)
	}
	if len(or) == 1 {
		return first, nil
	}
	return or, nil
}

func (p *parser) term() (queryNode, error) {
	first, err := p.factor()
	if err != nil {
		return nil, err
	}
	and := andNode{first}
	for p.peek().kind == tAnd {
		p.next()
		n, err := p.factor()
		if err != nil {
			return nil, err
		}
		and = append(and, n)
	}
	if len(and) == 1 {
		return first, nil
	}
	return and, nil
}

func (p *parser) factor() (queryNode, error) {
	t := p.next()
	switch t.kind {
	case tLParen:
		n, err := p.expr()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, &queryError{c.pos, "expected ')'"}
		}
		return n, nil
	case tIdent:
		return p.condition(t)
	case tEOF:
		return nil, &queryError{t.pos, "unexpected end of query"}
	}
	return nil, &queryError{t.pos, fmt.Sprintf("expected a field or '(' but found %q", t.text)}
}

func (p *parser) condition(f token) (queryNode, error) {
	kind, ok := p.fields(f.text)
	if !ok {
		return nil, &queryError{f.pos, fmt.Sprintf("%q is not a searchable field", f.text)}
	}
	op := p.next()
	if op.kind != tOp {
		return nil, &queryError{op.pos, "expected ':', ':>' or ':<' after " + f.text}
	}
	if op.text != ":" && kind != kEnum && kind != kDate && kind != kNumber {
		return nil, &queryError{op.pos, op.text + " is not supported on " + f.text}
	}
	v := p.next()
	c := &condNode{field: f.text, kind: kind, op: op.text}
	bad := func(want string) error {
		return &queryError{v.pos, fmt.Sprintf("%s expects %s", f.text, want)}
	}
	if v.kind == tNull {
		if op.text != ":" || kind == kEnum {
			return nil, bad("a value, not null")
		}
		c.null = true
		return c, nil
	}
	switch kind {
	case kID, kEnum, kNumber:
		if v.kind != tInt {
			return nil, bad("an integer")
		}
		n, err := strconv.ParseInt(v.text, 10, 64)
		if err != nil {
			return nil, bad("an integer")
		}
		c.i = n
	case kString:
		if v.kind != tString {
			return nil, bad("a string in single quotes")
		}
		c.s = v.text
	case kBool:
		if v.kind != tTrue && v.kind != tFalse {
			return nil, bad("true or false")
		}
		c.b = v.kind == tTrue
	case kDate:
		if v.kind != tString {
			return nil, bad("a date 'YYYY-MM-DD'")
		}
		d, err := time.Parse("2006-01-02", v.text)
		if err != nil {
			return nil, bad("a date 'YYYY-MM-DD'")
		}
		c.day = d
	}
	return c, nil
}

// parseQuery parses the raw value of the query parameter (outer double quotes
// included). fields resolves a field name to its kind.
func parseQuery(raw string, fields func(string) (fieldKind, bool)) (queryNode, error) {
	if len(raw) > maxQueryLen {
		return nil, &queryError{maxQueryLen, "the query must be at most 512 characters"}
	}
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, &queryError{0, "the query must be wrapped in double quotes"}
	}
	inner := raw[1 : len(raw)-1]
	if i := strings.IndexByte(inner, '"'); i >= 0 {
		return nil, &queryError{i + 1, "unexpected double quote"}
	}
	toks, err := tokenize(inner)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, fields: fields}
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, &queryError{t.pos, fmt.Sprintf("unexpected %q", t.text)}
	}
	return n, nil
}

// builtinFields resolves the documented searchable fields.
func builtinFields(name string) (fieldKind, bool) {
	switch name {
	case "agent_id", "group_id":
		return kID, true
	case "priority", "status":
		return kEnum, true
	case "type", "tag":
		return kString, true
	case "due_by", "fr_due_by", "created_at", "updated_at":
		return kDate, true
	}
	return 0, false
}

func (fc *fieldCatalog) searchField(name string) (fieldKind, bool) {
	if k, ok := builtinFields(name); ok {
		return k, true
	}
	cf, ok := fc.customByName(name)
	if !ok {
		return 0, false
	}
	switch cf.typ {
	case "custom_number":
		return kNumber, true
	case "custom_checkbox":
		return kBool, true
	case "custom_date":
		return kDate, true
	}
	return kString, true
}

const searchPerPage = 30

// handleSearch serves GET /api/v2/search/tickets. Results are ordered by
// created_at, newest first; spam and deleted tickets are never returned.
// With IndexDelay, it sees each ticket as it was IndexDelay ago.
// Unverified: the messages for a malformed query and a page above 10; search
// results carry the list form of a ticket (no description).
func (s *Sim) handleSearch(w http.ResponseWriter, r *http.Request, _ *reqCtx, _ int64) {
	q := r.URL.Query()
	if !checkParams(w, q, "query", "page") {
		return
	}
	page := 1
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeValidation(w, fieldError{"page", msgPositiveInt, "invalid_value"})
			return
		}
		if n > 10 {
			writeValidation(w, fieldError{"page", "Value must be less than or equal to 10", "invalid_value"})
			return
		}
		page = n
	}
	raw, ok := q["query"]
	if !ok {
		writeValidation(w, fieldError{"query", "It should be a/an String", "missing_field"})
		return
	}
	node, err := parseQuery(raw[0], s.fields.searchField)
	if err != nil {
		writeValidation(w, fieldError{"query", "Given query is invalid: " + err.Error(), "invalid_value"})
		return
	}
	type hit struct {
		t    *Ticket
		list []byte
	}
	var hits []hit
	s.mu.RLock()
	cut := s.now().Add(-s.cfg.IndexDelay)
	for _, tk := range s.order {
		t, list := &tk.t, tk.list
		if s.cfg.IndexDelay > 0 {
			found := false
			for i := len(tk.versions) - 1; i >= 0; i-- {
				if !tk.versions[i].at.After(cut) {
					t, list, found = &tk.versions[i].t, tk.versions[i].list, true
					break
				}
			}
			if !found {
				continue
			}
		}
		if t.Spam || t.Deleted || !node.match(t) {
			continue
		}
		hits = append(hits, hit{t, list})
	}
	s.mu.RUnlock()
	sort.SliceStable(hits, func(i, j int) bool {
		a, b := hits[i].t, hits[j].t
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.After(b.CreatedAt)
		}
		return a.ID > b.ID
	})
	lo, hi, _ := pageBounds(len(hits), page, searchPerPage)
	b := []byte(`{"total":`)
	b = strconv.AppendInt(b, int64(len(hits)), 10)
	b = append(b, `,"results":[`...)
	for i, h := range hits[lo:hi] {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, h.list...)
	}
	writeJSON(w, http.StatusOK, append(b, "]}"...))
}
