package quality

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// TestWilsonKnownValues checks the interval against known values: the
// textbook 0/10 and 10/10 bounds (0.2775, 0.7225) and 50/100 (0.4038,
// 0.5962); the rest were computed independently from the closed form
// (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n).
func TestWilsonKnownValues(t *testing.T) {
	for _, c := range []struct {
		correct, n int
		z          float64
		lo, hi     float64
	}{
		{0, 10, 1.96, 0, 0.27754},
		{10, 10, 1.96, 0.72246, 1},
		{50, 100, 1.96, 0.40383, 0.59617},
		{81, 263, 1.96, 0.25529, 0.36621},
		{95, 100, 0, 0.88825, 0.97846}, // z 0: the 1.96 default
		{190, 200, 1.96, 0.91042, 0.97262},
		{95, 100, 2.5758, 0.86085, 0.98315}, // 99%
		{1, 2, 1.96, 0.09453, 0.90547},
	} {
		lo, hi := Wilson(c.correct, c.n, c.z)
		if math.Abs(lo-c.lo) > 5e-5 || math.Abs(hi-c.hi) > 5e-5 {
			t.Errorf("Wilson(%d, %d, %g) = (%.5f, %.5f), want (%.5f, %.5f)", c.correct, c.n, c.z, lo, hi, c.lo, c.hi)
		}
	}
	if lo, hi := Wilson(0, 0, 1.96); lo != 0 || hi != 1 {
		t.Errorf("Wilson(0, 0) = (%g, %g), want (0, 1)", lo, hi)
	}
	lo, hi := Wilson(12, 10, 1.96)
	if wlo, whi := Wilson(10, 10, 1.96); lo != wlo || hi != whi {
		t.Errorf("Wilson(12, 10) = (%g, %g), want it clamped to 10 of 10 (%g, %g)", lo, hi, wlo, whi)
	}
}

func feedback(field, label, model string, v v1.Verdict, at time.Time) *v1.Outcome {
	return &v1.Outcome{Kind: v1.OutcomeKind_OUTCOME_KIND_FEEDBACK, At: timestamppb.New(at),
		Feedback: &v1.Feedback{Field: field, Label: label, Verdict: v, ModelId: model, ObservedAt: timestamppb.New(at)}}
}

func TestTrackerCountsVerdictsPerClassAndModel(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tr := NewTracker(Options{Now: func() time.Time { return now }})
	for _, v := range []v1.Verdict{v1.Verdict_VERDICT_CONFIRMED, v1.Verdict_VERDICT_ACCEPTED, v1.Verdict_VERDICT_OVERRIDDEN} {
		tr.Observe(feedback("group", "billing", "m1", v, now))
	}
	tr.Observe(feedback("group", "tech", "m1", v1.Verdict_VERDICT_REJECTED, now))
	tr.Observe(feedback("type", "Question", "m2", v1.Verdict_VERDICT_CONFIRMED, now))
	// Not counted: no feedback, unknown verdict, no field.
	tr.Observe(&v1.Outcome{Kind: v1.OutcomeKind_OUTCOME_KIND_DECISION})
	tr.Observe(feedback("group", "billing", "m1", v1.Verdict_VERDICT_UNSPECIFIED, now))
	tr.Observe(feedback("", "billing", "m1", v1.Verdict_VERDICT_CONFIRMED, now))

	if n, c := tr.ClassPrecision("group", "billing"); n != 3 || c != 2 {
		t.Errorf("group/billing: %d of %d correct, want 2 of 3", c, n)
	}
	if n, c := tr.ClassPrecision("group", "tech"); n != 1 || c != 0 {
		t.Errorf("group/tech: %d of %d, want 0 of 1", c, n)
	}
	if n, c := tr.ClassPrecision("group", "nope"); n != 0 || c != 0 {
		t.Errorf("unknown class: %d of %d", c, n)
	}
	if n, c := tr.ModelPrecision("m1", "group"); n != 4 || c != 2 {
		t.Errorf("m1/group: %d of %d, want 2 of 4", c, n)
	}
	if n, c := tr.ModelPrecision("m2", "type"); n != 1 || c != 1 {
		t.Errorf("m2/type: %d of %d, want 1 of 1", c, n)
	}
	if got := tr.Ignored(); got != 2 {
		t.Errorf("ignored %d, want 2", got)
	}
	snap := tr.Snapshot()
	if len(snap) != 3 || snap[0].Label != "billing" || snap[1].Label != "tech" || snap[2].Field != "type" {
		t.Fatalf("snapshot %+v", snap)
	}
	lo, hi := Wilson(2, 3, DefaultZ)
	if s := snap[0]; s.N != 3 || s.Correct != 2 || math.Abs(s.Precision-2.0/3) > 1e-12 || s.Lower != lo || s.Upper != hi {
		t.Errorf("billing stats %+v, want 2/3 in (%g, %g)", s, lo, hi)
	}
	if ms := tr.ModelSnapshot(); len(ms) != 2 || ms[0].ModelID != "m1" || ms[0].N != 4 {
		t.Errorf("model snapshot %+v", ms)
	}
}

