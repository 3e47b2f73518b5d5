package allinone_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/allinone"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/platform"
)

// loadUp is the configuration `autotriage up` reads from env.
func loadUp(t *testing.T, env map[string]string) allinone.Config {
	t.Helper()
	var cfg allinone.Config
	if err := platform.LoadConfigFrom(&cfg, nil, "up", "", io.Discard, env); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// upRun is one `autotriage up` running in the background.
type upRun struct {
	out    *syncBuffer
	cancel context.CancelFunc
	done   chan error
	ready  chan allinone.Addrs
}

func startUp(t *testing.T, cfg allinone.Config, o allinone.Options) *upRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &upRun{out: &syncBuffer{}, cancel: cancel, done: make(chan error, 1), ready: make(chan allinone.Addrs, 1)}
	o.Stdout = r.out
	o.Ready = func(a allinone.Addrs) { r.ready <- a }
	go func() { r.done <- allinone.Start(ctx, cfg, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(time.Minute):
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(cfg.DataDir, "autotriage.log"))
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("last lines of autotriage.log:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	return r
}

// waitReady returns the addresses once every stage runs.
func (r *upRun) waitReady(t *testing.T) allinone.Addrs {
	t.Helper()
	select {
	case a := <-r.ready:
		return a
	case err := <-r.done:
		t.Fatalf("up stopped early: %v\n%s", err, r.out.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("up not ready:\n%s", r.out.String())
	}
	return allinone.Addrs{}
}

// stop cancels up and returns its error.
func (r *upRun) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(time.Minute):
		t.Fatal("up did not stop after cancel")
	}
	return nil
}

// anyPort keeps the host of a listen address and lets the system pick the
// port, so the test binds where the default says without a fixed port.
func anyPort(t *testing.T, addr string) string {
	t.Helper()
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return net.JoinHostPort(h, "0")
}

// listening returns the local address of every TCP socket of this process
// in LISTEN state, from /proc/net/tcp and tcp6 (sockets matched to the
// process through /proc/self/fd).
func listening(t *testing.T) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	mine := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			if file == "/proc/net/tcp6" && errors.Is(err, os.ErrNotExist) {
				continue // IPv6 disabled
			}
			t.Fatalf("read %s: %v", file, err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !mine[f[9]] { // 0A: TCP_LISTEN
				continue
			}
			hexIP, hexPort, _ := strings.Cut(f[1], ":")
			raw, err := hex.DecodeString(hexIP)
			if err != nil || (len(raw) != 4 && len(raw) != 16) {
				t.Fatalf("%s: bad address %q", file, f[1])
			}
			// The kernel prints each 32-bit word in host (little-endian) order.
			for i := 0; i < len(raw); i += 4 {
				raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
			}
			port, _ := strconv.ParseUint(hexPort, 16, 16)
			out = append(out, net.JoinHostPort(net.IP(raw).String(), strconv.FormatUint(port, 10)))
		}
	}
	return out
}

