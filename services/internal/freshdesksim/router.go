package freshdesksim

import (
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Routing of the Freshdesk API. Every request, unknown paths and refused
// methods included, passes the same middleware in Freshdesk's order: request
// headers and stats, auth (401), rate limit (429), injected faults, the Accept
// check (406), and only then the handler or the 404/405. So each
// http.ServeMux pattern serves a whole chain, and the mux's own answers
// (plain-text 404 and 405, redirects to cleaned or slash-terminated paths)
// never happen: a method-less pattern behind each path answers refused
// methods, "/" answers everything else, and paths the mux would redirect are
// rewritten first (routable).

// reqCtx is the state of one API request, shared by its middleware and
// handler. It travels with the response writer withRequest installs (an
// exchange) rather than in the request's context, which would copy the
// request once more per request.
type reqCtx struct {
	ep      string // endpoint: stats, faults, rate-limit sub-limits and costs
	role    role
	agentID int64
	id      int64 // the {id} path value, when the route has one
	cost    int   // credits spent (0 when refused by auth or the rate limit)
	rec     *statusRecorder
}

// exchange is the response writer of an API request behind withRequest.
type exchange struct {
	statusRecorder
	rc reqCtx
}

// reqFrom returns the request state of w, which withRequest installed.
func reqFrom(w http.ResponseWriter) *reqCtx { return &w.(*exchange).rc }

type handlerFunc func(w http.ResponseWriter, r *http.Request, rc *reqCtx, id int64)

// apiMethod is one method a path accepts, with the endpoint it counts as.
type apiMethod struct {
	method, ep string
	h          handlerFunc
}

// apiRoute is one path pattern. ep is the endpoint of refused methods; a path
// with an {id} answers 404 before 405 when validID rejects it.
type apiRoute struct {
	path    string
	ep      string
	validID func(string) bool
	methods []apiMethod
	// refusedByID: refused methods reach the sibling {id} pattern instead of
	// one of this path's own, which would conflict with GET …/{id}.
	refusedByID bool
}

// positiveID is Freshdesk's id syntax; anything else is a 404.
func positiveID(v string) bool {
	id, err := strconv.ParseInt(v, 10, 64)
	return err == nil && id > 0
}

// agentRef also accepts "me", whose refused methods reach /agents/{id}.
func agentRef(v string) bool { return v == "me" || positiveID(v) }

func (s *Sim) apiRoutes() []apiRoute {
	get := http.MethodGet
	return []apiRoute{
		{path: "/api/v2/tickets", ep: "tickets.list", methods: []apiMethod{
			{get, "tickets.list", s.handleList}, {http.MethodPost, "tickets.create", s.handleCreate}}},
		{path: "/api/v2/tickets/{$}", ep: "tickets.view"},
		{path: "/api/v2/tickets/{id}", ep: "tickets.view", validID: positiveID, methods: []apiMethod{
			{get, "tickets.view", s.handleView}, {http.MethodPut, "tickets.update", s.handleUpdate}}},
		{path: "/api/v2/tickets/{id}/notes", ep: "tickets.notes", validID: positiveID, methods: []apiMethod{
			{http.MethodPost, "tickets.notes", s.handleAddNote}}},
		{path: "/api/v2/tickets/{id}/conversations", ep: "tickets.conversations", validID: positiveID, methods: []apiMethod{
			{get, "tickets.conversations", s.handleConversations}}},
		{path: "/api/v2/search/tickets", ep: "search", methods: []apiMethod{{get, "search", s.handleSearch}}},
		{path: "/api/v2/groups", ep: "groups", methods: []apiMethod{{get, "groups", s.handleGroups}}},
		{path: "/api/v2/groups/{$}", ep: "groups"},
		{path: "/api/v2/groups/{id}", ep: "groups", validID: positiveID, methods: []apiMethod{{get, "groups", s.handleGroup}}},
		{path: "/api/v2/agents", ep: "agents", methods: []apiMethod{{get, "agents", s.handleAgents}}},
		{path: "/api/v2/agents/{$}", ep: "agents"},
		{path: "/api/v2/agents/me", ep: "agents", refusedByID: true, methods: []apiMethod{{get, "agents", s.handleAgentMe}}},
		{path: "/api/v2/agents/{id}", ep: "agents", validID: agentRef, methods: []apiMethod{{get, "agents", s.handleAgent}}},
		{path: "/api/v2/ticket_fields", ep: "ticket_fields", methods: []apiMethod{{get, "ticket_fields", s.handleTicketFields}}},
	}
}

func (s *Sim) apiMux() *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range s.apiRoutes() {
		allow := make([]string, 0, len(rt.methods))
		for _, m := range rt.methods {
			allow = append(allow, m.method)
		}
		slices.Sort(allow)
		refuse := refuseMethod(strings.Join(allow, ", "))
		if len(allow) == 0 {
			refuse = func(w http.ResponseWriter, r *http.Request, _ *reqCtx, _ int64) { notFound(w, r) }
		}
		gate := idGate(rt.validID, s.chain(rt.ep, http.HandlerFunc(notFound)))
		for _, m := range rt.methods {
			h := m.h
			if m.method == http.MethodGet {
				if m.ep != rt.ep {
					panic("freshdesksim: a refused HEAD would count as " + m.ep + ", not " + rt.ep)
				}
				h = refuseHead(h, refuse)
			}
			mux.Handle(m.method+" "+rt.path, gate(s.chain(m.ep, withID(h))))
		}
		if !rt.refusedByID {
			mux.Handle(rt.path, gate(s.chain(rt.ep, withID(refuse))))
		}
	}
	mux.Handle("/", s.chain("unknown", http.HandlerFunc(notFound)))
	return mux
}