// TestTrackerWindow: only the latest Window verdicts of a class count, and
// none older than MaxAge.
func TestTrackerWindow(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tr := NewTracker(Options{Window: 10, MaxAge: 24 * time.Hour, Now: clock})
	// 10 overrides, then 6 confirmations: the window holds 4 + 6.
	for range 10 {
		tr.Observe(feedback("group", "billing", "m1", v1.Verdict_VERDICT_OVERRIDDEN, now.Add(-2*time.Hour)))
	}
	for range 6 {
		tr.Observe(feedback("group", "billing", "m1", v1.Verdict_VERDICT_CONFIRMED, now.Add(-time.Hour)))
	}
	if n, c := tr.ClassPrecision("group", "billing"); n != 10 || c != 6 {
		t.Fatalf("window of 10: %d of %d correct, want 6 of 10", c, n)
	}
	if n, c := tr.ModelPrecision("m1", "group"); n != 10 || c != 6 {
		t.Fatalf("model window of 10: %d of %d correct, want 6 of 10", c, n)
	}
	// 23 hours later the overrides (2h old then) are past MaxAge, the
	// confirmations are not.
	mu.Lock()
	now = now.Add(22*time.Hour + 30*time.Minute)
	mu.Unlock()
	if n, c := tr.ClassPrecision("group", "billing"); n != 6 || c != 6 {
		t.Fatalf("after ageing: %d of %d correct, want 6 of 6", c, n)
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	if n, _ := tr.ClassPrecision("group", "billing"); n != 0 {
		t.Fatalf("after everything aged out: n = %d", n)
	}
	if s := tr.Snapshot(); len(s) != 0 {
		t.Fatalf("snapshot of aged-out classes: %+v", s)
	}
	// Without an age bound everything in the count window stays.
	tr2 := NewTracker(Options{Window: 3, MaxAge: -1, Now: clock})
	for range 5 {
		tr2.Observe(feedback("type", "Bug", "m1", v1.Verdict_VERDICT_ACCEPTED, now.Add(-1000*time.Hour)))
	}
	if n, c := tr2.ClassPrecision("type", "Bug"); n != 3 || c != 3 {
		t.Fatalf("no age bound: %d of %d", c, n)
	}
}

func TestTrackerConcurrentUse(t *testing.T) {
	tr := NewTracker(Options{})
	now := time.Now()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				v := v1.Verdict_VERDICT_CONFIRMED
				if i%4 == 0 {
					v = v1.Verdict_VERDICT_OVERRIDDEN
				}
				tr.Observe(feedback("group", fmt.Sprint("c", g), "m", v, now))
				tr.ClassPrecision("group", "c0")
				tr.Snapshot()
			}
		}()
	}
	wg.Wait()
	for g := range 4 {
		if n, c := tr.ClassPrecision("group", fmt.Sprint("c", g)); n != DefaultWindow || c != DefaultWindow*3/4 {
			t.Errorf("class c%d: %d of %d", g, c, n)
		}
	}
}

