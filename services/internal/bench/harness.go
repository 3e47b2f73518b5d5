package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classifier"
	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/fetcher"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/freshdesksim/helpdeskgen"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/natsserver"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/service"
	"github.com/autotriage/autotriage/services/internal/training"
	"github.com/autotriage/autotriage/services/internal/triage"
	"github.com/autotriage/autotriage/services/internal/writer"
)

// benchPolicy is the demo policy of `autotriage up`: group and type applied
// at 90% held-out precision (suggested below it), priority suggested.
const benchPolicy = "group=apply:p90,type=apply:p90,priority=suggest,tags=shadow"

// webhookSecret authenticates the simulator's webhooks to the fetcher.
const webhookSecret = "bench-webhook-secret-0123456789"

// harness owns what the pipeline sections share: the model trained on the
// simulated helpdesk's history, and a scratch directory.
type harness struct {
	o     *Options
	logf  func(string, ...any)
	model []byte
	tmp   string
}

func newHarness(ctx context.Context, o *Options, logf func(string, ...any)) (*harness, error) {
	tmp, err := os.MkdirTemp("", "autotriage-bench-")
	if err != nil {
		return nil, err
	}
	h := &harness{o: o, logf: logf, tmp: tmp}
	logf("pipeline: training the model on %d resolved tickets of the simulated helpdesk", o.History)
	if err := h.trainModel(ctx); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return h, nil
}

func (h *harness) close() { os.RemoveAll(h.tmp) }

// trainModel trains on the simulator's history read through the Freshdesk
// API, exactly as `autotriage up` makes its starter model.
func (h *harness) trainModel(ctx context.Context) error {
	sim, err := freshdesksim.New(freshdesksim.Config{Seed: 1, Domain: "sim"})
	if err != nil {
		return err
	}
	defer sim.Close()
	if err := sim.Generate(freshdesksim.GenerateOptions{History: h.o.History}); err != nil {
		return err
	}
	srv, url, err := serve(sim)
	if err != nil {
		return err
	}
	defer srv.Close()
	fd := freshdesk.Settings{BaseURL: url, APIKey: "sim-admin-key", Account: "sim", Reserve: 0.2, Timeout: 30 * time.Second, MaxRetries: 4}
	client, err := fd.NewClient(nil, nil, nil)
	if err != nil {
		return err
	}
	ad := freshdesk.NewAdapter(client)
	cat, err := ad.Catalog(ctx)
	if err != nil {
		return err
	}
	ex, err := training.FromHelpdesk(ctx, ad, cat, training.Options{Since: time.Now().AddDate(-1, 0, 0), IgnoreTag: "autotriage"})
	if err != nil {
		return err
	}
	opts := classify.TrainOptions{Seed: 1}
	if h.o.fastTrain {
		opts.Loss, opts.Costs = classify.LossSquaredHinge, []float64{0.5}
	}
	m, err := classify.Train(ctx, ex, opts)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		return err
	}
	h.model = buf.Bytes()
	return nil
}

// serve serves h on a free loopback port.
func serve(h http.Handler) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, "http://" + ln.Addr().String(), nil
}

// scenario is one configuration of the pipeline under test.
type scenario struct {
	name      string
	plan      string
	timeScale float64
	notes     bool
	replicas  int // classifier replicas; 0 = no in-process stages (section 5)
	webhooks  bool
	poll      time.Duration // real time; 0: the fetcher's default (30s)
	overlap   time.Duration // simulated time; 0: the fetcher's default (5s)
	// deferFetch builds the fetcher but starts it only on startFetcher, so
	// a burst can be waiting in the helpdesk when the first poll runs.
	deferFetch bool
	// noReread opts the writer out of its read before each write
	// (AUTOTRIAGE_WRITER_REREAD=false, the credit-saving mode).
	noReread bool
}

// tuningVars are stage settings the bench copies from its own environment
// into every scenario, to measure a setting without editing code (the
// report lists those that were set).
var tuningVars = []string{
	"AUTOTRIAGE_FETCHER_CONCURRENCY", "AUTOTRIAGE_CLASSIFIER_CONCURRENCY", "AUTOTRIAGE_WRITER_CONCURRENCY",
	"AUTOTRIAGE_FETCHER_OVERLAP",
}

// stageConfig is every stage's configuration, read from an environment map
// so the defaults are the binaries' own.
type stageConfig struct {
	platform.Common
	Topology   pipeline.Topology
	Freshdesk  freshdesk.Settings
	Fetcher    fetcher.Config
	Classifier classifier.Config
	Writer     writer.Config
	Triage     triage.Config
}