// `autotriage up` with its default addresses (the ports moved to free ones)
// binds every listener — embedded NATS, simulator, webhooks, debug — on
// loopback, and nothing of the process listens on a wildcard address; the
// debug server serves no profiles without AUTOTRIAGE_PPROF.
func TestUpBindsLoopbackOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model and runs every stage")
	}
	cfg := loadUp(t, map[string]string{
		"AUTOTRIAGE_DATA_DIR":         t.TempDir(),
		"AUTOTRIAGE_SIM_HISTORY":      "200",
		"AUTOTRIAGE_SIM_NEW":          "5",
		"AUTOTRIAGE_SIM_ARRIVAL_RATE": "1",
		"AUTOTRIAGE_SHUTDOWN_TIMEOUT": shutdownBudget.String(),
	})
	defaults := map[string]*string{
		"AUTOTRIAGE_NATS_ADDR":    &cfg.NATSAddr,
		"AUTOTRIAGE_SIM_ADDR":     &cfg.Sim.Addr,
		"AUTOTRIAGE_WEBHOOK_ADDR": &cfg.Fetcher.WebhookAddr,
		"AUTOTRIAGE_DEBUG_ADDR":   &cfg.DebugAddr,
	}
	for name, addr := range defaults {
		if h, _, err := net.SplitHostPort(*addr); err != nil || h != "127.0.0.1" {
			t.Errorf("%s defaults to %q, want 127.0.0.1:<port>", name, *addr)
		}
		*addr = anyPort(t, *addr)
	}
	if cfg.Pprof {
		t.Fatal("AUTOTRIAGE_PPROF defaults to true")
	}
	before := map[string]bool{}
	for _, a := range listening(t) {
		before[a] = true
	}
	r := startUp(t, cfg, allinone.Options{})
	addrs := r.waitReady(t)

	want := []string{"nats", "freshdesk-sim", "webhook", "debug"}
	if len(addrs.Listeners) != len(want) {
		t.Errorf("up reports listeners %v, want %v", addrs.Listeners, want)
	}
	for _, name := range want {
		a, ok := addrs.Listeners[name]
		h, _, err := net.SplitHostPort(a)
		if !ok || err != nil || !net.ParseIP(h).IsLoopback() {
			t.Errorf("listener %s bound %q, want a loopback address", name, a)
		}
	}
	var started []string
	for _, a := range listening(t) {
		if !before[a] {
			started = append(started, a)
		}
	}
	for _, a := range started {
		h, _, _ := net.SplitHostPort(a)
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			t.Errorf("the process listens on %s, not on loopback (listening: %v)", a, started)
		}
	}
	for name, a := range addrs.Listeners {
		found := false
		for _, s := range started {
			found = found || s == a
		}
		if !found {
			t.Errorf("listener %s (%s) not among the process's LISTEN sockets %v", name, a, started)
		}
	}
	// /proc/net saw every socket up opened: no listener escaped the report.
	if len(started) != len(addrs.Listeners) {
		t.Errorf("the process opened %d listening sockets %v, up reports %d: %v", len(started), started, len(addrs.Listeners), addrs.Listeners)
	}

	for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap"} {
		resp, err := http.Get("http://" + addrs.Debug + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s on the debug server: %d, want 404 without AUTOTRIAGE_PPROF", p, resp.StatusCode)
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("up returned %v", err)
	}
}

// realAccount is the simulator posing as a real Freshdesk account: up sees
// FRESHDESK_BASE_URL set and treats it as one (no demo policy, no demo
// start, its store kept, no history read unasked).
type realAccount struct {
	sim *freshdesksim.Sim
	url string
}

