package pipelinetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/fetcher"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

const (
	system    = "freshdesk"
	account   = "e2e"
	apiKey    = "sim-admin-key"
	hookHdr   = "X-Autotriage-Token"
	secret    = "e2e-webhook-secret-0123456789"
	badSecret = "not-the-webhook-secret-987654"
	tag       = "autotriage"
	simSeed   = 11
)

// binDir holds the stage binaries built by TestMain ("" under -short or
// when the build failed; buildErr says why).
var (
	binDir   string
	buildErr error
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "autotriage-pipelinetest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipelinetest:", err)
		os.Exit(2)
	}
	buildErr = buildStages(dir)
	if buildErr == nil {
		binDir = dir
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildStages builds the three stage binaries and the operator CLI (which
// trains the model) into dir, without -race: the stage code is race-tested
// in its own packages, and training under the race detector is slow.
func buildStages(dir string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("no go command: %w", err)
	}
	const mod = "github.com/autotriage/autotriage/services/"
	cmd := exec.Command(gobin, "build", "-o", dir+string(os.PathSeparator), mod+"fetcher", mod+"classifier", mod+"writer", mod+"autotriage")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build the stages: %w\n%s", err, out)
	}
	return nil
}

// requireE2E skips under -short and fails when the binaries did not build.
func requireE2E(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("pipelinetest: end-to-end tests with real processes are skipped under -short")
	}
	if buildErr != nil {
		t.Fatalf("pipelinetest: %v", buildErr)
	}
}

// ---------------------------------------------------------------------------
// The model: trained once per test binary on a simulated helpdesk's resolved
// history (the same catalog as every test's simulator), then stored and
// promoted in each test's JetStream.

var (
	modelOnce  sync.Once
	modelBytes []byte
	modelID    string
	modelErr   error
)

func trainedModel(t *testing.T) ([]byte, string) {
	t.Helper()
	modelOnce.Do(func() { modelBytes, modelID, modelErr = trainModel() })
	if modelErr != nil {
		t.Fatalf("train the model: %v", modelErr)
	}
	return modelBytes, modelID
}

func trainModel() ([]byte, string, error) {
	sim, err := freshdesksim.New(freshdesksim.Config{Seed: simSeed})
	if err != nil {
		return nil, "", err
	}
	defer sim.Close()
	if err := sim.Generate(freshdesksim.GenerateOptions{History: 1200}); err != nil {
		return nil, "", err
	}
	hs := httptest.NewServer(sim)
	defer hs.Close()
	out := filepath.Join(binDir, "model.bin")
	cmd := exec.Command(filepath.Join(binDir, "autotriage"), "train", "--from-helpdesk", "--out", out, "--seed", "1", "--ignore-tag", tag)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"FRESHDESK_BASE_URL=" + hs.URL, "FRESHDESK_API_KEY=" + apiKey, "AUTOTRIAGE_ACCOUNT=train"}
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("autotriage train: %w\n%s", err, b)
	}
	body, err := os.ReadFile(out)
	if err != nil {
		return nil, "", err
	}
	m, err := classify.Load(bytes.NewReader(body))
	if err != nil {
		return nil, "", fmt.Errorf("load the trained model: %w", err)
	}
	return body, m.ID(), nil
}

// ---------------------------------------------------------------------------
// The environment of one test.

type envOptions struct {
	Plan      string
	TimeScale float64
	// NoWebhooks leaves the simulator without a webhook target.
	NoWebhooks bool
	// Extra environment for every stage (NAME=value).
	Env map[string]string
}

