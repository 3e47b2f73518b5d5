package freshdesksim

import (
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// checkParams rejects query parameters outside allowed with Freshdesk's
// invalid_field error, as the real API does (it does not ignore them).
func checkParams(w http.ResponseWriter, q url.Values, allowed ...string) bool {
	var errs []fieldError
	for k := range q {
		if !slices.Contains(allowed, k) {
			errs = append(errs, fieldError{k, msgInvalidField, "invalid_field"})
		}
	}
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
		writeValidation(w, errs...)
		return false
	}
	return true
}

// pageParams parses page and per_page. maxPage 0 means no cap.
// Unverified: the message for an invalid per_page.
func pageParams(w http.ResponseWriter, q url.Values, defPer, maxPage int) (page, perPage int, ok bool) {
	page, perPage = 1, defPer
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeValidation(w, fieldError{"page", msgPositiveInt, "invalid_value"})
			return 0, 0, false
		}
		if maxPage > 0 && n > maxPage {
			writeValidation(w, fieldError{"page", "You cannot access tickets beyond the 300th page. Please provide a smaller page number.", "invalid_value"})
			return 0, 0, false
		}
		page = n
	}
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeValidation(w, fieldError{"per_page", "It should be a/an Positive Integer less than or equal to 100", "invalid_value"})
			return 0, 0, false
		}
		perPage = n
	}
	return page, perPage, true
}

// pageBounds returns the slice bounds of page and whether more items follow.
func pageBounds(n, page, perPage int) (lo, hi int, more bool) {
	lo = min(n, (page-1)*perPage)
	hi = min(n, lo+perPage)
	return lo, hi, hi < n
}

// setNextLink sets `link: <…&page=N+1>; rel="next"` when more pages exist,
// keeping the request's other parameters and its scheme and host.
func setNextLink(w http.ResponseWriter, r *http.Request, more bool, page int) {
	if !more {
		return
	}
	q := r.URL.Query()
	q.Del("page")
	enc := q.Encode()
	if enc != "" {
		enc += "&"
	}
	w.Header().Set("Link", "<"+baseURL(r)+r.URL.Path+"?"+enc+"page="+strconv.Itoa(page+1)+`>; rel="next"`)
}

func parseIncludes(w http.ResponseWriter, v string, allowed ...string) (map[string]bool, bool) {
	inc := map[string]bool{}
	if v == "" {
		return inc, true
	}
	for p := range strings.SplitSeq(v, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(allowed, p) {
			writeValidation(w, fieldError{"include", "It should be one of these values: '" + strings.Join(allowed, ",") + "'", "invalid_value"})
			return nil, false
		}
		inc[p] = true
	}
	return inc, true
}