func startRealAccount(t *testing.T) *realAccount {
	t.Helper()
	s, err := freshdesksim.New(freshdesksim.Config{Seed: 3, Domain: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Generate(freshdesksim.GenerateOptions{History: 300, New: 12}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &realAccount{sim: s, url: hs.URL}
}

func (ra *realAccount) config(t *testing.T, dataDir string) allinone.Config {
	t.Helper()
	cfg := loadUp(t, map[string]string{
		"AUTOTRIAGE_DATA_DIR":              dataDir,
		"AUTOTRIAGE_NATS_ADDR":             "127.0.0.1:0",
		"AUTOTRIAGE_WEBHOOK_ADDR":          "127.0.0.1:0",
		"AUTOTRIAGE_DEBUG_ADDR":            "127.0.0.1:0",
		"AUTOTRIAGE_WEBHOOK_SECRET":        "0123456789abcdef-test-secret",
		"AUTOTRIAGE_FETCHER_POLL_INTERVAL": "300ms",
		"AUTOTRIAGE_SUMMARY_EVERY":         "500ms",
		"AUTOTRIAGE_SHUTDOWN_TIMEOUT":      shutdownBudget.String(),
		"FRESHDESK_BASE_URL":               ra.url,
		"FRESHDESK_API_KEY":                "sim-admin-key",
		// Every group is applied, so a triaged ticket is visible in the
		// helpdesk.
		"AUTOTRIAGE_POLICY": "group=apply:0.01,priority=shadow,type=shadow,tags=shadow",
	})
	return cfg
}

// ticketsUpdatedSince counts the simulator's tickets a search for
// updated_at >= the day of since finds.
func (ra *realAccount) ticketsUpdatedSince(since time.Time) int {
	day := since.UTC().Truncate(24 * time.Hour)
	n := 0
	for _, id := range ra.sim.TicketIDs() {
		if tk, ok := ra.sim.Ticket(id); ok && !tk.UpdatedAt.Before(day) {
			n++
		}
	}
	return n
}

// Against a real account with no model promoted, up reads no history: it
// stops with exit code 2, saying how many tickets and credits training
// would cost and which flag allows it. With --train-from-history it trains
// and runs; a later start finds the promoted model and needs no flag. And
// the first start triages only tickets created from then on: the waiting
// ones stay untouched, also when a person updates one, while a new ticket
// is triaged.
func TestUpAgainstARealAccount(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model and runs every stage")
	}
	ra := startRealAccount(t)
	dataDir := t.TempDir()
	waiting := ra.sim.TicketIDs()

	// No model, no flag: refused before any history is listed.
	cfg := ra.config(t, dataDir)
	r := startUp(t, cfg, allinone.Options{PolicyExplicit: true})
	var err error
	select {
	case err = <-r.done:
		r.done <- err
	case a := <-r.ready:
		t.Fatalf("up started against a real account without a model or %s (addresses %v)", allinone.FlagTrainFromHistory, a)
	case <-time.After(2 * time.Minute):
		t.Fatalf("up neither refused nor started:\n%s", r.out.String())
	}
	var refused *allinone.TrainingRefused
	if !errors.As(err, &refused) {
		t.Fatalf("up returned %v, want a TrainingRefused", err)
	}
	var ce *platform.ConfigError
	if !errors.As(err, &ce) {
		t.Errorf("the refusal %v is not a configuration error (exit code 2)", err)
	}
	wantTickets := ra.ticketsUpdatedSince(refused.Cost.Since)
	msg := err.Error()
	for _, want := range []string{
		fmt.Sprintf("about %d tickets", wantTickets),
		fmt.Sprintf("about %d credits", (wantTickets+99)/100*3+2),
		allinone.FlagTrainFromHistory,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the refusal does not say %q: %s", want, msg)
		}
	}
	if n := ra.sim.Stats().Endpoints["tickets.list"].Calls; n != 0 {
		t.Errorf("up listed tickets %d times before refusing", n)
	}

	// With the flag: trained on the history, then only new tickets.
	r = startUp(t, ra.config(t, dataDir), allinone.Options{PolicyExplicit: true, TrainFromHistory: true})
	addrs := r.waitReady(t)
	if out := r.out.String(); !strings.Contains(out, "trained on") || !strings.Contains(out, "credits") {
		t.Errorf("output lacks the cost and the training:\n%s", out)
	}
	if err := ra.sim.AgentUpdate(waiting[0], map[string]any{"priority": 3}); err != nil {
		t.Fatal(err)
	}
	fresh, err := ra.sim.AddTicket(freshdesksim.NewTicket{Subject: "Invoice twice", Description: "I was charged twice for my subscription this month, please refund one payment."})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		tk, _ := ra.sim.Ticket(fresh)
		if containsTag(tk.Tags, "autotriage") && filtered(t, addrs.Debug, "before_start") >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new ticket was not triaged (tags %v) or the updated waiting ticket not skipped (before_start %v):\n%s",
				tk.Tags, filtered(t, addrs.Debug, "before_start"), r.out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, id := range waiting {
		if tk, _ := ra.sim.Ticket(id); containsTag(tk.Tags, "autotriage") || len(ra.sim.Notes(id)) > 0 {
			t.Errorf("ticket %d, created before the first start, was written to (tags %v, %d notes)", id, tk.Tags, len(ra.sim.Notes(id)))
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("up returned %v", err)
	}

	// A model is promoted now: no flag needed, no history read.
	searches := ra.sim.Stats().Endpoints["search"].Calls
	r = startUp(t, ra.config(t, dataDir), allinone.Options{PolicyExplicit: true})
	r.waitReady(t)
	if out := r.out.String(); strings.Contains(out, "trained on") || !strings.Contains(out, "model: ") {
		t.Errorf("the restart trained again or found no model:\n%s", out)
	}
	if n := ra.sim.Stats().Endpoints["search"].Calls; n != searches {
		t.Errorf("the restart with a promoted model counted the history (%d searches)", n-searches)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("up returned %v", err)
	}
}

// filtered reads autotriage_fetcher_tickets_filtered_total{reason} from /metrics.
func filtered(t *testing.T, debugAddr, reason string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + debugAddr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0
	}
	var n float64
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "autotriage_fetcher_tickets_filtered_total{") && strings.Contains(l, `reason="`+reason+`"`) {
			if v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64); err == nil {
				n += v
			}
		}
	}
	return n
}
