package writer

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// These tests run several writer replicas (Stages with their own identity,
// as separate processes have) over one simulator, one bucket and one
// durable consumer: the promises must hold across replicas, not only
// inside one process's keyed lock.

// gateKV holds the first write of a ticket's ledger record until released:
// the replica has read the record and decided, and stops just before its
// compare-and-set (the window in which another replica used to write).
type gateKV struct {
	ledger.KV
	once    sync.Once
	arrived chan struct{}
	release chan struct{}
}

func newGateKV(kv ledger.KV) *gateKV {
	return &gateKV{KV: kv, arrived: make(chan struct{}), release: make(chan struct{})}
}

func (k *gateKV) wait(key string) {
	if !strings.HasPrefix(key, "applied.") {
		return
	}
	k.once.Do(func() {
		close(k.arrived)
		<-k.release
	})
}

func (k *gateKV) Create(ctx context.Context, key string, val []byte) (uint64, error) {
	k.wait(key)
	return k.KV.Create(ctx, key, val)
}

func (k *gateKV) Update(ctx context.Context, key string, val []byte, rev uint64) (uint64, error) {
	k.wait(key)
	return k.KV.Update(ctx, key, val, rev)
}

// gateTickets holds the replica's PUT until released: it is in flight,
// holding the ticket's write lease.
type gateTickets struct {
	Tickets
	once    sync.Once
	arrived chan struct{}
	release chan struct{}
}

func newGateTickets(t Tickets) *gateTickets {
	return &gateTickets{Tickets: t, arrived: make(chan struct{}), release: make(chan struct{})}
}

func (g *gateTickets) UpdateTicket(ctx context.Context, id int64, u ticketsystem.Update) (*ticketsystem.Ticket, error) {
	g.once.Do(func() {
		close(g.arrived)
		<-g.release
	})
	return g.Tickets.UpdateTicket(ctx, id, u)
}