// parseSince accepts ISO-8601 date-times (zone optional, UTC assumed) and bare dates.
func parseSince(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// listQuery is a parsed GET /api/v2/tickets.
type listQuery struct {
	agentID     int64 // the caller, for new_and_my_open
	filter      string
	requesterID int64
	companyID   int64
	email       string
	externalID  bool
	since       time.Time
	hasSince    bool
	orderBy     string
	desc        bool
}

// listParams are the selecting and ordering parameters of the tickets list,
// in the order Freshdesk reports their errors. Each parses a non-empty value
// into the query or returns the error.
var listParams = []struct {
	name  string
	parse func(lq *listQuery, v string) *fieldError
}{
	{"filter", func(lq *listQuery, v string) *fieldError {
		switch v {
		case "new_and_my_open", "watching", "spam", "deleted":
			lq.filter = v
			return nil
		}
		return &fieldError{"filter", "It should be one of these values: 'new_and_my_open,watching,spam,deleted'", "invalid_value"}
	}},
	{"requester_id", func(lq *listQuery, v string) *fieldError {
		return parsePositive("requester_id", v, &lq.requesterID)
	}},
	{"company_id", func(lq *listQuery, v string) *fieldError {
		return parsePositive("company_id", v, &lq.companyID)
	}},
	{"email", func(lq *listQuery, v string) *fieldError { lq.email = v; return nil }},
	{"unique_external_id", func(lq *listQuery, _ string) *fieldError { lq.externalID = true; return nil }},
	{"updated_since", func(lq *listQuery, v string) *fieldError {
		t, ok := parseSince(v)
		lq.since, lq.hasSince = t, true
		if !ok {
			return &fieldError{"updated_since", "It should be in the 'valid date time' format", "invalid_value"}
		}
		return nil
	}},
	{"order_by", func(lq *listQuery, v string) *fieldError {
		lq.orderBy = v
		if !slices.Contains([]string{"created_at", "due_by", "updated_at", "status"}, v) {
			return &fieldError{"order_by", "It should be one of these values: 'created_at,due_by,updated_at,status'", "invalid_value"}
		}
		return nil
	}},
	{"order_type", func(lq *listQuery, v string) *fieldError {
		switch v {
		case "desc":
			return nil
		case "asc":
			lq.desc = false
			return nil
		}
		return &fieldError{"order_type", "It should be one of these values: 'asc,desc'", "invalid_value"}
	}},
}

func parsePositive(name, v string, dst *int64) *fieldError {
	n, err := strconv.ParseInt(v, 10, 64)
	*dst = n
	if err != nil || n < 1 {
		return &fieldError{name, msgPositiveInt, "invalid_value"}
	}
	return nil
}

// parseListQuery reads the list parameters, collecting every error.
func parseListQuery(q url.Values, agentID int64) (listQuery, []fieldError) {
	lq := listQuery{agentID: agentID, orderBy: "created_at", desc: true}
	var errs []fieldError
	for _, p := range listParams {
		if v := q.Get(p.name); v != "" {
			if e := p.parse(&lq, v); e != nil {
				errs = append(errs, *e)
			}
		}
	}
	return lq, errs
}

// ticketFilter is one condition a listed ticket meets.
type ticketFilter func(t *Ticket) bool

// filters are the conditions of lq, one per parameter, all of which a ticket
// meets to be listed. Without updated_since only tickets created in the 30
// days before now are listed; the window applies together with every filter.
// Unverified: whether filters combine with the window and each other; they do here.
// Must be called with s.mu held.
func (s *Sim) filters(lq *listQuery, now time.Time) []ticketFilter {
	fs := []ticketFilter{stateFilter(lq.filter, lq.agentID)}
	if lq.filter == "watching" || lq.externalID {
		// Nobody watches simulated tickets; contacts have no external ids.
		fs = append(fs, func(*Ticket) bool { return false })
	}
	if lq.hasSince {
		since := lq.since
		fs = append(fs, func(t *Ticket) bool { return !t.UpdatedAt.Before(since) })
	} else {
		windowStart := now.Add(-30 * 24 * time.Hour)
		fs = append(fs, func(t *Ticket) bool { return !t.CreatedAt.Before(windowStart) })
	}
	if id := lq.requesterID; id != 0 {
		fs = append(fs, func(t *Ticket) bool { return t.RequesterID == id })
	}
	if id := lq.companyID; id != 0 {
		fs = append(fs, func(t *Ticket) bool { return t.CompanyID == id })
	}
	if lq.email != "" {
		id := s.byEmail[strings.ToLower(lq.email)] // 0, matching nobody, when unknown
		fs = append(fs, func(t *Ticket) bool { return t.RequesterID == id })
	}
	return fs
}

// stateFilter is the filter parameter: spam, deleted, or the live tickets
// (new_and_my_open: those open and unassigned or assigned to the caller).
func stateFilter(filter string, agentID int64) ticketFilter {
	switch filter {
	case "spam":
		return func(t *Ticket) bool { return t.Spam }
	case "deleted":
		return func(t *Ticket) bool { return t.Deleted }
	case "new_and_my_open":
		return func(t *Ticket) bool {
			return !t.Spam && !t.Deleted && t.Status == 2 && (t.ResponderID == 0 || t.ResponderID == agentID)
		}
	}
	return func(t *Ticket) bool { return !t.Spam && !t.Deleted }
}

func matchAll(fs []ticketFilter, t *Ticket) bool {
	for _, f := range fs {
		if !f(t) {
			return false
		}
	}
	return true
}

func (s *Sim) handleList(w http.ResponseWriter, r *http.Request, rc *reqCtx, _ int64) {
	q := r.URL.Query()
	if !checkParams(w, q, "filter", "requester_id", "email", "unique_external_id", "company_id", "updated_since", "order_by", "order_type", "per_page", "page", "include") {
		return
	}
	page, perPage, ok := pageParams(w, q, 30, 300)
	if !ok {
		return
	}
	inc, ok := parseIncludes(w, q.Get("include"), "requester", "stats", "description")
	if !ok {
		return
	}
	lq, errs := parseListQuery(q, rc.agentID)
	if len(errs) > 0 {
		writeValidation(w, errs...)
		return
	}
	now := s.now()
	s.mu.RLock()
	fs := s.filters(&lq, now)
	var items []*ticket
	var more bool
	if lq.orderBy == "created_at" || lq.orderBy == "updated_at" {
		items, more = s.pageIndexed(&lq, fs, page, perPage)
	} else {
		items, more = s.pageSorted(&lq, fs, page, perPage)
	}
	out := s.appendList(make([]byte, 0, 16<<10), items, inc)
	s.mu.RUnlock()
	setNextLink(w, r, more, page)
	writeJSON(w, http.StatusOK, out)
}

// pageIndexed walks an index already in the requested order (created_at or
// updated_at) and stops once the page and one look-ahead item are found: no
// sorting per request. Must be called with s.mu held.
func (s *Sim) pageIndexed(lq *listQuery, fs []ticketFilter, page, perPage int) (items []*ticket, more bool) {
	lo := (page - 1) * perPage
	seq := s.order
	first := 0
	if lq.orderBy == "updated_at" {
		seq = s.byUpdated
		if lq.hasSince {
			first = sort.Search(len(seq), func(i int) bool { return !seq[i].t.UpdatedAt.Before(lq.since) })
		}
	}
	n := 0
	step, i := 1, first
	if lq.desc {
		step, i = -1, len(seq)-1
	}
	for ; i >= first && i < len(seq); i += step {
		tk := seq[i]
		if !matchAll(fs, &tk.t) {
			continue
		}
		if n >= lo+perPage {
			return items, true
		}
		if n >= lo {
			items = append(items, tk)
		}
		n++
	}
	return items, false
}

// pageSorted sorts the matching tickets by due_by or status (ties by id).
// Must be called with s.mu held.
func (s *Sim) pageSorted(lq *listQuery, fs []ticketFilter, page, perPage int) ([]*ticket, bool) {
	var all []*ticket
	for _, tk := range s.order {
		if matchAll(fs, &tk.t) {
			all = append(all, tk)
		}
	}
	key := func(t *Ticket) int64 {
		if lq.orderBy == "due_by" {
			return t.DueBy.Unix()
		}
		return int64(t.Status)
	}
	sort.SliceStable(all, func(i, j int) bool {
		a, b := key(&all[i].t), key(&all[j].t)
		if a == b {
			a, b = all[i].t.ID, all[j].t.ID
		}
		if lq.desc {
			return a > b
		}
		return a < b
	})
	lo, hi, more := pageBounds(len(all), page, perPage)
	return all[lo:hi], more
}

// appendList renders items as the list's JSON array with the includes.
// Must be called with s.mu held.
func (s *Sim) appendList(out []byte, items []*ticket, inc map[string]bool) []byte {
	out = append(out, '[')
	for i, tk := range items {
		if i > 0 {
			out = append(out, ',')
		}
		base := tk.list
		if inc["description"] {
			base = tk.listDesc
		}
		if !inc["stats"] && !inc["requester"] {
			out = append(out, base...)
			continue
		}
		var extra []byte
		if inc["stats"] {
			extra = append(extra, `,"stats":`...)
			extra = appendStats(extra, &tk.t)
		}
		if inc["requester"] {
			extra = append(extra, `,"requester":`...)
			extra = appendRequester(extra, s.contacts[tk.t.RequesterID])
		}
		out = spliceKeys(out, base, extra)
	}
	return append(out, ']')
}

func (s *Sim) handleView(w http.ResponseWriter, r *http.Request, _ *reqCtx, id int64) {
	q := r.URL.Query()
	if !checkParams(w, q, "include") {
		return
	}
	inc, ok := parseIncludes(w, q.Get("include"), "conversations", "requester", "company", "stats")
	if !ok {
		return
	}
	s.mu.RLock()
	tk := s.tickets[id]
	if tk == nil {
		s.mu.RUnlock()
		writeJSON(w, http.StatusNotFound, nil)
		return
	}
	var extra []byte
	if inc["conversations"] {
		extra = append(extra, `,"conversations":[`...)
		notes := s.notes[id]
		for i, c := range notes[:min(10, len(notes))] {
			if i > 0 {
				extra = append(extra, ',')
			}
			extra = appendConversation(extra, c)
		}
		extra = append(extra, ']')
	}
	if inc["requester"] {
		extra = append(extra, `,"requester":`...)
		extra = appendRequester(extra, s.contacts[tk.t.RequesterID])
	}
	if inc["company"] {
		extra = append(extra, `,"company":`...)
		if c := s.companies[tk.t.CompanyID]; c != nil {
			extra = append(extra, `{"id":`...)
			extra = strconv.AppendInt(extra, c.id, 10)
			extra = append(extra, `,"name":`...)
			extra = appendStr(extra, c.name)
			extra = append(extra, '}')
		} else {
			extra = append(extra, "null"...)
		}
	}
	if inc["stats"] {
		extra = append(extra, `,"stats":`...)
		extra = appendStats(extra, &tk.t)
	}
	out := spliceKeys(nil, tk.view, extra)
	s.mu.RUnlock()
	writeJSON(w, http.StatusOK, out)
}

// store renders t, stores it (replacing an existing ticket with its id) and
// keeps s.order sorted. indexAt is when the search index sees this state.
// Must be called with s.mu held for writing.
func (s *Sim) store(t Ticket, indexAt time.Time) *ticket {
	tk := s.tickets[t.ID]
	isNew := tk == nil
	if isNew {
		tk = &ticket{}
		s.tickets[t.ID] = tk
	}
	nt := &ticket{t: t, versions: tk.versions}
	nt.list = renderTicket(nil, &nt.t, formList, s.fields.cfNames)
	nt.listDesc = renderTicket(nil, &nt.t, formListDesc, s.fields.cfNames)
	nt.view = renderTicket(nil, &nt.t, formView, s.fields.cfNames)
	if s.cfg.IndexDelay > 0 {
		nt.versions = append(slices.Clone(nt.versions), indexed{at: indexAt, t: nt.t, list: nt.list})
		cut := s.now().Add(-s.cfg.IndexDelay)
		for len(nt.versions) > 1 && !nt.versions[1].at.After(cut) {
			nt.versions = nt.versions[1:]
		}
	}
	s.tickets[t.ID] = nt
	if isNew {
		s.order = slices.Insert(s.order, searchAfter(s.order, t.CreatedAt, t.ID, createdKey), nt)
	} else {
		// created_at never changes: replace in place.
		i := searchAfter(s.order, tk.t.CreatedAt, tk.t.ID-1, createdKey)
		for s.order[i] != tk {
			i++
		}
		s.order[i] = nt
		j := searchAfter(s.byUpdated, tk.t.UpdatedAt, tk.t.ID-1, updatedKey)
		for s.byUpdated[j] != tk {
			j++
		}
		s.byUpdated = slices.Delete(s.byUpdated, j, j+1)
	}
	s.byUpdated = slices.Insert(s.byUpdated, searchAfter(s.byUpdated, t.UpdatedAt, t.ID, updatedKey), nt)
	return nt
}

func createdKey(t *Ticket) time.Time { return t.CreatedAt }
func updatedKey(t *Ticket) time.Time { return t.UpdatedAt }

// searchAfter returns the first index in seq (sorted by (key, id)) whose
// entry sorts after (at, id).
func searchAfter(seq []*ticket, at time.Time, id int64, key func(*Ticket) time.Time) int {
	return sort.Search(len(seq), func(i int) bool {
		k := key(&seq[i].t)
		return k.After(at) || (k.Equal(at) && seq[i].t.ID > id)
	})
}

// bumpUpdated returns the new updated_at of a ticket changed now. Contract:
// stamps are whole seconds, strictly increase on every change of one ticket,
// and are never ahead of the simulated clock. A second change of one ticket
// within a second moves the whole clock on by a second instead of stamping
// the ticket ahead of it: a stamp in the future would drag a client's
// updated_since cursor past tickets created meanwhile, while a clock that
// runs a little fast is what a client sees of a server whose clock is ahead.
func (s *Sim) bumpUpdated(prev, now time.Time) time.Time {
	now = now.Truncate(time.Second)
	if now.After(prev) {
		return now
	}
	next := prev.Add(time.Second)
	s.skew.Add(int64(next.Sub(now)))
	return next
}