// ServeHTTP serves the Freshdesk API under /api/v2/ and the admin API under /_sim/.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.serveAdmin(w, r)
		return
	}
	s.api.ServeHTTP(w, routable(r))
}

// chain puts the API middleware in front of h for endpoint ep.
func (s *Sim) chain(ep string, h http.Handler) http.Handler {
	return s.withRequest(ep)(s.withAuth(s.withRateLimit(s.withFaults(withAccept(h)))))
}

// withRequest sets the headers every answer carries, starts the request's
// reqCtx and records the outcome in the stats.
func (s *Sim) withRequest(ep string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Request-Id", s.reqPrefix+"-"+strconv.FormatUint(s.reqSeq.Add(1), 16))
			h.Set("X-Freshdesk-API-Version", "latest=v2; requested=v2")
			x := &exchange{statusRecorder: statusRecorder{ResponseWriter: w}}
			x.rc.ep, x.rc.rec = ep, &x.statusRecorder
			next.ServeHTTP(x, r)
			s.stats.record(ep, x.rc.cost, x.status)
		})
	}
}

// withAuth answers 401 unless the request carries a known API key.
func (s *Sim) withAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := reqFrom(w)
		rc.role, rc.agentID = s.authenticate(r)
		if rc.role == roleNone {
			s.setRateHeaders(w.Header(), s.rl.peek(s, s.now()), 0)
			writeJSON(w, http.StatusUnauthorized, []byte(`{"code":"invalid_credentials","message":"You have to be logged in to perform this action."}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// withRateLimit spends the request's credits or answers 429, and sets the
// rate-limit headers either way.
func (s *Sim) withRateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := reqFrom(w)
		h := w.Header()
		cost := requestCost(rc.ep, r)
		dec := s.rl.take(s, rc.ep, cost, s.now())
		if !dec.ok {
			s.setRateHeaders(h, dec, 0)
			h.Set("Retry-After", strconv.Itoa(dec.retryAfter))
			// The body of a real 429 is empty although the content type is JSON.
			h.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		rc.cost = cost
		s.setRateHeaders(h, dec, cost)
		next.ServeHTTP(w, r)
	})
}

// withFaults runs the fault configured for the endpoint (SetFault).
func (s *Sim) withFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := reqFrom(w)
		if s.applyFault(rc.rec, r, rc.ep) {
			next.ServeHTTP(w, r)
		}
	})
}

// withAccept answers 406 unless the client accepts JSON.
func withAccept(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Accept"); a != "" && !acceptsJSON(a) {
			writeJSON(w, http.StatusNotAcceptable, []byte(`{"code":"invalid_accept_header","message":"Only application/json and */* are supported in 'Accepts' header."}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// idGate sends requests whose {id} valid rejects to notFound, the route's
// 404 (which counts against the route's endpoint whatever the method). A nil
// valid means the route has no id.
func idGate(valid func(string) bool, notFound http.Handler) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if valid == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !valid(r.PathValue("id")) {
				notFound.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// withID adapts h, passing the request's reqCtx and its {id} (0 without
// one, or for "me").
func withID(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := reqFrom(w)
		rc.id, _ = strconv.ParseInt(r.PathValue("id"), 10, 64)
		h(w, r, rc, rc.id)
	})
}

// refuseHead answers HEAD, which ServeMux routes to GET patterns and
// Freshdesk refuses, with refuse.
func refuseHead(get, refuse handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx, id int64) {
		if r.Method == http.MethodHead {
			refuse(w, r, rc, id)
			return
		}
		get(w, r, rc, id)
	}
}

// refuseMethod is Freshdesk's 405: an empty body and the allowed methods.
func refuseMethod(allow string) handlerFunc {
	return func(w http.ResponseWriter, _ *http.Request, _ *reqCtx, _ int64) {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, nil)
	}
}

// notFound is Freshdesk's 404: an empty JSON body.
func notFound(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusNotFound, nil) }

// routable returns r as the mux must see it to route on the decoded path
// segment by segment, as Freshdesk does, without redirecting. A path with
// empty, "." or ".." segments (which ServeMux would redirect to its cleaned
// form) gets "%2E" in their place: it decodes to ".", which no route accepts
// as an id or matches as a name, so the request reaches the same endpoint's
// 404. An escaped "/" (which ServeMux keeps inside one segment) separates
// segments. Other requests, nearly all, pass unchanged.
func routable(r *http.Request) *http.Request {
	p := r.URL.Path
	if r.URL.RawPath == "" && cleanPath(p) == p {
		return r
	}
	var segs []string
	if rest, ok := strings.CutPrefix(p, "/"); ok {
		segs = strings.Split(rest, "/")
	} else {
		segs = append([]string{"."}, strings.Split(p, "/")...) // e.g. "*": no route
	}
	dec := make([]string, len(segs))
	esc := make([]string, len(segs))
	for i, seg := range segs {
		if seg == "." || seg == ".." || (seg == "" && i < len(segs)-1) {
			dec[i], esc[i] = ".", "%2E"
			continue
		}
		dec[i], esc[i] = seg, url.PathEscape(seg)
	}
	u := *r.URL
	u.Path, u.RawPath = "/"+strings.Join(dec, "/"), "/"+strings.Join(esc, "/")
	r2 := r.WithContext(r.Context())
	r2.URL = &u
	r2.RequestURI = u.RequestURI()
	return r2
}

// cleanPath is the canonical form ServeMux redirects to: path.Clean keeping
// a trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		if len(p) == len(np)+1 && strings.HasPrefix(p, np) {
			return p
		}
		return np + "/"
	}
	return np
}