type env struct {
	t       *testing.T
	ctx     context.Context
	nats    *natstest.AuthServer
	conn    *pipeline.Conn
	sim     *freshdesksim.Sim
	simURL  string
	hook    *hookProxy
	start   time.Time // AUTOTRIAGE_FETCHER_START
	stages  map[string]*proc
	baseEnv map[string]string
	lists   *listRecorder
	logDir  string
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	requireE2E(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, stages: map[string]*proc{}, lists: &listRecorder{}, logDir: t.TempDir()}
	// Every stage connects with its own least-privilege identity, as
	// shipped: the whole suite is the proof that each does its job with
	// only its permissions (checked at the end of every test).
	e.nats = natstest.StartAuth(t, "")
	t.Cleanup(func() {
		if v := e.nats.Violations(); len(v) > 0 {
			t.Errorf("broker permission violations during the test (a stage needs a permission its role lacks):\n%s", strings.Join(head(v, 20), "\n"))
		}
	})
	conn, err := pipeline.Connect(ctx, e.nats.Config(pipeline.RoleAdmin, e.topology()), "pipelinetest", nil)
	if err != nil {
		t.Fatalf("connect to NATS: %v", err)
	}
	t.Cleanup(conn.Close)
	if err := conn.EnsureTopology(ctx); err != nil {
		t.Fatalf("ensure topology: %v", err)
	}
	e.conn = conn

	webhookAddr := freeAddr(t)
	e.hook = newHookProxy(t, "http://"+webhookAddr+fetcher.WebhookPath)
	simCfg := freshdesksim.Config{Seed: simSeed, Plan: o.Plan, TimeScale: o.TimeScale, Domain: account}
	if !o.NoWebhooks {
		simCfg.Webhook = freshdesksim.WebhookConfig{URL: e.hook.url(), Header: hookHdr, Secret: secret, Workers: 4}
	}
	sim, err := freshdesksim.New(simCfg)
	if err != nil {
		t.Fatalf("simulator: %v", err)
	}
	// The catalog (groups) exists before any stage reads it; tickets
	// arrive later.
	if err := sim.Generate(freshdesksim.GenerateOptions{}); err != nil {
		t.Fatalf("simulator: %v", err)
	}
	e.sim = sim
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: e.lists.wrap(sim), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	e.simURL = "http://" + ln.Addr().String()
	t.Cleanup(func() {
		_ = hs.Close()
		_ = sim.Close()
	})

	body, id := trainedModel(t)
	store, err := modelstore.Open(ctx, conn)
	if err != nil {
		t.Fatalf("model store: %v", err)
	}
	if _, err := store.Put(ctx, id, "e2e", body, map[string]string{"source": "pipelinetest"}); err != nil {
		t.Fatalf("store the model: %v", err)
	}
	if _, err := store.Promote(ctx, id, "pipelinetest"); err != nil {
		t.Fatalf("promote the model: %v", err)
	}

	e.start = time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Second)
	e.baseEnv = map[string]string{
		"NATS_URL":                         e.nats.URL(),
		"AUTOTRIAGE_NATS_CONNECT_WAIT":     "20s",
		"FRESHDESK_BASE_URL":               e.simURL,
		"FRESHDESK_API_KEY":                apiKey,
		"AUTOTRIAGE_ACCOUNT":               account,
		"AUTOTRIAGE_LOG_LEVEL":             "info",
		"AUTOTRIAGE_SHUTDOWN_TIMEOUT":      "5s",
		"AUTOTRIAGE_ACK_WAIT":              "3s",
		"AUTOTRIAGE_MAX_DELIVER":           "20",
		"AUTOTRIAGE_WEBHOOK_ADDR":          webhookAddr,
		"AUTOTRIAGE_WEBHOOK_SECRET":        secret,
		"AUTOTRIAGE_WEBHOOK_HEADER":        hookHdr,
		"AUTOTRIAGE_FETCHER_POLL_INTERVAL": "1s",
		"AUTOTRIAGE_FETCHER_OVERLAP":       "2s",
		"AUTOTRIAGE_FETCHER_LEASE_TTL":     "2s",
		"AUTOTRIAGE_FETCHER_START":         e.start.Format(time.RFC3339),
		"AUTOTRIAGE_WRITER_NOTE_LEASE":     "4s",
		"AUTOTRIAGE_FRESHDESK_TIMEOUT":     "10s",
		"AUTOTRIAGE_POLICY":                "group=apply:0.6,type=apply:0.6,priority=suggest,tags=shadow",
		// The scenarios post webhooks from 127.0.0.1 faster than a whole
		// Freshdesk account can (150 tickets/s against at most ~33/s): the
		// per-source limit would turn them into 429s.
		"AUTOTRIAGE_WEBHOOK_RATE":  "1000000",
		"AUTOTRIAGE_WEBHOOK_BURST": "1000000",
	}
	for k, v := range o.Env {
		e.baseEnv[k] = v
	}
	return e
}

