package allinone_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/allinone"
	"github.com/autotriage/autotriage/services/internal/fetcher"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/platform"
)

// syncBuffer is a goroutine-safe output sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// shutdownBudget is the test's AUTOTRIAGE_SHUTDOWN_TIMEOUT, and
// shutdownSlack what `up` may take past it (returning, on a loaded machine).
const (
	shutdownBudget = 4 * time.Second
	shutdownSlack  = 2 * time.Second
)

func config(t *testing.T) allinone.Config { t.Helper(); return configWith(t, nil) }

// configWith is config with extra (or changed) variables.
func configWith(t *testing.T, extra map[string]string) allinone.Config {
	t.Helper()
	var cfg allinone.Config
	env := map[string]string{
		"AUTOTRIAGE_DATA_DIR":         t.TempDir(),
		"AUTOTRIAGE_NATS_ADDR":        "127.0.0.1:0",
		"AUTOTRIAGE_SIM_ADDR":         "127.0.0.1:0",
		"AUTOTRIAGE_WEBHOOK_ADDR":     "127.0.0.1:0",
		"AUTOTRIAGE_DEBUG_ADDR":       "127.0.0.1:0",
		"AUTOTRIAGE_SIM_HISTORY":      "400",
		"AUTOTRIAGE_SIM_NEW":          "15",
		"AUTOTRIAGE_SIM_ARRIVAL_RATE": "5",
		"AUTOTRIAGE_SUMMARY_EVERY":    "200ms",
		"AUTOTRIAGE_SHUTDOWN_TIMEOUT": shutdownBudget.String(),
	}
	for k, v := range extra {
		env[k] = v
	}
	if err := platform.LoadConfigFrom(&cfg, nil, "up", "", io.Discard, env); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestUpTriagesTheSimulatorAndStopsCleanly is `make run` in miniature: no
// Freshdesk account, so the simulator starts, a starter model is trained on
// its history, tickets flow to outcomes, and cancelling drains and returns
// within AUTOTRIAGE_SHUTDOWN_TIMEOUT although the writer is stuck on writes
// the simulator holds for a minute: every part of the shutdown shares the
// one budget.
func TestUpTriagesTheSimulatorAndStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model and runs every stage")
	}
	cfg := config(t)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(cfg.DataDir, "autotriage.log"))
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("last lines of autotriage.log:\n%s", strings.Join(lines[max(0, len(lines)-60):], "\n"))
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	ready := make(chan allinone.Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- allinone.Start(ctx, cfg, allinone.Options{Stdout: out, Ready: func(a allinone.Addrs) { ready <- a }})
	}()
	var addrs allinone.Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("up stopped early: %v\n%s", err, out.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("up not ready:\n%s", out.String())
	}
	// Health is served and ready once every stage runs.
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + addrs.Debug + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Tickets get triaged: the demo policy applies confident groups, so some
	// simulator tickets end up with a group and the autotriage tag.
	deadline = time.Now().Add(90 * time.Second)
	for {
		applied := 0
		for _, id := range addrs.Sim.TicketIDs() {
			tk, ok := addrs.Sim.Ticket(id)
			if ok && tk.GroupID != 0 && tk.Status == 2 && containsTag(tk.Tags, "autotriage") {
				applied++
			}
		}
		if applied >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d tickets triaged:\n%s", applied, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Webhooks reach the fetcher through the address chosen at start.
	resp, err := http.Post("http://"+addrs.Webhook+fetcher.WebhookPath, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated webhook got %d, want 401", resp.StatusCode)
	}
	// Writes hang, so the writer's drain cannot finish by itself.
	addrs.Sim.SetFault("tickets.update", freshdesksim.Fault{Latency: time.Minute})
	addrs.Sim.SetFault("tickets.notes", freshdesksim.Fault{Latency: time.Minute})
	deadline = time.Now().Add(90 * time.Second)
	for inFlight(t, addrs.Debug, "writer") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no writer handler in flight on the hanging writes:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	cancelled := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("up returned %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("up did not stop after cancel")
	}
	if took := time.Since(cancelled); took > shutdownBudget+shutdownSlack {
		t.Errorf("up took %s to stop with the writer stuck, budget %s", took, shutdownBudget)
	} else {
		t.Logf("up stopped %s after cancel with the writer stuck (budget %s)", took.Round(time.Millisecond), shutdownBudget)
	}
	for _, want := range []string{"trained on", "promoted", "fetched", "draining", "stopped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// inFlight reads the stage's autotriage_handlers_in_flight from /metrics.
func inFlight(t *testing.T, debugAddr, stage string) float64 {
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
		if strings.HasPrefix(l, "autotriage_handlers_in_flight{") && strings.Contains(l, `stage="`+stage+`"`) {
			if v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64); err == nil {
				n += v
			}
		}
	}
	return n
}

func containsTag(tags []string, tag string) bool {
	for _, t := range tags {
		if t == tag {
			return true
		}
	}
	return false
}