func waitChan(t *testing.T, what string, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(45 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// twoVersions adds a ticket, predicts its first version (older, Sales),
// lets the customer update it, and predicts the second version (newer,
// Billing).
func twoVersions(t *testing.T, h *harness) (id int64, older, newer *v1.Prediction) {
	t.Helper()
	id = h.ticket(freshdesksim.NewTicket{})
	older = h.prediction(id, apply(FieldGroup, "Sales"))
	waitFor(t, "the simulator clock to move", func() bool { return time.Since(h.simTicket(id).UpdatedAt) > 5*time.Millisecond })
	if err := h.sim.AgentUpdate(id, map[string]any{"status": 3}); err != nil {
		t.Fatal(err)
	}
	newer = h.prediction(id, apply(FieldGroup, "Billing"))
	if !newer.TicketUpdatedAt.AsTime().After(older.TicketUpdatedAt.AsTime()) {
		t.Fatalf("second version %v is not newer than %v", newer.TicketUpdatedAt.AsTime(), older.TicketUpdatedAt.AsTime())
	}
	return id, older, newer
}

func replicaConfig(c *Config) { c.Reread = true; c.Lease = 2 * time.Second }

// The defect as reported: replica B reads the ledger for the older
// prediction, replica A writes the newer one, then B goes on. B's
// compare-and-set finds the record moved, B starts again from a fresh read
// and skips its prediction as older than the one applied.
func TestReplicasNeverWriteAnOlderPredictionOverANewer(t *testing.T) {
	t.Run("older read before the newer lands", func(t *testing.T) {
		h := newHarness(t, options{writer: replicaConfig})
		id, older, newer := twoVersions(t, h)
		gate := newGateKV(h.kv)
		b := h.crashedStage(gate, freshdeskAdapter(h), h.conn, replicaConfig)
		errB := make(chan error, 1)
		go func() { errB <- h.handleWith(b, older, 1) }()
		waitChan(t, "replica B to reach its compare-and-set", gate.arrived)
		if err := h.handle(newer, 1); err != nil { // replica A
			t.Fatal(err)
		}
		close(gate.release)
		if err := <-errB; err != nil {
			t.Fatalf("replica B: %v", err)
		}
		wantNewerWon(t, h, id, older, newer)
		if v := testutil.ToFloat64(b.metrics.leaseWaits.WithLabelValues("restart")); v < 1 {
			t.Errorf("replica B restarted %v times, want at least once", v)
		}
	})
	// A replica holds the lease for the newer prediction (its PUT in
	// flight) when another gets the older one: the lease names the version
	// it writes, so the other skips at once.
	t.Run("newer in flight", func(t *testing.T) {
		h := newHarness(t, options{writer: replicaConfig})
		id, older, newer := twoVersions(t, h)
		gate := newGateTickets(freshdeskAdapter(h))
		a := h.crashedStage(h.kv, gate, h.conn, replicaConfig)
		errA := make(chan error, 1)
		go func() { errA <- h.handleWith(a, newer, 1) }()
		waitChan(t, "replica A's PUT", gate.arrived)
		if err := h.handle(older, 1); err != nil { // replica B, while A's PUT is in flight
			t.Fatal(err)
		}
		close(gate.release)
		if err := <-errA; err != nil {
			t.Fatal(err)
		}
		wantNewerWon(t, h, id, older, newer)
	})
	// The older prediction is in flight when the newer one comes: the
	// newer waits for the lease and is written after it.
	t.Run("older in flight", func(t *testing.T) {
		h := newHarness(t, options{writer: replicaConfig})
		id, older, newer := twoVersions(t, h)
		gate := newGateTickets(freshdeskAdapter(h))
		a := h.crashedStage(h.kv, gate, h.conn, replicaConfig)
		errA := make(chan error, 1)
		go func() { errA <- h.handleWith(a, older, 1) }()
		waitChan(t, "replica A's PUT", gate.arrived)
		errB := make(chan error, 1)
		go func() { errB <- h.handle(newer, 1) }()
		waitFor(t, "replica B to wait for the lease", func() bool {
			return testutil.ToFloat64(h.stage.metrics.leaseWaits.WithLabelValues("wait")) >= 1
		})
		close(gate.release)
		for _, c := range []chan error{errA, errB} {
			if err := <-c; err != nil {
				t.Fatal(err)
			}
		}
		if st := h.simTicket(id); st.GroupID != h.groupID("Billing") {
			t.Errorf("group %d, want the newer prediction's (Billing)", st.GroupID)
		}
		for _, o := range h.outcomes()[id] {
			wantAction(t, o, FieldGroup, v1.Action_ACTION_APPLIED, ReasonApplied)
		}
	})
}

func wantNewerWon(t *testing.T, h *harness, id int64, older, newer *v1.Prediction) {
	t.Helper()
	if st := h.simTicket(id); st.GroupID != h.groupID("Billing") {
		t.Errorf("group %d, want the newer prediction's (Billing)", st.GroupID)
	}
	outs := h.outcomes()[id]
	if len(outs) != 2 {
		t.Fatalf("%d outcomes, want one per prediction", len(outs))
	}
	for _, o := range outs {
		if o.Key() == v1.PredictionKey(older) {
			wantAction(t, o, FieldGroup, v1.Action_ACTION_SKIPPED, ReasonNewerApplied)
		} else {
			wantAction(t, o, FieldGroup, v1.Action_ACTION_APPLIED, ReasonApplied)
		}
	}
	_ = newer
}

// mortal is a writer process that dies once it has done phase dieAfter:
// from then on every ledger write, ticket-system call and publish fails,
// as for a process killed at that point (its lease is never released).
type mortal struct {
	dieAfter string
	dead     atomic.Bool
	writes   atomic.Int32
}

func (p *mortal) reached(phase string) {
	if phase == p.dieAfter {
		p.dead.Store(true)
	}
}

type mortalKV struct {
	ledger.KV
	p *mortal
}

func (k mortalKV) after(key string, err error) {
	if err == nil && strings.HasPrefix(key, "applied.") && k.p.writes.Add(1) == 1 {
		k.p.reached("intent")
	}
}

func (k mortalKV) Get(ctx context.Context, key string) (pipeline.Entry, error) {
	if k.p.dead.Load() {
		return pipeline.Entry{}, errCrashed
	}
	return k.KV.Get(ctx, key)
}

func (k mortalKV) Create(ctx context.Context, key string, val []byte) (uint64, error) {
	if k.p.dead.Load() {
		return 0, errCrashed
	}
	r, err := k.KV.Create(ctx, key, val)
	k.after(key, err)
	return r, err
}

func (k mortalKV) Update(ctx context.Context, key string, val []byte, rev uint64) (uint64, error) {
	if k.p.dead.Load() {
		return 0, errCrashed
	}
	r, err := k.KV.Update(ctx, key, val, rev)
	k.after(key, err)
	return r, err
}

func (k mortalKV) Put(ctx context.Context, key string, val []byte) (uint64, error) {
	if k.p.dead.Load() {
		return 0, errCrashed
	}
	r, err := k.KV.Put(ctx, key, val)
	k.after(key, err)
	return r, err
}

type mortalTickets struct {
	Tickets
	p *mortal
}

func (m mortalTickets) GetTicket(ctx context.Context, id int64) (*ticketsystem.Ticket, error) {
	if m.p.dead.Load() {
		return nil, errCrashed
	}
	return m.Tickets.GetTicket(ctx, id)
}

func (m mortalTickets) AddNote(ctx context.Context, id int64, n ticketsystem.Note) (*ticketsystem.Conversation, error) {
	if m.p.dead.Load() {
		return nil, errCrashed
	}
	c, err := m.Tickets.AddNote(ctx, id, n)
	if err == nil {
		m.p.reached("note")
	}
	return c, err
}

func (m mortalTickets) UpdateTicket(ctx context.Context, id int64, u ticketsystem.Update) (*ticketsystem.Ticket, error) {
	if m.p.dead.Load() {
		return nil, errCrashed
	}
	t, err := m.Tickets.UpdateTicket(ctx, id, u)
	if err == nil {
		m.p.reached("put")
	}
	return t, err
}

type mortalPub struct {
	Publisher
	p *mortal
}

func (m mortalPub) Publish(ctx context.Context, o pipeline.OutMsg) (pipeline.PubAck, error) {
	m.p.reached("record") // the record is written before the outcome
	if m.p.dead.Load() {
		return pipeline.PubAck{}, errCrashed
	}
	ack, err := m.Publisher.Publish(ctx, o)
	m.p.reached("outcome") // stored, but the process dies before its ack
	if err == nil && m.p.dead.Load() {
		return pipeline.PubAck{}, errCrashed
	}
	return ack, err
}

// A replica dies after each phase of a write; another replica gets the
// redelivery. The lease the dead one held expires, and the ticket ends
// written once: one note, the fields applied, one outcome that says so.
func TestReplicaTakesOverAfterACrashAtEveryPhase(t *testing.T) {
	for _, phase := range []string{"intent", "note", "put", "record", "outcome"} {
		t.Run(phase, func(t *testing.T) {
			h := newHarness(t, options{writer: replicaConfig})
			id, pred := crashPrediction(h, true)
			p := &mortal{dieAfter: phase}
			a := h.crashedStage(mortalKV{h.kv, p}, mortalTickets{freshdeskAdapter(h), p}, mortalPub{h.conn, p}, replicaConfig)
			if err := h.handleWith(a, pred, 1); err == nil {
				t.Fatalf("replica A finished although it died after %s", phase)
			}
			if !p.dead.Load() {
				t.Fatalf("replica A never reached %s", phase)
			}
			h.redeliver(h.stage, pred, 2) // replica B
			wantSameOutcomeAfterCrash(t, h, id, true)
			rec, err := h.ledger.GetApplied(context.Background(), testSystem, testAccount, id)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Lease(time.Now()) != nil {
				t.Errorf("lease still held after the write: %+v", rec.Intent)
			}
		})
	}
}

// TestReplicasRollingRestart runs writer replicas on one durable consumer,
// each with its own NATS connection, over 1,000 tickets of which some have
// two versions predicted in either order. In the middle a new replica
// starts, then an old one stops (a rolling update), and another dies
// without draining (its connection closes mid-write, its leases are left
// to expire). Nothing is older-over-newer, no note is posted twice and
// every prediction has exactly one outcome.
func TestReplicasRollingRestart(t *testing.T) {
	tickets, twice := 1000, 200
	if testing.Short() {
		tickets, twice = 200, 50
	}
	h := newHarness(t, options{writer: replicaConfig})
	top := pipeline.DefaultTopology()
	top.AckWait = 5 * time.Second
	top.MaxDeliver = 20

	type replica struct {
		conn   *pipeline.Conn
		cancel context.CancelFunc
		done   chan error
		once   sync.Once
		err    error
	}
	stop := func(r *replica) error {
		r.once.Do(func() { r.cancel(); r.err = <-r.done })
		return r.err
	}
	start := func(name string) *replica {
		conn := natstest.Connect(t, h.ns, top)
		kv, err := conn.KV(context.Background(), pipeline.BucketWriter)
		if err != nil {
			t.Fatal(err)
		}
		c := testConfig()
		replicaConfig(&c)
		s, err := New(c, Deps{Tickets: freshdeskAdapter(h), KV: kv, Publisher: conn})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &replica{conn: conn, cancel: cancel, done: make(chan error, 1)}
		go func() { r.done <- s.Run(ctx, conn) }()
		t.Cleanup(func() { _ = stop(r) })
		t.Logf("replica %s started", name)
		return r
	}

	type want struct {
		id            int64
		older, newest *v1.Prediction
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var wants []want
	var preds []*v1.Prediction
	for i := range tickets {
		id := h.ticket(freshdesksim.NewTicket{})
		w := want{id: id}
		if i < twice {
			_, w.older, w.newest = func() (int64, *v1.Prediction, *v1.Prediction) {
				older := h.prediction(id, apply(FieldGroup, "Sales"), suggest(FieldPriority, "High"))
				if err := h.sim.AgentUpdate(id, map[string]any{"status": 3}); err != nil {
					t.Fatal(err)
				}
				newer := h.prediction(id, apply(FieldGroup, "Billing"), suggest(FieldPriority, "Urgent"))
				return id, older, newer
			}()
			if !w.newest.TicketUpdatedAt.AsTime().After(w.older.TicketUpdatedAt.AsTime()) {
				t.Fatalf("ticket %d: the second version is not newer", id)
			}
			if rng.IntN(2) == 0 {
				preds = append(preds, w.newest, w.older)
			} else {
				preds = append(preds, w.older, w.newest)
			}
		} else {
			w.newest = h.prediction(id, apply(FieldGroup, "Billing"), apply(FieldType, "Incident"), suggest(FieldPriority, "High"))
			preds = append(preds, w.newest)
		}
		wants = append(wants, w)
	}
	// Two versions of a ticket arrive far apart in the stream as often as
	// next to each other.
	rng.Shuffle(len(preds), func(i, j int) { preds[i], preds[j] = preds[j], preds[i] })

	a, b := start("a"), start("b")
	publishAll := func(ps []*v1.Prediction) {
		for _, p := range ps {
			h.publish(p, v1.PredictionKey(p))
		}
	}
	third := len(preds) / 3
	publishAll(preds[:third])
	waitFor(t, "a third of the outcomes", func() bool { return h.count(pipeline.StreamOutcomes) >= uint64(third/2) })
	c := start("c")                 // rolling update: the new replica first
	if err := stop(a); err != nil { // then the old one stops, draining what it holds
		t.Errorf("replica a: %v", err)
	}
	publishAll(preds[third : 2*third])
	waitFor(t, "two thirds of the outcomes", func() bool { return h.count(pipeline.StreamOutcomes) >= uint64(third) })
	b.conn.Close() // b dies mid-write: no drain, no acks, leases left held
	d := start("d")
	publishAll(preds[2*third:])
	_, _ = c, d

	waitFor(t, "every prediction's outcome", func() bool {
		st, err := h.conn.ConsumerStats(context.Background(), pipeline.StreamPredictions, pipeline.ConsumerWriter)
		return err == nil && st.Pending == 0 && st.AckPending == 0 && h.count(pipeline.StreamOutcomes) >= uint64(len(preds))
	})

	perKey := map[string]int{}
	for _, outs := range h.outcomes() {
		for _, o := range outs {
			perKey[o.Key()]++
		}
	}
	var failures int
	fail := func(format string, args ...any) {
		if failures++; failures <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, p := range preds {
		if n := perKey[v1.PredictionKey(p)]; n != 1 {
			fail("ticket %d version %v: %d outcomes, want 1", p.TicketId, p.TicketUpdatedAt.AsTime(), n)
		}
	}
	billing := h.groupID("Billing")
	for _, w := range wants {
		if st := h.simTicket(w.id); st.GroupID != billing {
			fail("ticket %d: group %d, want the newest prediction's (Billing)", w.id, st.GroupID)
		}
		notes := h.sim.Notes(w.id)
		bodies := map[string]int{}
		for _, n := range notes {
			if bodies[n.Body]++; bodies[n.Body] > 1 {
				fail("ticket %d: the same note posted twice", w.id)
			}
		}
		if max := 1 + btoi(w.older != nil); len(notes) > max || len(notes) == 0 {
			fail("ticket %d: %d notes, want 1 to %d (one per decision)", w.id, len(notes), max)
		}
	}
	if failures > 20 {
		t.Errorf("... %d failures in all", failures)
	}
	t.Logf("%d tickets, %d predictions, %d outcomes", tickets, len(preds), h.count(pipeline.StreamOutcomes))
}

// redeliver delivers p to s as delivery n, n+1, ... as the consumer would,
// after each retry's delay, until the handler is done with it.
func (h *harness) redeliver(s *Stage, p *v1.Prediction, n uint64) {
	h.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for ; ; n++ {
		err := h.handleWith(s, p, n)
		if err == nil {
			return
		}
		d, retry := pipeline.RetryDelay(err)
		if !retry || time.Now().After(deadline) {
			h.t.Fatalf("delivery %d: %v", n, err)
		}
		time.Sleep(min(d, time.Second))
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