func (e *env) topology() pipeline.Topology {
	tp := pipeline.DefaultTopology()
	tp.AckWait = 3 * time.Second
	tp.MaxDeliver = 20
	return tp
}

// startStage starts (or restarts) one stage binary with the environment's
// settings plus extra.
func (e *env) startStage(name string, extra ...string) *proc {
	e.t.Helper()
	if p := e.stages[name]; p != nil && p.alive() {
		e.t.Fatalf("stage %s is already running", name)
	}
	vars := map[string]string{}
	for k, v := range e.baseEnv {
		vars[k] = v
	}
	vars["AUTOTRIAGE_DEBUG_ADDR"] = freeAddr(e.t)
	vars["NATS_NKEY_FILE"] = e.nats.SeedFile(name)
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	p := startProc(e.t, name, filepath.Join(binDir, name), vars, e.logDir)
	e.stages[name] = p
	p.waitReady(e.t, 30*time.Second)
	return p
}

func (e *env) startAll() {
	e.t.Helper()
	e.startStage("fetcher")
	e.startStage("classifier")
	e.startStage("writer")
}

// ---------------------------------------------------------------------------
// Child processes.

type proc struct {
	name    string
	cmd     *exec.Cmd
	debug   string
	logPath string
	done    chan struct{}
	exitErr error
}

func startProc(t *testing.T, name, bin string, vars map[string]string, logDir string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(logDir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, debug: vars["AUTOTRIAGE_DEBUG_ADDR"], logPath: logPath, done: make(chan struct{})}
	go func() {
		p.exitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- log of %s (pid %d), last lines:\n%s", name, cmd.Process.Pid, tail(logPath, 40))
			if dir := os.Getenv("AUTOTRIAGE_E2E_LOGS"); dir != "" {
				if b, err := os.ReadFile(logPath); err == nil {
					_ = os.WriteFile(filepath.Join(dir, t.Name()+"-"+filepath.Base(logPath)), b, 0o644)
				}
			}
		}
	})
	return p
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill ends the process with SIGKILL: no graceful shutdown.
func (p *proc) kill() {
	if p.alive() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// stop ends the process with SIGTERM and waits for its drain.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if !p.alive() {
		t.Fatalf("%s exited early: %v\n%s", p.name, p.exitErr, tail(p.logPath, 20))
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
		t.Fatalf("%s did not stop within 20s of SIGTERM", p.name)
	}
}

