// Package freshdesksim is a Freshdesk API v2 simulator for tests, benchmarks
// and demos. It follows /work/shared/docs/freshdesk-api.md (the "Checklist for
// the simulator"): auth, rate-limit headers and 429s, list/view/update/search
// of tickets with Freshdesk's validation error shapes, notes, groups, agents,
// ticket fields, automation-rule webhooks and fault injection. An admin API
// under /_sim/ (no Freshdesk auth) seeds and inspects it.
//
// Where the reference leaves a behaviour open, the choice made is noted at the
// code that implements it ("Unverified:").
package freshdesksim

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesksim/helpdeskgen"
)

// Config configures a Sim. The zero value is usable.
type Config struct {
	APIKey     string        // admin key (default "sim-admin-key"); basic auth "<key>:X"
	AgentKey   string        // non-admin key: 403 access_denied on groups and agents list (default "sim-agent-key")
	Plan       string        // "trial","growth","pro","enterprise","unlimited" (default "unlimited": no 429s, headers still sent)
	TimeScale  float64       // simulated seconds per real second, >=1 (default 1). Scales the rate-limit minute, Retry-After and webhook retry delays.
	Seed       int64         // seeds the generator and the fault dice
	Domain     string        // account name, used in ticket URLs (default "sim")
	Webhook    WebhookConfig // empty URL = no webhooks
	IndexDelay time.Duration // search index lag in simulated time (default 0)
	Now        func() time.Time
}

// WebhookConfig is the "Trigger webhook" action of the simulated automation
// rules. Authentication is a custom header (Header + Secret) or basic auth
// (Username/Password); both may be set.
type WebhookConfig struct {
	URL      string
	Header   string
	Secret   string
	Username string
	Password string
	Timeout  time.Duration // per attempt (default 10s)
	// Workers is the number of concurrent deliveries (default 2).
	Workers int
	// OnAPIUpdates also fires status/priority events for changes made through
	// PUT /api/v2/tickets/{id} (an "on ticket update" rule without a
	// "performed by agent" condition). Default false: only AgentUpdate fires,
	// so a pipeline that writes back does not see its own changes.
	OnAPIUpdates bool
}

