package trainer_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/freshdesksim/helpdeskgen"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/trainer"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// env is a simulated helpdesk over HTTP with a clock the test moves, an
// embedded JetStream and a trainer on both.
type env struct {
	t     *testing.T
	clock *clock
	sim   *freshdesksim.Sim
	conn  *pipeline.Conn
	store *modelstore.Store
	tr    *trainer.Trainer
	gen   *helpdeskgen.Generator
	ev    *evidence
}

const day = 24 * time.Hour

func newEnv(t *testing.T, history int) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}, gen: helpdeskgen.New(77), ev: &evidence{m: map[string][2]int{}}}
	sim, err := freshdesksim.New(freshdesksim.Config{Seed: 3, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if err := sim.Generate(freshdesksim.GenerateOptions{History: history, HistoryDays: 90}); err != nil {
		t.Fatal(err)
	}
	e.sim = sim
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	c, err := freshdesk.New(freshdesk.Config{BaseURL: hs.URL, APIKey: "sim-admin-key", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.Start(t)
	e.conn = natstest.Connect(t, srv, pipeline.Topology{})
	cfg := trainer.DefaultConfig()
	cfg.MinHoldout = 60
	e.tr, err = trainer.Open(context.Background(), e.conn, cfg, trainer.Deps{
		Helpdesk: freshdesk.NewAdapter(c), Account: "test", IgnoreTag: "autotriage", Now: e.clock.Now, Evidence: e.ev,
		Train: &classify.TrainOptions{Folds: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.store, err = modelstore.Open(context.Background(), e.conn); err != nil {
		t.Fatal(err)
	}
	return e
}

// addResolved makes n tickets arrive and be resolved by agents over span
// after the clock, the clock moving with them; relabel, when set, changes
// the group agents leave on ticket i.
func (e *env) addResolved(n int, span time.Duration, relabel func(i int, group string) string) {
	e.t.Helper()
	start := e.clock.Now()
	for i := range n {
		e.clock.Set(start.Add(span * time.Duration(i+1) / time.Duration(n)))
		g := e.gen.Next()
		id, err := e.sim.AddTicket(freshdesksim.NewTicket{Subject: g.Subject, Description: g.Description, Priority: g.Priority})
		if err != nil {
			e.t.Fatal(err)
		}
		group := g.Group
		if relabel != nil {
			group = relabel(i, group)
		}
		gid, ok := e.sim.GroupID(group)
		if !ok {
			e.t.Fatalf("no group %q", group)
		}
		if err := e.sim.AgentUpdate(id, map[string]any{"status": 4, "group_id": gid, "type": g.Type, "tags": g.Tags}); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) promoted() modelstore.Promotion {
	e.t.Helper()
	p, err := e.store.Promoted(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// modelChanges reads the ModelChange outcomes in OUTCOMES.
func (e *env) modelChanges() []*v1.ModelChange {
	e.t.Helper()
	var out []*v1.ModelChange
	_, err := e.conn.Read(context.Background(), pipeline.ReadOptions{Stream: pipeline.StreamOutcomes, Idle: time.Second}, func(m pipeline.RawMsg) error {
		var o v1.Outcome
		if err := proto.Unmarshal(m.Data, &o); err != nil {
			return err
		}
		if o.GetKind() == v1.OutcomeKind_OUTCOME_KIND_MODEL_CHANGE {
			out = append(out, o.GetModelChange())
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

type evidence struct {
	mu sync.Mutex
	m  map[string][2]int
}

func (ev *evidence) set(model, field string, n, correct int) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.m[model+"/"+field] = [2]int{n, correct}
}

func (ev *evidence) ModelPrecision(model, field string) (int, int) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	v := ev.m[model+"/"+field]
	return v[0], v[1]
}

// TestFirstModelCursorGoodChallengerRollbackAndRequest walks the trainer's
// life: a first model promoted against the baseline; a second run that
// reads only the cursor's second again and trains nothing; new resolved
// tickets read incrementally and a good challenger promoted with its
// lineage; that challenger rolled back when its live precision drops below
// its predecessor's, and never promoted again; and a run on request.
func TestFirstModelCursorGoodChallengerRollbackAndRequest(t *testing.T) {
	e := newEnv(t, 500)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	r1, err := e.tr.RunOnce(ctx, "start", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Action != "promoted" || r1.Lineage == nil || r1.Lineage.Parent != "" || r1.Lineage.Gate.Against != "baseline" || !r1.Lineage.Gate.Pass {
		t.Fatalf("first run: %+v lineage %+v", r1, r1.Lineage)
	}
	first := r1.Lineage.ModelID
	if p := e.promoted(); p.ID != first {
		t.Fatalf("promoted %s; want the first model %s", p.ID, first)
	}
	if r1.Seen < 500 || r1.Examples < 490 {
		t.Fatalf("first run read %d tickets, kept %d; want the whole history", r1.Seen, r1.Examples)
	}
	if !r1.Lineage.DataThrough.Before(r1.Lineage.HoldoutFrom) || r1.Lineage.HoldoutThrough.Sub(r1.Lineage.HoldoutFrom) > 14*day {
		t.Fatalf("first model's windows: train through %s, held out %s..%s", r1.Lineage.DataThrough, r1.Lineage.HoldoutFrom, r1.Lineage.HoldoutThrough)
	}

	// Nothing new: only the versions of the cursor's second are read again
	// (the simulator resolves its last tickets "now", 13 of them in one
	// second), and nothing is trained.
	r2, err := e.tr.RunOnce(ctx, "schedule", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Lineage != nil || r2.Added != 0 || r2.Seen > 20 {
		t.Fatalf("second run with no new tickets: %+v", r2)
	}

	// Three weeks of correctly labelled work: read incrementally, and the
	// challenger trained on it is promoted with its lineage.
	e.clock.Set(e.clock.Now().Add(time.Hour))
	e.addResolved(200, 21*day, nil)
	r3, err := e.tr.RunOnce(ctx, "schedule", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r3.Added != 200 || r3.Seen > 200+r2.Seen {
		t.Fatalf("third run read %d ticket versions and added %d; want only the 200 new ones", r3.Seen, r3.Added)
	}
	if r3.Action != "promoted" {
		t.Fatalf("good challenger not promoted: %+v gate %+v", r3, r3.Lineage.Gate)
	}
	second := r3.Lineage.ModelID
	lin, ok, err := trainer.LoadLineage(ctx, e.store, second)
	if err != nil || !ok {
		t.Fatalf("lineage of the challenger: %v %v", ok, err)
	}
	if lin.Parent != first || lin.Outcome != "promoted" || !lin.Gate.Pass || lin.Gate.Against != "champion" || lin.Tickets == 0 || len(lin.Holdout) == 0 {
		t.Fatalf("challenger lineage: %+v", lin)
	}
	_, info, err := e.store.Load(ctx, second)
	if err != nil || info.Meta["parent"] != first || info.Meta["gate"] != "passed" || info.Meta["holdout_group"] == "" {
		t.Fatalf("challenger metadata: %+v %v", info.Meta, err)
	}

	// Live precision: the new model's group precision falls well below its
	// predecessor's; a small sample does not count yet.
	e.ev.set(second, "group", 30, 10)
	e.ev.set(first, "group", 300, 280)
	if rolled, err := e.tr.CheckRollback(ctx); err != nil || rolled {
		t.Fatalf("rolled back on 30 outcomes: %v %v", rolled, err)
	}
	e.ev.set(second, "group", 200, 150)
	if rolled, err := e.tr.CheckRollback(ctx); err != nil || !rolled {
		t.Fatalf("not rolled back at 75%% vs 93%%: %v %v", rolled, err)
	}
	if p := e.promoted(); p.ID != first {
		t.Fatalf("after the rollback %s is promoted; want the predecessor %s", p.ID, first)
	}
	// The rollback itself is not watched: no flip back to the retired model
	// however the predecessor fares now.
	e.ev.set(first, "group", 300, 100)
	if rolled, err := e.tr.CheckRollback(ctx); err != nil || rolled {
		t.Fatalf("rolled back the rollback: %v %v", rolled, err)
	}
	if lin, _, _ := trainer.LoadLineage(ctx, e.store, second); lin.Outcome != "rolled_back" || !strings.Contains(lin.RollbackReason, "group") {
		t.Fatalf("rolled-back lineage: %+v", lin)
	}
	changes := e.modelChanges()
	if len(changes) != 3 || changes[0].GetAction() != "promoted" || changes[1].GetAction() != "promoted" || changes[2].GetAction() != "rolled_back" ||
		changes[2].GetModelId() != second || changes[2].GetPreviousId() != first || !strings.Contains(changes[2].GetReason(), "live precision") {
		t.Fatalf("model changes in OUTCOMES: %v", changes)
	}

	// On request the trainer runs at once; the same data gives the same
	// (retired) model, which is not promoted again.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.tr.Run(runCtx) }()
	rev, err := trainer.RequestRun(ctx, e.conn, "test")
	if err != nil {
		t.Fatal(err)
	}
	kv, err := e.conn.KV(ctx, pipeline.BucketPolicy)
	if err != nil {
		t.Fatal(err)
	}
	var st trainer.State
	for deadline := time.Now().Add(3 * time.Minute); ; {
		if st, err = trainer.ReadState(ctx, kv); err != nil {
			t.Fatal(err)
		}
		if st.RequestRev >= rev {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %d not handled: %+v", rev, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !strings.Contains(st.LastResult, "rolled back") || len(st.Retired) != 1 || st.Retired[0] != second {
		t.Fatalf("state after the requested run: %+v", st)
	}
	if p := e.promoted(); p.ID != first {
		t.Fatalf("the retired model was promoted again: %s", p.ID)
	}
}

// TestCorruptedChallengerKept: agents left wrong groups (a rotation of the
// group names) on the tickets of two weeks; the challenger trained on them
// is gated on the correctly labelled weeks after and is not promoted, and
// why is in OUTCOMES and in its lineage.
func TestCorruptedChallengerKept(t *testing.T) {
	e := newEnv(t, 500)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r1, err := e.tr.RunOnce(ctx, "start", false, 0)
	if err != nil || r1.Action != "promoted" {
		t.Fatalf("first run: %+v %v", r1, err)
	}
	names := []string{}
	for _, g := range helpdeskgen.Groups() {
		names = append(names, g.Name)
	}
	rotate := func(g string) string {
		for i, n := range names {
			if n == g {
				return names[(i+1)%len(names)]
			}
		}
		return g
	}
	e.clock.Set(e.clock.Now().Add(time.Hour))
	// 16 days of wrong groups, then 14 days right: the gate's window.
	e.addResolved(500, 16*day, func(_ int, g string) string { return rotate(g) })
	e.addResolved(120, 14*day-time.Hour, nil)
	r2, err := e.tr.RunOnce(ctx, "schedule", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Action != "kept" || r2.Lineage.Gate.Pass || !strings.Contains(r2.Lineage.Gate.Reason, "group") {
		t.Fatalf("corrupted challenger: action %q gate %+v", r2.Action, r2.Lineage.Gate)
	}
	if p := e.promoted(); p.ID != r1.Lineage.ModelID {
		t.Fatalf("promoted %s; want the champion %s kept", p.ID, r1.Lineage.ModelID)
	}
	lin, ok, err := trainer.LoadLineage(ctx, e.store, r2.Lineage.ModelID)
	if err != nil || !ok || lin.Outcome != "kept" || lin.Parent != r1.Lineage.ModelID || !strings.Contains(lin.Gate.Reason, "worse") {
		t.Fatalf("kept challenger's lineage: %+v %v %v", lin, ok, err)
	}
	changes := e.modelChanges()
	last := changes[len(changes)-1]
	if last.GetAction() != "kept" || last.GetModelId() != r2.Lineage.ModelID || last.GetPreviousId() != r1.Lineage.ModelID || !strings.Contains(last.GetReason(), "group") {
		t.Fatalf("kept outcome: %v", last)
	}
	t.Logf("gate: %s", r2.Lineage.Gate.Reason)
	// The registry lists models only, not the trainer's data and lineage.
	list, err := e.store.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("models listed: %d %v", len(list), err)
	}
	if _, err := e.store.Promoted(ctx); errors.Is(err, modelstore.ErrNoModel) {
		t.Fatal("no model")
	}
}

// Kept examples that cannot be read are not a dead end: the run logs it,
// re-reads the history and goes on.
func TestUnreadableExamplesAreRebuilt(t *testing.T) {
	e := newEnv(t, 200)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := e.tr.RunOnce(ctx, "start", false, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutData(ctx, "trainer-examples", []byte("not gzip")); err != nil {
		t.Fatal(err)
	}
	r, err := e.tr.RunOnce(ctx, "request", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Seen < 200 || r.Examples < 190 || r.Action != "unchanged" {
		t.Fatalf("after unreadable examples: %+v", r)
	}
}