func TestCollectorExportsPerClassSeries(t *testing.T) {
	now := time.Now()
	tr := NewTracker(Options{})
	for range 9 {
		tr.Observe(feedback("group", "billing", "m1", v1.Verdict_VERDICT_CONFIRMED, now))
	}
	tr.Observe(feedback("group", "billing", "m1", v1.Verdict_VERDICT_OVERRIDDEN, now))
	reg := prometheus.NewPedanticRegistry()
	if err := tr.Register(reg); err != nil {
		t.Fatal(err)
	}
	lo, _ := Wilson(9, 10, DefaultZ)
	want := fmt.Sprintf(`
# HELP autotriage_live_precision Live precision of a class of a field: correct verdicts (confirmed, accepted) over all (also overridden, rejected) in the rolling window.
# TYPE autotriage_live_precision gauge
autotriage_live_precision{class="billing",field="group"} 0.9
# HELP autotriage_live_precision_lower Wilson lower bound (95%% by default) of autotriage_live_precision.
# TYPE autotriage_live_precision_lower gauge
autotriage_live_precision_lower{class="billing",field="group"} %v
# HELP autotriage_live_verdicts Verdicts in the rolling window of a class of a field (the n of autotriage_live_precision).
# TYPE autotriage_live_verdicts gauge
autotriage_live_verdicts{class="billing",field="group"} 10
`, lo)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"autotriage_live_precision", "autotriage_live_precision_lower", "autotriage_live_verdicts"); err != nil {
		t.Fatal(err)
	}
}

// TestFollowTailsOutcomes: Follow reads OUTCOMES from its start time,
// counts the feedback already there and what arrives later, and skips
// messages that do not decode.
func TestFollowTailsOutcomes(t *testing.T) {
	srv := natstest.Start(t)
	conn := natstest.Connect(t, srv, pipeline.Topology{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := func(id string, o *v1.Outcome) {
		t.Helper()
		data, err := proto.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Publish(ctx, pipeline.OutMsg{Subject: pipeline.OutcomeSubject("freshdesk", "acme", 1), ID: id, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	pub("a", feedback("group", "billing", "m1", v1.Verdict_VERDICT_CONFIRMED, now))
	pub("b", &v1.Outcome{Kind: v1.OutcomeKind_OUTCOME_KIND_DECISION})
	if _, err := conn.Publish(ctx, pipeline.OutMsg{Subject: pipeline.OutcomeSubject("freshdesk", "acme", 2), ID: "bad", Data: []byte{0xff, 0xff, 0xff}}); err != nil {
		t.Fatal(err)
	}
	tr := NewTracker(Options{})
	var seen atomic.Uint64
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, conn, tr, FollowOptions{Observed: func(seq uint64) { seen.Store(seq) }})
	}()
	waitFor(t, "the stored outcomes", func() bool { return seen.Load() >= 3 })
	if n, c := tr.ClassPrecision("group", "billing"); n != 1 || c != 1 {
		t.Fatalf("after the stored outcomes: %d of %d", c, n)
	}
	if tr.Undecodable() != 1 {
		t.Fatalf("undecodable %d, want 1", tr.Undecodable())
	}
	// Live: an override with feedback arrives later.
	pub("c", &v1.Outcome{Kind: v1.OutcomeKind_OUTCOME_KIND_OVERRIDE, Override: &v1.Override{Field: "group"},
		Feedback: &v1.Feedback{Field: "group", Label: "billing", Verdict: v1.Verdict_VERDICT_OVERRIDDEN, ObservedAt: timestamppb.New(now)}})
	waitFor(t, "the live override", func() bool { n, _ := tr.ClassPrecision("group", "billing"); return n == 2 })
	if n, c := tr.ClassPrecision("group", "billing"); n != 2 || c != 1 {
		t.Fatalf("after the live override: %d of %d", c, n)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Follow: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Follow did not return after its context ended")
	}

	// Load reads the same range once and returns.
	tr2 := NewTracker(Options{})
	n, err := Load(context.Background(), conn, tr2, now.Add(-time.Minute), nil)
	if err != nil || n != 4 {
		t.Fatalf("Load read %d (%v), want 4", n, err)
	}
	if n, c := tr2.ClassPrecision("group", "billing"); n != 2 || c != 1 {
		t.Fatalf("Load: %d of %d", c, n)
	}
}

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