// Sim is the simulator. It is safe for concurrent use.
type Sim struct {
	cfg   Config
	limit planLimits

	start     time.Time // simulated time at New
	realStart time.Time
	// skew is how far same-second changes have moved the clock on (ns).
	skew atomic.Int64

	mu          sync.RWMutex
	tickets     map[int64]*ticket
	order       []*ticket // sorted by (created_at, id)
	byUpdated   []*ticket // sorted by (updated_at, id)
	nextTicket  int64
	contacts    map[int64]*contact
	byEmail     map[string]int64
	companies   map[int64]*company
	companyByNm map[string]int64
	groups      []*group
	agents      []*agent
	notes       map[int64][]*Conversation
	nextNote    int64
	nextID      int64 // for contacts, companies, groups, agents
	labels      map[int64]Labels
	fields      *fieldCatalog
	gen         *helpdeskgen.Generator
	adminID     int64
	agentKeyID  int64

	rl     rateLimiter
	stats  statsCollector
	faults faultSet
	hooks  *webhookSender
	people people

	admin     *http.ServeMux // /_sim/
	api       *http.ServeMux // /api/v2/ and every other path
	reqPrefix string
	reqSeq    atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

// New validates cfg, fills defaults and returns a Sim with the account's
// fixed catalog (statuses, priorities, sources, types, custom fields, the two
// key-owner agents) and no groups or tickets: call Generate or LoadDataset.
func New(cfg Config) (*Sim, error) {
	if cfg.APIKey == "" {
		cfg.APIKey = "sim-admin-key"
	}
	if cfg.AgentKey == "" {
		cfg.AgentKey = "sim-agent-key"
	}
	if cfg.APIKey == cfg.AgentKey {
		return nil, errors.New("freshdesksim: APIKey and AgentKey must differ")
	}
	if cfg.Plan == "" {
		cfg.Plan = "unlimited"
	}
	lim, ok := plans[cfg.Plan]
	if !ok {
		return nil, fmt.Errorf("freshdesksim: unknown plan %q (want trial, growth, pro, enterprise or unlimited)", cfg.Plan)
	}
	if cfg.TimeScale == 0 {
		cfg.TimeScale = 1
	}
	if cfg.TimeScale < 1 {
		return nil, fmt.Errorf("freshdesksim: TimeScale %v must be >= 1", cfg.TimeScale)
	}
	if cfg.Domain == "" {
		cfg.Domain = "sim"
	}
	if cfg.IndexDelay < 0 {
		return nil, errors.New("freshdesksim: IndexDelay must not be negative")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sim{
		cfg:         cfg,
		limit:       lim,
		realStart:   time.Now(),
		tickets:     map[int64]*ticket{},
		contacts:    map[int64]*contact{},
		byEmail:     map[string]int64{},
		companies:   map[int64]*company{},
		companyByNm: map[string]int64{},
		notes:       map[int64][]*Conversation{},
		labels:      map[int64]Labels{},
		nextTicket:  1,
		nextNote:    50000000000,
		nextID:      0,
		gen:         helpdeskgen.New(cfg.Seed),
		ctx:         ctx,
		cancel:      cancel,
	}
	s.start = s.realStart
	if cfg.Now != nil {
		s.start = cfg.Now()
	}
	s.faults.rng = rand.New(rand.NewPCG(uint64(cfg.Seed), 0xfa17))
	s.reqPrefix = fmt.Sprintf("%08x", uint32(cfg.Seed)^uint32(s.realStart.UnixNano()))
	s.stats.init()
	now := s.now()
	s.adminID = s.addAgent("Sim Admin", "admin@"+cfg.Domain+".example", true, now)
	s.agentKeyID = s.addAgent("Sim Agent", "agent@"+cfg.Domain+".example", false, now)
	s.fields = newFieldCatalog(now)
	s.admin = s.adminMux()
	s.api = s.apiMux()
	if cfg.Webhook.URL != "" {
		s.hooks = newWebhookSender(ctx, cfg.Webhook, cfg.TimeScale)
	}
	return s, nil
}

// Close stops the arrival generators and webhook workers. Pending webhook
// retries are abandoned. Close is idempotent.
func (s *Sim) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	if s.hooks != nil {
		s.hooks.wait()
	}
	return nil
}

// now is the simulated clock: Config.Now when set, else the real time since
// New multiplied by TimeScale. Timestamps stored on tickets are truncated to
// whole seconds, as Freshdesk's are.
func (s *Sim) now() time.Time {
	skew := time.Duration(s.skew.Load())
	if s.cfg.Now != nil {
		return s.cfg.Now().UTC().Add(skew)
	}
	el := time.Since(s.realStart)
	if s.cfg.TimeScale != 1 {
		el = time.Duration(float64(el) * s.cfg.TimeScale)
	}
	return s.start.Add(el + skew).UTC()
}

func (s *Sim) nowSec() time.Time { return s.now().Truncate(time.Second) }

// role of the caller, from the API key.
type role int

const (
	roleNone role = iota
	roleAdmin
	roleAgent
)

func acceptsJSON(a string) bool {
	for part := range strings.SplitSeq(a, ",") {
		mt := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		if mt == "application/json" || mt == "*/*" || mt == "application/*" {
			return true
		}
	}
	return false
}

func (s *Sim) authenticate(r *http.Request) (role, int64) {
	auth := r.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(auth, "Basic ")
	if !ok {
		return roleNone, 0
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(raw))
	if err != nil {
		return roleNone, 0
	}
	// The password is ignored, as Freshdesk does ("X" by convention).
	user, _, _ := strings.Cut(string(dec), ":")
	switch user {
	case s.cfg.APIKey:
		return roleAdmin, s.adminID
	case s.cfg.AgentKey:
		return roleAgent, s.agentKeyID
	}
	return roleNone, 0
}

func (s *Sim) setRateHeaders(h http.Header, d rateDecision, cost int) {
	h.Set("X-RateLimit-Total", strconv.Itoa(d.total))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(d.remaining))
	h.Set("X-RateLimit-Used-CurrentRequest", strconv.Itoa(cost))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (faults hijack it).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// writeJSON writes body with a JSON content type. A nil body writes no bytes
// (Freshdesk's 404 and 405 bodies are empty).
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if body != nil {
		_, _ = w.Write(body)
	}
}

// fieldError is one entry of a validation error body.
type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	Code    string `json:"code"`
}

func validationBody(errs []fieldError) []byte {
	b := []byte(`{"description":"Validation failed","errors":[`)
	for i, e := range errs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"field":`...)
		b = appendStr(b, e.Field)
		b = append(b, `,"message":`...)
		b = appendStr(b, e.Message)
		b = append(b, `,"code":`...)
		b = appendStr(b, e.Code)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

func writeValidation(w http.ResponseWriter, errs ...fieldError) {
	writeJSON(w, http.StatusBadRequest, validationBody(errs))
}

func writeCodeMessage(w http.ResponseWriter, status int, code, msg string) {
	b := []byte(`{"code":`)
	b = appendStr(b, code)
	b = append(b, `,"message":`...)
	b = appendStr(b, msg)
	writeJSON(w, status, append(b, '}'))
}

const (
	msgInvalidField = "Unexpected/invalid field in request"
	msgPositiveInt  = "It should be a/an Positive Integer"
)

// baseURL is the scheme and host the request came in on, so that link headers
// point back at the simulator.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