// env is one running scenario: embedded NATS, simulator, stages.
type env struct {
	h      *harness
	sc     scenario
	dir    string
	srv    *natsserver.Server
	sim    *freshdesksim.Sim
	simSrv *http.Server
	simURL string
	web    *http.Server
	envMap map[string]string
	cfg    stageConfig
	log    *slog.Logger
	logF   *os.File
	// obs observes OUTCOMES as they are published (watchOutcomes).
	obs *pipeline.Conn

	cancel       context.CancelFunc
	wg           sync.WaitGroup
	startFetcher func() // runs the fetcher (deferFetch); nil once started
	rts          []*service.Runtime
	errs         chan error

	mu       sync.Mutex
	created  map[int64]time.Time
	hooked   map[int64]time.Time // webhook received by the fetcher
	outcomes map[int64]outcomeRec
	notify   chan struct{}
}

type outcomeRec struct {
	at      time.Time
	applied bool
	note    bool
	group   string
}

// start brings a scenario up; with sc.replicas > 0 the stages run in this
// process, built by the same constructors as the binaries.
func (h *harness) start(ctx context.Context, sc scenario) (e *env, err error) {
	dir, err := os.MkdirTemp(h.tmp, sc.name+"-")
	if err != nil {
		return nil, err
	}
	e = &env{h: h, sc: sc, dir: dir, errs: make(chan error, 8), created: map[int64]time.Time{},
		hooked: map[int64]time.Time{}, outcomes: map[int64]outcomeRec{}, notify: make(chan struct{}, 1)}
	defer func() {
		if err != nil {
			e.stop()
		}
	}()
	e.logF, err = os.Create(filepath.Join(dir, "bench.log"))
	if err != nil {
		return e, err
	}
	e.log = platform.NewLogger(e.logF, slog.LevelWarn, "bench")
	if e.srv, err = natsserver.Start(natsserver.Options{StoreDir: filepath.Join(dir, "js")}); err != nil {
		return e, err
	}
	// The fetcher's webhook listener is opened first so the simulator can be
	// pointed at it.
	var webLn net.Listener
	hook := freshdesksim.WebhookConfig{}
	if sc.webhooks {
		if webLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return e, err
		}
		hook = freshdesksim.WebhookConfig{URL: "http://" + webLn.Addr().String() + fetcher.WebhookPath, Header: "X-Autotriage-Token", Secret: webhookSecret, Workers: 4}
	}
	e.sim, err = freshdesksim.New(freshdesksim.Config{Seed: 2, Domain: "sim", Plan: sc.plan, TimeScale: sc.timeScale, Webhook: hook})
	if err != nil {
		if webLn != nil {
			webLn.Close()
		}
		return e, err
	}
	if err := e.sim.Generate(freshdesksim.GenerateOptions{}); err != nil { // groups and catalog only
		return e, err
	}
	if e.simSrv, e.simURL, err = serve(e.sim); err != nil {
		return e, err
	}
	e.envMap = map[string]string{
		"NATS_URL":                    e.srv.URL(),
		"FRESHDESK_BASE_URL":          e.simURL,
		"FRESHDESK_API_KEY":           "sim-admin-key",
		"AUTOTRIAGE_ACCOUNT":          "sim",
		"AUTOTRIAGE_LOG_LEVEL":        "warn",
		"AUTOTRIAGE_DEBUG_ADDR":       "127.0.0.1:0",
		"AUTOTRIAGE_POLICY":           benchPolicy,
		"AUTOTRIAGE_WRITER_NOTES":     strconv.FormatBool(sc.notes),
		"AUTOTRIAGE_WEBHOOK_DISABLED": strconv.FormatBool(!sc.webhooks),
		"AUTOTRIAGE_WEBHOOK_ADDR":     "127.0.0.1:0",
		// The backlog runs measure tickets created before the fetcher
		// starts; the default start ("now") would skip them.
		"AUTOTRIAGE_FETCHER_START": "24h",
	}
	for _, k := range tuningVars {
		if v, ok := os.LookupEnv(k); ok {
			e.envMap[k] = v
		}
	}
	if sc.noReread {
		e.envMap["AUTOTRIAGE_WRITER_REREAD"] = "false"
	}
	if sc.poll > 0 {
		e.envMap["AUTOTRIAGE_FETCHER_POLL_INTERVAL"] = sc.poll.String()
	}
	if sc.overlap > 0 {
		e.envMap["AUTOTRIAGE_FETCHER_OVERLAP"] = sc.overlap.String()
	}
	if sc.webhooks {
		e.envMap["AUTOTRIAGE_WEBHOOK_SECRET"] = webhookSecret
		// The simulator's clock may run many times faster than Freshdesk's,
		// and all its webhooks come from 127.0.0.1: the per-source limit,
		// sized for real time, would measure itself instead of the pipeline.
		e.envMap["AUTOTRIAGE_WEBHOOK_RATE"] = "1000000"
		e.envMap["AUTOTRIAGE_WEBHOOK_BURST"] = "1000000"
	}
	if err := platform.LoadConfigFrom(&e.cfg, nil, "bench", "", io.Discard, e.envMap); err != nil {
		if webLn != nil {
			webLn.Close()
		}
		return e, err
	}
	ncfg := pipeline.Config{URL: e.srv.URL(), ConnectWait: 10 * time.Second, Topology: e.cfg.Topology}
	admin, err := service.Start(ctx, "bench", e.cfg.Common, ncfg, io.Discard, service.Options{Log: e.log, NoDebugServer: true})
	if err != nil {
		return e, err
	}
	e.rts = append(e.rts, admin)
	store, err := modelstore.Open(ctx, admin.Conn)
	if err != nil {
		return e, err
	}
	m, err := classify.Load(bytes.NewReader(h.model))
	if err != nil {
		return e, err
	}
	if _, err := store.Put(ctx, m.ID(), modelstore.VersionFromTime(time.Now()), h.model, map[string]string{"source": "bench"}); err != nil {
		return e, err
	}
	if _, err := store.Promote(ctx, m.ID(), "bench"); err != nil {
		return e, err
	}
	if err := e.watchOutcomes(); err != nil {
		return e, err
	}
	if sc.replicas == 0 {
		return e, nil
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	newRT := func(name string) (*service.Runtime, error) {
		rt, err := service.Start(ctx, name, e.cfg.Common, ncfg, io.Discard, service.Options{Log: e.log.With("stage", name), NoDebugServer: true})
		if err == nil {
			e.rts = append(e.rts, rt)
		}
		return rt, err
	}
	run := func(name string, fn func(context.Context) error) {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if err := fn(runCtx); err != nil && runCtx.Err() == nil {
				e.errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	policy, err := triage.ParsePolicy(e.cfg.Triage.Policy)
	if err != nil {
		return e, err
	}
	var classifiers []*classifier.Stage
	for i := range sc.replicas {
		rt, err := newRT(fmt.Sprintf("classifier-%d", i+1))
		if err != nil {
			return e, err
		}
		cls, err := classifier.Build(ctx, rt, e.cfg.Classifier, policy)
		if err != nil {
			return e, err
		}
		classifiers = append(classifiers, cls)
		run("classifier", func(c context.Context) error { return cls.Run(c, rt.Conn) })
	}
	wrt, err := newRT("writer")
	if err != nil {
		return e, err
	}
	wr, err := writer.Build(ctx, wrt, e.cfg.Writer, e.cfg.Freshdesk)
	if err != nil {
		return e, err
	}
	run("writer", func(c context.Context) error { return wr.Run(c, wrt.Conn) })
	frt, err := newRT("fetcher")
	if err != nil {
		return e, err
	}
	if err := e.cfg.Fetcher.Validate(); err != nil {
		return e, err
	}
	fe, err := fetcher.Build(ctx, frt, e.cfg.Fetcher, e.cfg.Freshdesk)
	if err != nil {
		return e, err
	}
	if sc.webhooks {
		e.web = &http.Server{Handler: e.recordHooks(fe.WebhookHandler()), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = e.web.Serve(webLn) }()
	}
	if sc.deferFetch {
		e.startFetcher = func() { run("fetcher", fe.Run) }
	} else {
		run("fetcher", fe.Run)
	}
	// Wait until every classifier has loaded the model.
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range classifiers {
		for c.Ready() != nil {
			if time.Now().After(deadline) {
				return e, fmt.Errorf("classifier not ready: %w", c.Ready())
			}
			if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
				return e, err
			}
		}
	}
	return e, nil
}

// recordHooks notes when each webhook reached the fetcher.
func (e *env) recordHooks(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil {
			if id := webhookTicketID(body); id > 0 {
				e.mu.Lock()
				if _, seen := e.hooked[id]; !seen {
					e.hooked[id] = at
				}
				e.mu.Unlock()
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// webhookTicketID finds "ticket_id":"123" in a webhook body.
func webhookTicketID(b []byte) int64 {
	i := bytes.Index(b, []byte(`"ticket_id"`))
	if i < 0 {
		return 0
	}
	rest := bytes.TrimLeft(b[i+len(`"ticket_id"`):], ` :"`)
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	id, _ := strconv.ParseInt(string(rest[:j]), 10, 64)
	return id
}

// watchOutcomes subscribes to the OUTCOMES subjects (a plain subscription
// sees every message stored in the stream) and records the first decision
// for each ticket.
func (e *env) watchOutcomes() error {
	conn, err := pipeline.Connect(context.Background(), pipeline.Config{URL: e.srv.URL(), ConnectWait: 10 * time.Second},
		"autotriage-bench-outcomes", e.log)
	if err != nil {
		return err
	}
	e.obs = conn
	_, err = conn.Subscribe("outcomes.>", func(m pipeline.RawMsg) {
		at := time.Now()
		var o v1.Outcome
		if proto.Unmarshal(m.Data, &o) != nil || o.GetKind() != v1.OutcomeKind_OUTCOME_KIND_DECISION {
			return
		}
		rec := outcomeRec{at: at, note: o.GetNoteWritten()}
		for _, f := range o.GetFields() {
			if f.GetAction() == v1.Action_ACTION_APPLIED {
				rec.applied = true
			}
			if f.GetField() == "group" {
				rec.group = f.GetLabel()
			}
		}
		e.mu.Lock()
		if _, seen := e.outcomes[o.GetTicketId()]; !seen {
			e.outcomes[o.GetTicketId()] = rec
		}
		e.mu.Unlock()
		select {
		case e.notify <- struct{}{}:
		default:
		}
	})
	return err
}

// addTickets makes n generated tickets arrive in the simulator: all at once
// (rate 0) or rate per real second. The true labels are kept for accuracy.
func (e *env) addTickets(ctx context.Context, gen *helpdeskgen.Generator, n int, rate float64) ([]int64, error) {
	ids := make([]int64, 0, n)
	start := time.Now()
	for i := range n {
		if rate > 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				if err := sleepCtx(ctx, d); err != nil {
					return ids, err
				}
			}
		}
		g := gen.Next()
		l := freshdesksim.Labels{Group: g.Group, Type: g.Type, Priority: g.Priority, Tags: g.Tags, Language: g.Language}
		at := time.Now()
		id, err := e.sim.AddTicket(freshdesksim.NewTicket{
			Subject: g.Subject, Description: g.Description, Email: g.RequesterEmail, Name: g.RequesterName,
			Company: g.Company, Source: g.Source, Labels: &l,
		})
		if err != nil {
			return ids, err
		}
		e.mu.Lock()
		e.created[id] = at
		e.mu.Unlock()
		ids = append(ids, id)
	}
	return ids, nil
}

// waitOutcomes waits until every id has a decision or timeout passes, and
// returns how many have one. A stage that failed ends the wait.
func (e *env) waitOutcomes(ctx context.Context, ids []int64, timeout time.Duration, sample func()) (int, error) {
	deadline := time.After(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		done := e.countDone(ids)
		if done == len(ids) {
			return done, nil
		}
		select {
		case <-ctx.Done():
			return done, ctx.Err()
		case err := <-e.errs:
			return done, err
		case <-deadline:
			return done, nil
		case <-e.notify:
		case <-tick.C:
			if sample != nil {
				sample()
			}
		}
	}
}

func (e *env) countDone(ids []int64) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := e.outcomes[id]; ok {
			n++
		}
	}
	return n
}

// stop tears the scenario down in reverse order.
func (e *env) stop() {
	if e.cancel != nil {
		e.cancel()
	}
	e.wg.Wait()
	if e.web != nil {
		ctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		_ = e.web.Shutdown(ctx)
		c()
	}
	for i := len(e.rts) - 1; i >= 0; i-- {
		_ = e.rts[i].Stop()
	}
	if e.obs != nil {
		e.obs.Close()
	}
	if e.sim != nil {
		_ = e.sim.Close()
	}
	if e.simSrv != nil {
		_ = e.simSrv.Close()
	}
	if e.srv != nil {
		e.srv.Stop()
	}
	if e.logF != nil {
		e.logF.Close()
	}
	if e.dir != "" {
		os.RemoveAll(e.dir)
	}
}

// endpointsCredits flattens the simulator's per-endpoint credit counters.
func endpointsCredits(st freshdesksim.Stats) map[string]int64 {
	out := map[string]int64{}
	for k, v := range st.Endpoints {
		if v.Credits > 0 {
			out[k] = v.Credits
		}
	}
	return out
}

func sortedKeys(m map[string]int64) []string { return slices.Sorted(maps.Keys(m)) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