func (p *proc) get(path string) (int, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.debug + path)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitReady waits until the process answers /readyz with 200.
func (p *proc) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	eventually(t, within, p.name+" ready", func() (bool, string) {
		if !p.alive() {
			t.Fatalf("%s exited at start: %v\n%s", p.name, p.exitErr, tail(p.logPath, 20))
		}
		code, err := p.get("/readyz")
		return err == nil && code == http.StatusOK, fmt.Sprintf("readyz %d %v", code, err)
	})
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		// The refused webhooks of TestWebhookAndPoll would fill the tail.
		if !strings.Contains(l, "bad or missing credentials") {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---------------------------------------------------------------------------
// Webhook proxy: the simulator posts here; the proxy forwards to the
// fetcher, with the wrong secret for tickets reject selects, so those
// webhooks really fail (401) and polling must catch the tickets.

type hookProxy struct {
	srv    *httptest.Server
	target string
	client *http.Client

	mu       sync.Mutex
	reject   func(id int64) bool
	drop     bool
	statuses map[int64][]int // ticket id -> statuses the fetcher answered
	inFlight atomic.Int64    // webhooks forwarded and not answered yet
}

func newHookProxy(t *testing.T, target string) *hookProxy {
	h := &hookProxy{target: target, client: &http.Client{Timeout: 30 * time.Second}, statuses: map[int64][]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookProxy) url() string { return h.srv.URL + fetcher.WebhookPath }

func (h *hookProxy) setReject(f func(id int64) bool) {
	h.mu.Lock()
	h.reject = f
	h.mu.Unlock()
}

// setDrop makes the proxy answer 503 without forwarding anything.
func (h *hookProxy) setDrop(drop bool) {
	h.mu.Lock()
	h.drop = drop
	h.mu.Unlock()
}

func (h *hookProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ev struct {
		W struct {
			TicketID string `json:"ticket_id"`
		} `json:"freshdesk_webhook"`
	}
	_ = json.Unmarshal(body, &ev)
	id, _ := strconv.ParseInt(ev.W.TicketID, 10, 64)
	h.mu.Lock()
	drop, reject := h.drop, h.reject != nil && h.reject(id)
	h.mu.Unlock()
	if drop {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, h.target, bytes.NewReader(body))
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	req.Header = r.Header.Clone()
	if reject {
		req.Header.Set(hookHdr, badSecret)
	}
	h.inFlight.Add(1)
	resp, err := h.client.Do(req)
	h.inFlight.Add(-1)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	h.mu.Lock()
	h.statuses[id] = append(h.statuses[id], resp.StatusCode)
	h.mu.Unlock()
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(rb)
}

func (h *hookProxy) statusesOf(id int64) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.statuses[id])
}

// ---------------------------------------------------------------------------
// listRecorder wraps the simulator's handler and records the updated_since
// and page of every tickets list request, and how many are in flight.

type listCall struct {
	since time.Time
	page  int
	at    time.Time
}

type listRecorder struct {
	mu       sync.Mutex
	calls    []listCall
	inFlight atomic.Int64
}

func (l *listRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/api/v2/tickets" {
			q := r.URL.Query()
			since, _ := time.Parse(time.RFC3339, q.Get("updated_since"))
			page, _ := strconv.Atoi(q.Get("page"))
			if page == 0 {
				page = 1
			}
			l.mu.Lock()
			l.calls = append(l.calls, listCall{since: since, page: page, at: time.Now()})
			l.mu.Unlock()
			l.inFlight.Add(1)
			defer l.inFlight.Add(-1)
		}
		h.ServeHTTP(w, r)
	})
}

func (l *listRecorder) snapshot() []listCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// ---------------------------------------------------------------------------
// Reading the streams.

// outcomeLog reads OUTCOMES incrementally.
type outcomeLog struct {
	e    *env
	next uint64
	all  []*v1.Outcome
}

func (e *env) outcomes() *outcomeLog { return &outcomeLog{e: e, next: 1} }

// refresh reads the outcomes published since the last call.
func (o *outcomeLog) refresh() {
	o.e.t.Helper()
	_, err := o.e.conn.Read(o.e.ctx, pipeline.ReadOptions{Stream: pipeline.StreamOutcomes, StartSeq: o.next, Idle: 3 * time.Second}, func(m pipeline.RawMsg) error {
		var out v1.Outcome
		if err := proto.Unmarshal(m.Data, &out); err != nil {
			return fmt.Errorf("outcome seq %d: %w", m.Sequence, err)
		}
		o.all = append(o.all, &out)
		o.next = m.Sequence + 1
		return nil
	})
	if err != nil {
		o.e.t.Fatalf("read OUTCOMES: %v", err)
	}
}

// decisions groups the decision outcomes by ticket, in stream order.
func (o *outcomeLog) decisions() map[int64][]*v1.Outcome {
	m := map[int64][]*v1.Outcome{}
	for _, out := range o.all {
		if out.Kind == v1.OutcomeKind_OUTCOME_KIND_DECISION {
			m[out.TicketId] = append(m[out.TicketId], out)
		}
	}
	return m
}

