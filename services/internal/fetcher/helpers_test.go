package fetcher

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/natsserver"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

const (
	testSystem  = "freshdesk"
	testAccount = "acme"
	testSecret  = "0123456789abcdef-test-secret"
)

// sharedDir is the read-only shared material: $AUTOTRIAGE_SHARED, else
// /work/shared seen from this package; tests needing it skip without it.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("AUTOTRIAGE_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared")
	}
	if _, err := os.Stat(filepath.Join(dir, "fixtures", "freshdesk")); err != nil {
		t.Skipf("shared fixtures not available at %s (set AUTOTRIAGE_SHARED): %v", dir, err)
	}
	return dir
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedDir(t), "fixtures", "freshdesk", name))
	if err != nil {
		t.Fatalf("reading fixture: %v", err)
	}
	return b
}

// bus is an embedded NATS server with the pipeline topology.
type bus struct {
	srv    *natsserver.Server
	conn   *pipeline.Conn
	state  *pipeline.KV
	writer *pipeline.KV
	ledger *ledger.Ledger
}

func startBus(t *testing.T) *bus {
	t.Helper()
	srv := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := natstest.Connect(t, srv, pipeline.Topology{})
	st, err := c.KV(ctx, pipeline.BucketFetcher)
	if err != nil {
		t.Fatal(err)
	}
	wr, err := c.KV(ctx, pipeline.BucketWriter)
	if err != nil {
		t.Fatal(err)
	}
	return &bus{srv: srv, conn: c, state: st, writer: wr, ledger: ledger.New(wr)}
}

// messages returns every message of a stream, oldest first.
func (b *bus) messages(t *testing.T, stream string) []pipeline.RawMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ss, err := b.conn.StreamStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []pipeline.RawMsg
	for _, s := range ss {
		if s.Name != stream || s.Messages == 0 {
			continue
		}
		for seq := s.FirstSeq; seq <= s.LastSeq; seq++ {
			m, err := b.conn.GetMsg(ctx, stream, seq)
			if errors.Is(err, pipeline.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
	}
	return out
}

func (b *bus) tickets(t *testing.T) []*v1.Ticket {
	t.Helper()
	var out []*v1.Ticket
	for _, m := range b.messages(t, pipeline.StreamTickets) {
		var tk v1.Ticket
		if err := proto.Unmarshal(m.Data, &tk); err != nil {
			t.Fatalf("TICKETS seq %d: %v", m.Sequence, err)
		}
		out = append(out, &tk)
	}
	return out
}

func (b *bus) outcomes(t *testing.T) []*v1.Outcome {
	t.Helper()
	var out []*v1.Outcome
	for _, m := range b.messages(t, pipeline.StreamOutcomes) {
		var o v1.Outcome
		if err := proto.Unmarshal(m.Data, &o); err != nil {
			t.Fatalf("OUTCOMES seq %d: %v", m.Sequence, err)
		}
		out = append(out, &o)
	}
	return out
}

func (b *bus) count(t *testing.T, stream string) uint64 {
	t.Helper()
	ss, err := b.conn.StreamStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if s.Name == stream {
			return s.Messages
		}
	}
	t.Fatalf("no stream %s", stream)
	return 0
}

// sim is the Freshdesk simulator behind the real client and adapter.
type sim struct {
	*freshdesksim.Sim
	url     string
	adapter *freshdesk.Adapter
}

func startSim(t *testing.T, cfg freshdesksim.Config, gen freshdesksim.GenerateOptions) *sim {
	t.Helper()
	s, err := freshdesksim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Generate(gen); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	c, err := freshdesk.New(freshdesk.Config{BaseURL: hs.URL, APIKey: "sim-admin-key", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &sim{Sim: s, url: hs.URL, adapter: freshdesk.NewAdapter(c)}
}

func testConfig() Config {
	c := DefaultConfig()
	// The tests' tickets are generated before the fetcher starts; the
	// default start ("now") would leave them untriaged (origin_test.go).
	c.Start = "24h"
	c.WebhookSecret = testSecret
	c.PollInterval = 50 * time.Millisecond
	c.LeaseTTL = 900 * time.Millisecond
	return c
}

type fetcherOpts struct {
	src      Source
	catalog  ticketsystem.CatalogReader
	bus      Bus
	holder   string
	pmetrics *pipeline.Metrics
	log      *slog.Logger
	reg      prometheus.Registerer
	state    StateKV // default: the bus's fetcher bucket
}

func newFetcher(t *testing.T, b *bus, cfg Config, o fetcherOpts) *Fetcher {
	t.Helper()
	if o.bus == nil {
		o.bus = b.conn
	}
	var state StateKV = b.state
	if o.state != nil {
		state = o.state
	}
	f, err := New(cfg, Deps{
		System: testSystem, Account: testAccount, Source: o.src, Catalog: o.catalog,
		Bus: o.bus, State: state, Ledger: b.ledger, HolderID: o.holder, PipelineMetrics: o.pmetrics,
		Log: o.log, Registerer: o.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// gathered returns the value of the counter or gauge series name{labels}
// in reg, and whether the series exists.
func gathered(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// countingSource counts ChangedSince calls.
type countingSource struct {
	Source
	polls atomic.Int64
}

func (c *countingSource) ChangedSince(ctx context.Context, since time.Time, fn func([]ticketsystem.Ticket) error) error {
	c.polls.Add(1)
	return c.Source.ChangedSince(ctx, since, fn)
}

// fakeSource serves fixed pages.
type fakeSource struct {
	mu      sync.Mutex
	tickets map[int64]ticketsystem.Ticket
	pages   [][]ticketsystem.Ticket
}

func (s *fakeSource) GetTicket(_ context.Context, id int64) (*ticketsystem.Ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tickets[id]
	if !ok {
		return nil, &ticketsystem.Error{Kind: ticketsystem.ErrNotFound}
	}
	return &t, nil
}

func (s *fakeSource) ChangedSince(_ context.Context, since time.Time, fn func([]ticketsystem.Ticket) error) error {
	s.mu.Lock()
	pages := s.pages
	s.mu.Unlock()
	for _, p := range pages {
		var keep []ticketsystem.Ticket
		for _, t := range p {
			if !t.UpdatedAt.Before(since.Truncate(time.Second)) {
				keep = append(keep, t)
			}
		}
		if len(keep) > 0 {
			if err := fn(keep); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedIDs(ts []*v1.Ticket) []int64 {
	ids := make([]int64, len(ts))
	for i, t := range ts {
		ids[i] = t.Id
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func uniqueIDs(ids []int64) bool {
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			return false
		}
	}
	return true
}
