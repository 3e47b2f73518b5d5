package triage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	autotriagev1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// evidence is live precision set by the test.
type evidence struct {
	mu sync.Mutex
	m  map[string][2]int
}

func (e *evidence) set(field, label string, n, correct int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string][2]int{}
	}
	e.m[field+"/"+label] = [2]int{n, correct}
}

func (e *evidence) ClassPrecision(field, label string) (int, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.m[field+"/"+label]
	return v[0], v[1]
}

func policyBus(t *testing.T) (*pipeline.Conn, *pipeline.KV, *Store) {
	t.Helper()
	srv := natstest.Start(t)
	conn := natstest.Connect(t, srv, pipeline.Topology{})
	kv, err := conn.KV(context.Background(), pipeline.BucketPolicy)
	if err != nil {
		t.Fatal(err)
	}
	return conn, kv, NewStore(kv, conn, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// policyChanges reads the POLICY_CHANGE outcomes in OUTCOMES.
func policyChanges(t *testing.T, conn *pipeline.Conn) []*autotriagev1.PolicyChange {
	t.Helper()
	var out []*autotriagev1.PolicyChange
	_, err := conn.Read(context.Background(), pipeline.ReadOptions{Stream: pipeline.StreamOutcomes, Subject: PolicyChangeSubject, Idle: time.Second}, func(m pipeline.RawMsg) error {
		var o autotriagev1.Outcome
		if err := proto.Unmarshal(m.Data, &o); err != nil {
			return err
		}
		if o.Kind != autotriagev1.OutcomeKind_OUTCOME_KIND_POLICY_CHANGE || o.PolicyChange == nil {
			return fmt.Errorf("outcome %v on %s", o.Kind, m.Subject)
		}
		out = append(out, o.PolicyChange)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestStoreEnsureAndCompareAndSet(t *testing.T) {
	conn, _, st := policyBus(t)
	ctx := context.Background()
	if _, _, err := st.Get(ctx); !errors.Is(err, ErrNoDoc) {
		t.Fatalf("empty bucket: %v", err)
	}
	d, rev, err := st.Ensure(ctx, "group = apply:p95", "trainer")
	if err != nil || d.Policy != "group=apply:p95" || rev == 0 {
		t.Fatalf("ensure: %+v %d %v", d, rev, err)
	}
	// An existing document wins over a different initial value.
	d2, rev2, err := st.Ensure(ctx, "group=shadow", "trainer")
	if err != nil || d2.Policy != "group=apply:p95" || rev2 != rev {
		t.Fatalf("second ensure: %+v %d %v", d2, rev2, err)
	}
	// Concurrent changes both land: each is a compare-and-set, retried on
	// the newer document.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _, err := st.Change(ctx, "test", "", func(d *Doc) ([]*autotriagev1.PolicyChange, error) {
				d.Demotions = append(d.Demotions, Demotion{Field: "group", Label: fmt.Sprint("L", i)})
				return []*autotriagev1.PolicyChange{{Field: "group", Label: fmt.Sprint("L", i), From: "apply", To: "suggest", Reason: "test"}}, nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	d, rev, err = st.Get(ctx)
	if err != nil || len(d.Demotions) != 8 || rev != rev2+8 || d.ChangedBy != "test" {
		t.Fatalf("after concurrent changes: %d demotions, revision %d (want %d), %v", len(d.Demotions), rev, rev2+8, err)
	}
	// A change that changes nothing writes nothing.
	if _, r, ch, err := st.Change(ctx, "test", "", func(*Doc) ([]*autotriagev1.PolicyChange, error) { return nil, nil }); err != nil || r != rev || ch != nil {
		t.Fatalf("no-op change: %d %v %v", r, ch, err)
	}
	// An invalid policy is refused before anything is stored.
	if _, _, _, err := st.Change(ctx, "test", "", func(d *Doc) ([]*autotriagev1.PolicyChange, error) {
		d.Policy = "group=maybe"
		return []*autotriagev1.PolicyChange{{Reason: "bad"}}, nil
	}); err == nil {
		t.Fatal("invalid policy stored")
	}
	if got := policyChanges(t, conn); len(got) != 9 || got[0].Reason != "created from AUTOTRIAGE_POLICY" || got[1].By != "test" {
		t.Fatalf("outcomes: %d %v", len(got), got)
	}
}

// The controller demotes a class whose live precision is below its target,
// leaves a flawless class with thin evidence alone, and promotes the class
// back once its lower bound clears the target plus the hysteresis margin.
func TestControllerDemotesAndPromotes(t *testing.T) {
	m := testModel(t)
	conn, _, st := policyBus(t)
	ctx := context.Background()
	if _, _, err := st.Ensure(ctx, "group=apply:p90,type=suggest", "test"); err != nil {
		t.Fatal(err)
	}
	ev := &evidence{}
	c := NewController(st, ev, func(context.Context) (*classify.Model, error) { return m, nil }, "", ControllerConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ev.set("group", "Hardware", 60, 42) // 70%: clearly below 90%
	ev.set("group", "Billing", 30, 30)  // flawless, but 30 < 35 verdicts: not judgeable at p90 by the lower bound
	ev.set("group", "Access", 20, 5)    // bad, but fewer than MinSamples
	ev.set("type", "Incident", 100, 10) // suggest mode: never judged
	if err := c.Evaluate(ctx); err != nil {
		t.Fatal(err)
	}
	d, rev, err := st.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Demotions) != 1 || d.Demotions[0].Label != "Hardware" || d.Demotions[0].N != 60 || d.Demotions[0].Target != 0.9 || d.ChangedBy != ByController {
		t.Fatalf("demotions: %+v", d)
	}
	eff, _ := d.Effective()
	sure := m.Predict("", "the printer and the screen are broken")
	for _, fp := range eff.Decide(m, &autotriagev1.Ticket{Id: 1}, sure) {
		if fp.Field == "group" && fp.Decision != autotriagev1.Decision_DECISION_SUGGEST {
			t.Fatalf("demoted class decided %v (%s)", fp.Decision, fp.Reason)
		}
	}
	// Nothing new: no new revision.
	if err := c.Evaluate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, r, _ := st.Get(ctx); r != rev {
		t.Fatalf("idempotent evaluate wrote revision %d after %d", r, rev)
	}
	// Recovering, but not past target + hysteresis (0.925): stays demoted.
	ev.set("group", "Hardware", 100, 95) // lower bound ~0.888
	if err := c.Evaluate(ctx); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := st.Get(ctx); len(d.Demotions) != 1 {
		t.Fatalf("promoted too early: %+v", d.Demotions)
	}
	ev.set("group", "Hardware", 150, 150) // lower bound ~0.975
	ev.set("group", "Billing", 80, 76)    // 95% over 80: lower bound ~0.878 < 0.9, judgeable: demoted
	if err := c.Evaluate(ctx); err != nil {
		t.Fatal(err)
	}
	d, _, _ = st.Get(ctx)
	if len(d.Demotions) != 1 || d.Demotions[0].Label != "Billing" {
		t.Fatalf("after recovery: %+v", d.Demotions)
	}
	// The operator moves Billing to suggest: its demotion is dropped.
	if _, _, _, err := st.Change(ctx, "operator:test", "", func(d *Doc) ([]*autotriagev1.PolicyChange, error) {
		d.Policy = "group=apply:p90,group[Billing]=suggest,type=suggest"
		return []*autotriagev1.PolicyChange{{Reason: "set by operator"}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Evaluate(ctx); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := st.Get(ctx); len(d.Demotions) != 0 {
		t.Fatalf("demotion of a suggest class kept: %+v", d.Demotions)
	}
	var got []string
	for _, pc := range policyChanges(t, conn) {
		if pc.Label != "" {
			got = append(got, fmt.Sprintf("%s[%s] %s->%s by %s", pc.Field, pc.Label, pc.From, pc.To, pc.By))
		}
	}
	want := []string{
		"group[Hardware] apply->suggest by autotriage",
		"group[Billing] apply->suggest by autotriage", // one evaluation, label order
		"group[Hardware] suggest->apply by autotriage",
		"group[Billing] suggest (demoted)->suggest by autotriage",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("policy changes:\n%v\nwant\n%v", got, want)
	}
}

// A probability threshold is judged against the class's held-out precision
// at that threshold.
func TestControllerProbabilityThresholdTarget(t *testing.T) {
	m := testModel(t)
	_, _, st := policyBus(t)
	ctx := context.Background()
	ev := &evidence{}
	c := NewController(st, ev, func(context.Context) (*classify.Model, error) { return m, nil }, "group=apply:0.5", ControllerConfig{MinSamples: 10}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	target, n, ok := HeldOutPrecision(m, "group", "Hardware", 0.5)
	if !ok || n == 0 || target < 0.5 {
		t.Fatalf("held-out precision %v %d %v", target, n, ok)
	}
	ev.set("group", "Hardware", 200, int(float64(200)*(target-0.15)))
	if err := c.Evaluate(ctx); err != nil {
		t.Fatal(err)
	}
	d, _, err := st.Get(ctx)
	if err != nil || len(d.Demotions) != 1 || d.Demotions[0].Target != target {
		t.Fatalf("%+v %v (target %v)", d, err, target)
	}
}

// Run keeps evaluating: a class that goes bad while it runs is demoted.
func TestControllerRun(t *testing.T) {
	m := testModel(t)
	_, _, st := policyBus(t)
	ev := &evidence{}
	c := NewController(st, ev, func(context.Context) (*classify.Model, error) { return m, nil }, "group=apply:p90", ControllerConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx, 20*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	ev.set("group", "Access", 100, 50)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if d, _, err := st.Get(context.Background()); err == nil && len(d.Demotions) == 1 && d.Demotions[0].Label == "Access" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("Access never demoted")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWilson(t *testing.T) {
	for _, c := range []struct {
		k, n   int
		lo, hi float64
	}{{0, 0, 0, 1}, {10, 10, 0.7225, 1}, {50, 100, 0.4038, 0.5962}, {95, 100, 0.8883, 0.9785}} {
		lo, hi := wilson(c.k, c.n, 1.96)
		if d := lo - c.lo; d > 1e-3 || d < -1e-3 {
			t.Errorf("%d/%d: lo %v, want %v", c.k, c.n, lo, c.lo)
		}
		if d := hi - c.hi; d > 1e-3 || d < -1e-3 {
			t.Errorf("%d/%d: hi %v, want %v", c.k, c.n, hi, c.hi)
		}
	}
	c := &Controller{cfg: ControllerConfig{}.withDefaults()}
	if n := c.judgeable(0.95); n != 73 {
		t.Errorf("judgeable(0.95) = %d", n)
	}
	if lo, _ := wilson(73, 73, 1.96); lo < 0.95 {
		t.Errorf("73/73 lower bound %v < 0.95", lo)
	}
}