// waitAll waits until every ticket of ids has a decision outcome.
func (o *outcomeLog) waitAll(t *testing.T, ids []int64, within time.Duration) map[int64][]*v1.Outcome {
	t.Helper()
	var d map[int64][]*v1.Outcome
	eventually(t, within, "an outcome for every ticket", func() (bool, string) {
		o.refresh()
		d = o.decisions()
		var missing []int64
		for _, id := range ids {
			if len(d[id]) == 0 {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0, fmt.Sprintf("%d of %d tickets without an outcome, e.g. %v", len(missing), len(ids), head(missing, 10))
	})
	return d
}

// waitIdle waits until the classifier and the writer have acknowledged
// every message of their streams, so what was published so far has had its
// outcome.
func (e *env) waitIdle(t *testing.T, within time.Duration) {
	t.Helper()
	eventually(t, within, "the classifier and the writer idle", func() (bool, string) {
		var state []string
		idle := true
		for _, c := range []struct{ stream, durable string }{
			{pipeline.StreamTickets, pipeline.ConsumerClassifier},
			{pipeline.StreamPredictions, pipeline.ConsumerWriter},
		} {
			st, err := e.conn.ConsumerStats(e.ctx, c.stream, c.durable)
			if err != nil {
				return false, err.Error()
			}
			idle = idle && st.Pending == 0 && st.AckPending == 0
			state = append(state, fmt.Sprintf("%s: %d pending, %d unacknowledged", c.durable, st.Pending, st.AckPending))
		}
		return idle, strings.Join(state, "; ")
	})
}

// readTickets returns the TICKETS messages, decoded, in stream order.
func (e *env) readTickets() []*v1.Ticket {
	e.t.Helper()
	var out []*v1.Ticket
	_, err := e.conn.Read(e.ctx, pipeline.ReadOptions{Stream: pipeline.StreamTickets, Idle: 3 * time.Second}, func(m pipeline.RawMsg) error {
		var tk v1.Ticket
		if err := proto.Unmarshal(m.Data, &tk); err != nil {
			return err
		}
		out = append(out, &tk)
		return nil
	})
	if err != nil {
		e.t.Fatalf("read TICKETS: %v", err)
	}
	return out
}

// readPredictions returns the PREDICTIONS messages, decoded.
func (e *env) readPredictions() []*v1.Prediction {
	e.t.Helper()
	var out []*v1.Prediction
	_, err := e.conn.Read(e.ctx, pipeline.ReadOptions{Stream: pipeline.StreamPredictions, Idle: 3 * time.Second}, func(m pipeline.RawMsg) error {
		var p v1.Prediction
		if err := proto.Unmarshal(m.Data, &p); err != nil {
			return err
		}
		out = append(out, &p)
		return nil
	})
	if err != nil {
		e.t.Fatalf("read PREDICTIONS: %v", err)
	}
	return out
}

// streamCount is the number of messages in a stream.
func (e *env) streamCount(stream string) uint64 {
	e.t.Helper()
	r, err := e.conn.CountRange(e.ctx, pipeline.ReadOptions{Stream: stream})
	if err != nil {
		e.t.Fatalf("count %s: %v", stream, err)
	}
	return r.Count
}

// cursor reads the fetcher's polling cursor from KV.
func (e *env) cursor() (fetcher.Cursor, bool) {
	e.t.Helper()
	kv, err := e.conn.KV(e.ctx, pipeline.BucketFetcher)
	if err != nil {
		e.t.Fatalf("fetcher bucket: %v", err)
	}
	ent, err := kv.Get(e.ctx, fetcher.CursorKey(system, account))
	if errors.Is(err, pipeline.ErrNotFound) {
		return fetcher.Cursor{}, false
	}
	if err != nil {
		e.t.Fatalf("read the cursor: %v", err)
	}
	var c fetcher.Cursor
	if err := json.Unmarshal(ent.Value, &c); err != nil {
		e.t.Fatalf("decode the cursor %q: %v", ent.Value, err)
	}
	return c, true
}

// seen reads the newest version of a ticket autotriage observed.
func (e *env) seen(id int64) (ledger.Seen, bool) {
	e.t.Helper()
	kv, err := e.conn.KV(e.ctx, pipeline.BucketWriter)
	if err != nil {
		e.t.Fatalf("writer bucket: %v", err)
	}
	s, err := ledger.New(kv).GetSeen(e.ctx, system, account, id)
	if errors.Is(err, ledger.ErrNotFound) || errors.Is(err, pipeline.ErrNotFound) {
		return ledger.Seen{}, false
	}
	if err != nil {
		e.t.Fatalf("read the seen record of %d: %v", id, err)
	}
	return s, true
}

// applied reads the ledger's record of autotriage's writes to a ticket.
func (e *env) applied(id int64) (ledger.Applied, bool) {
	e.t.Helper()
	kv, err := e.conn.KV(e.ctx, pipeline.BucketWriter)
	if err != nil {
		e.t.Fatalf("writer bucket: %v", err)
	}
	a, err := ledger.New(kv).GetApplied(e.ctx, system, account, id)
	if err != nil {
		return ledger.Applied{}, false
	}
	return a, true
}

// ---------------------------------------------------------------------------
// Tickets.

// arrive makes n generated untriaged tickets arrive at rate per second and
// returns their ids once all exist.
func (e *env) arrive(n int, rate float64) []int64 {
	e.t.Helper()
	return e.arriveAsync(n, rate)()
}

// arriveAsync starts n arrivals at rate per second; the returned function
// waits for them all and returns their ids.
func (e *env) arriveAsync(n int, rate float64) func() []int64 {
	e.t.Helper()
	before := len(e.sim.TicketIDs())
	if err := e.sim.Generate(freshdesksim.GenerateOptions{ArrivalRate: rate, Arrivals: n}); err != nil {
		e.t.Fatalf("generate arrivals: %v", err)
	}
	return func() []int64 {
		e.t.Helper()
		var ids []int64
		eventually(e.t, time.Duration(float64(n)/rate*float64(time.Second))+30*time.Second, "tickets arrived", func() (bool, string) {
			all := e.sim.TicketIDs()
			ids = all[before:]
			return len(ids) >= n, fmt.Sprintf("%d of %d arrived", len(ids), n)
		})
		return ids[:n]
	}
}

// ---------------------------------------------------------------------------
// Helpers.

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// eventually polls cond until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %s", within, what, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func head[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func fieldOf(o *v1.Outcome, name string) *v1.FieldOutcome {
	for _, f := range o.Fields {
		if f.Field == name {
			return f
		}
	}
	return nil
}

func predFieldOf(p *v1.Prediction, name string) *v1.FieldPrediction {
	for _, f := range p.GetFields() {
		if f.Field == name {
			return f
		}
	}
	return nil
}

// logPolls logs, after a failure, what the polls asked for and where the
// tickets without an outcome were, to tell a missed poll from a lost message.
func (e *env) logPolls(ids []int64) {
	calls := e.lists.snapshot()
	var b strings.Builder
	for _, c := range head(calls, 400) {
		fmt.Fprintf(&b, "%s since=%s page=%d\n", c.at.Format("15:04:05.000"), c.since.Format("15:04:05"), c.page)
	}
	e.t.Logf("tickets list calls (%d):\n%s", len(calls), b.String())
	cur, _ := e.cursor()
	e.t.Logf("cursor %+v", cur)
	d := e.outcomes()
	d.refresh()
	got := d.decisions()
	inTickets := map[int64]bool{}
	for _, tk := range e.readTickets() {
		inTickets[tk.Id] = true
	}
	inPreds := map[int64]bool{}
	for _, p := range e.readPredictions() {
		inPreds[p.TicketId] = true
	}
	for _, id := range ids {
		if len(got[id]) > 0 {
			continue
		}
		tk, _ := e.sim.Ticket(id)
		e.t.Logf("ticket %d without outcome: created %s updated %s, in TICKETS %v, in PREDICTIONS %v, webhook statuses %v",
			id, tk.CreatedAt.Format("15:04:05"), tk.UpdatedAt.Format("15:04:05"), inTickets[id], inPreds[id], e.hook.statusesOf(id))
	}
}
