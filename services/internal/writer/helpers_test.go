package writer

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/fetcher"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/natsserver"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

const (
	testSystem  = "freshdesk"
	testAccount = "sim"
	testModel   = "model-0123456789abcdef0123"
)

// harness is one writer against the simulator (over HTTP, through the real
// Freshdesk client and adapter) and an embedded JetStream server.
type harness struct {
	t      *testing.T
	sim    *freshdesksim.Sim
	client *freshdesk.Client
	conn   *pipeline.Conn
	kv     *pipeline.KV
	stage  *Stage
	ledger *ledger.Ledger
	ns     *natsserver.Server
	// maxDeliver is the consumer's delivery limit, for messages handled directly.
	maxDeliver int
}

type options struct {
	sim        freshdesksim.Config
	writer     func(*Config)
	client     func(*freshdesk.Config)
	maxDeliver int
	// sleepCap bounds every wait of the client (pacer, back-off,
	// Retry-After), so that the client's one-minute windows do not stall a
	// test against a time-scaled simulator.
	sleepCap time.Duration
}

func testConfig() Config {
	return Config{Concurrency: 4, Notes: true, Tag: "autotriage", CatalogTTL: time.Minute,
		CatalogMinRefresh: 0, NoteLease: 300 * time.Millisecond, Lease: 5 * time.Second}
}

func newHarness(t *testing.T, o options) *harness {
	t.Helper()
	if o.maxDeliver == 0 {
		o.maxDeliver = 6
	}
	if o.sleepCap == 0 {
		o.sleepCap = 100 * time.Millisecond
	}
	sim, err := freshdesksim.New(o.sim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if err := sim.Generate(freshdesksim.GenerateOptions{}); err != nil { // groups only
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)

	sleepCap := o.sleepCap
	ccfg := freshdesk.Config{
		APIKey:      "sim-admin-key",
		BaseURL:     srv.URL,
		HTTPClient:  &http.Client{Timeout: 10 * time.Second, Transport: MeterCredits(srv.Client().Transport)},
		BackoffBase: 5 * time.Millisecond,
		BackoffMax:  50 * time.Millisecond,
		Sleep: func(ctx context.Context, d time.Duration) error {
			tm := time.NewTimer(min(d, sleepCap))
			defer tm.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tm.C:
				return nil
			}
		},
	}
	if o.client != nil {
		o.client(&ccfg)
	}
	client, err := freshdesk.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}

	ns := natstest.Start(t)
	top := pipeline.DefaultTopology()
	top.AckWait = 5 * time.Second
	top.MaxDeliver = o.maxDeliver
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := natstest.Connect(t, ns, top)
	kv, err := conn.KV(ctx, pipeline.BucketWriter)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	if o.writer != nil {
		o.writer(&cfg)
	}
	stage, err := New(cfg, Deps{Tickets: freshdesk.NewAdapter(client), KV: kv, Publisher: conn,
		System: testSystem, Account: testAccount})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, sim: sim, client: client, conn: conn, kv: kv, stage: stage, ledger: ledger.New(kv), ns: ns, maxDeliver: o.maxDeliver}
}

// run starts the consume loop; it stops at the end of the test.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.stage.Run(ctx, h.conn) }()
	var once sync.Once
	h.t.Cleanup(func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					h.t.Errorf("Run returned %v", err)
				}
			case <-time.After(30 * time.Second):
				h.t.Error("Run did not return after cancel")
			}
		})
	})
}

// ticket adds an untriaged ticket to the simulator.
func (h *harness) ticket(nt freshdesksim.NewTicket) int64 {
	h.t.Helper()
	if nt.Subject == "" {
		nt.Subject = "My invoice is wrong"
		nt.Description = "I was charged twice for March."
	}
	id, err := h.sim.AddTicket(nt)
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (h *harness) simTicket(id int64) freshdesksim.Ticket {
	h.t.Helper()
	st, ok := h.sim.Ticket(id)
	if !ok {
		h.t.Fatalf("no ticket %d in the simulator", id)
	}
	return st
}

func (h *harness) groupID(name string) int64 {
	h.t.Helper()
	id, ok := h.sim.GroupID(name)
	if !ok {
		h.t.Fatalf("no group %q in the simulator", name)
	}
	return id
}

// prediction is a prediction made from the ticket as the simulator holds it now.
func (h *harness) prediction(id int64, fields ...*v1.FieldPrediction) *v1.Prediction {
	h.t.Helper()
	st := h.simTicket(id)
	tk := &v1.Ticket{
		System: testSystem, Account: testAccount, Id: id, Subject: st.Subject, DescriptionText: st.DescriptionText,
		Tags: st.Tags, Type: st.Type, GroupId: st.GroupID, Priority: int32(st.Priority), Status: int32(st.Status),
		Source: int32(st.Source), RequesterId: st.RequesterID, CreatedAt: timestamppb.New(st.CreatedAt),
		UpdatedAt: timestamppb.New(st.UpdatedAt), Arrival: v1.Arrival_ARRIVAL_POLL, FetchedAt: timestamppb.Now(),
	}
	return &v1.Prediction{System: testSystem, Account: testAccount, TicketId: id, TicketUpdatedAt: tk.UpdatedAt,
		Ticket: tk, ModelId: testModel, ModelVersion: "2025-03-01 test", Fields: fields, PredictedAt: timestamppb.Now()}
}

func field(name string, d v1.Decision, label string, conf float64) *v1.FieldPrediction {
	f := &v1.FieldPrediction{Field: name, Decision: d, Confidence: conf, Threshold: 0.8,
		TopK: []*v1.LabelScore{{Label: label, Probability: conf}, {Label: "Runner Up", Probability: (1 - conf) / 2}}}
	if name == FieldTags {
		f.Labels = []string{label}
	} else {
		f.Label = label
	}
	return f
}

func apply(name, label string) *v1.FieldPrediction {
	return field(name, v1.Decision_DECISION_APPLY, label, 0.95)
}

func suggest(name, label string) *v1.FieldPrediction {
	return field(name, v1.Decision_DECISION_SUGGEST, label, 0.7)
}

func tags(d v1.Decision, ls ...string) *v1.FieldPrediction {
	return &v1.FieldPrediction{Field: FieldTags, Decision: d, Labels: ls, Confidence: 0.9}
}

// publish puts a prediction on PREDICTIONS under msgID.
func (h *harness) publish(p *v1.Prediction, msgID string) {
	h.t.Helper()
	b, err := proto.Marshal(p)
	if err != nil {
		h.t.Fatal(err)
	}
	h.publishRaw(pipeline.PredictionSubject(p.System, p.Account, p.TicketId), msgID, b)
}

func (h *harness) publishRaw(subject, msgID string, data []byte) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.conn.Publish(ctx, pipeline.OutMsg{Subject: subject, ID: msgID, Data: data}); err != nil {
		h.t.Fatal(err)
	}
}

// handle runs the handler directly, as delivery number n of a message.
func (h *harness) handle(p *v1.Prediction, n uint64) error {
	h.t.Helper()
	return h.handleWith(h.stage, p, n)
}

// handleWith runs a stage's handler (another replica's) directly, as
// delivery number n of a message.
func (h *harness) handleWith(s *Stage, p *v1.Prediction, n uint64) error {
	h.t.Helper()
	b, err := proto.Marshal(p)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.Handle(ctx, &pipeline.Msg{Subject: pipeline.PredictionSubject(p.System, p.Account, p.TicketId),
		Data: b, Stream: pipeline.StreamPredictions, NumDelivered: n, MaxDeliver: h.maxDeliver})
}

func (h *harness) count(stream string) uint64 {
	h.t.Helper()
	ss, err := h.conn.StreamStats(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	for _, s := range ss {
		if s.Name == stream {
			return s.Messages
		}
	}
	h.t.Fatalf("no stream %s", stream)
	return 0
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// settle waits until the writer consumer has acknowledged (or terminated)
// every message and n outcomes are stored, then returns them by ticket.
func (h *harness) settle(n int) map[int64][]*v1.Outcome {
	h.t.Helper()
	waitFor(h.t, "the writer to finish every prediction", func() bool {
		st, err := h.conn.ConsumerStats(context.Background(), pipeline.StreamPredictions, pipeline.ConsumerWriter)
		return err == nil && st.Pending == 0 && st.AckPending == 0 && h.count(pipeline.StreamOutcomes) >= uint64(n)
	})
	return h.outcomes()
}

func (h *harness) outcomes() map[int64][]*v1.Outcome {
	h.t.Helper()
	out := map[int64][]*v1.Outcome{}
	total := h.count(pipeline.StreamOutcomes)
	for seq := uint64(1); seq <= total; seq++ {
		raw, err := h.conn.GetMsg(context.Background(), pipeline.StreamOutcomes, seq)
		if err != nil {
			h.t.Fatal(err)
		}
		var o v1.Outcome
		if err := proto.Unmarshal(raw.Data, &o); err != nil {
			h.t.Fatal(err)
		}
		if raw.Subject != pipeline.OutcomeSubject(o.System, o.Account, o.TicketId) {
			h.t.Errorf("outcome on subject %q", raw.Subject)
		}
		out[o.TicketId] = append(out[o.TicketId], &o)
	}
	return out
}

// only returns the single outcome of a ticket, failing on none or several.
func only(t *testing.T, outs map[int64][]*v1.Outcome, id int64) *v1.Outcome {
	t.Helper()
	if len(outs[id]) != 1 {
		t.Fatalf("ticket %d has %d outcomes, want exactly 1", id, len(outs[id]))
	}
	return outs[id][0]
}

func fieldOutcome(t *testing.T, o *v1.Outcome, name string) *v1.FieldOutcome {
	t.Helper()
	for _, f := range o.Fields {
		if f.Field == name {
			return f
		}
	}
	t.Fatalf("outcome of ticket %d has no field %q: %v", o.TicketId, name, o.Fields)
	return nil
}

func wantAction(t *testing.T, o *v1.Outcome, name string, a v1.Action, reason string) *v1.FieldOutcome {
	t.Helper()
	f := fieldOutcome(t, o, name)
	if f.Action != a || (reason != "" && f.Reason != reason) {
		t.Errorf("ticket %d field %s: action %v reason %q, want %v %q", o.TicketId, name, f.Action, f.Reason, a, reason)
	}
	return f
}

// calls returns the number of requests to a simulator endpoint with a given
// status (0: any status).
func calls(sim *freshdesksim.Sim, ep string, status int) int64 {
	st := sim.Stats().Endpoints[ep]
	if status == 0 {
		return st.Calls
	}
	return st.ByStatus[status]
}

func freshdeskAdapter(h *harness) *freshdesk.Adapter { return freshdesk.NewAdapter(h.client) }

func timeAfter(p *v1.Prediction, d time.Duration) *timestamppb.Timestamp {
	return timestamppb.New(p.TicketUpdatedAt.AsTime().Add(d))
}

func itoa(i int) string { return strconv.Itoa(i) }

const testWebhookSecret = "writer-test-webhook-secret-0123"

// observer is the real fetcher stage over the same simulator (through the
// harness's client) and JetStream: its polls and webhooks record every
// ticket version they read as the ticket's newest observed version, which
// is what the writer checks predictions against by default.
type observer struct {
	h    *harness
	f    *fetcher.Fetcher
	hook *httptest.Server
}

func (h *harness) observer() *observer {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	state, err := h.conn.KV(ctx, pipeline.BucketFetcher)
	if err != nil {
		h.t.Fatal(err)
	}
	cfg := fetcher.DefaultConfig()
	cfg.Start = "24h" // the tests' tickets exist before the observer starts
	cfg.WebhookSecret = testWebhookSecret
	ad := freshdesk.NewAdapter(h.client)
	f, err := fetcher.New(cfg, fetcher.Deps{System: testSystem, Account: testAccount, Source: ad, Catalog: ad,
		Bus: h.conn, State: state, Ledger: h.ledger})
	if err != nil {
		h.t.Fatal(err)
	}
	hook := httptest.NewServer(f.WebhookHandler())
	h.t.Cleanup(hook.Close)
	return &observer{h: h, f: f, hook: hook}
}

// poll runs one poll of the change feed from the fetcher's cursor.
func (o *observer) poll() {
	o.h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := o.f.PollOnce(ctx); err != nil {
		o.h.t.Fatal(err)
	}
}

// webhook delivers an automation-rule webhook for a ticket, as Freshdesk
// does on ticket updates; the fetcher reads the ticket by id.
func (o *observer) webhook(id int64) {
	o.h.t.Helper()
	body := `{"freshdesk_webhook":{"ticket_id":"` + strconv.FormatInt(id, 10) + `","triggered_event":"{ticket_action:created}"}}`
	req, err := http.NewRequest(http.MethodPost, o.hook.URL+fetcher.WebhookPath, strings.NewReader(body))
	if err != nil {
		o.h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(fetcher.DefaultConfig().WebhookHeader, testWebhookSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		o.h.t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		o.h.t.Fatalf("webhook for ticket %d: HTTP %d", id, res.StatusCode)
	}
}

// seen returns the newest observed version of a ticket: the newer of the
// fetcher's seen record and the writer's own (Applied.Seen).
func (h *harness) seen(id int64) ledger.Seen {
	h.t.Helper()
	ctx := context.Background()
	fs, err := h.ledger.GetSeen(ctx, testSystem, testAccount, id)
	found := err == nil
	if err != nil && !errors.Is(err, ledger.ErrNotFound) {
		h.t.Fatalf("seen record of ticket %d: %v", id, err)
	}
	var rec *ledger.Applied
	if a, err := h.ledger.GetApplied(ctx, testSystem, testAccount, id); err == nil {
		rec = &a
	} else if !errors.Is(err, ledger.ErrNotFound) {
		h.t.Fatalf("ledger record of ticket %d: %v", id, err)
	}
	s, ok := ledger.NewestSeen(fs, found, rec)
	if !ok {
		h.t.Fatalf("no observed version of ticket %d", id)
	}
	return s
}

// published returns the ticket versions the fetcher published to TICKETS,
// by ticket, oldest first.
func (h *harness) published() map[int64][]*v1.Ticket {
	h.t.Helper()
	out := map[int64][]*v1.Ticket{}
	total := h.count(pipeline.StreamTickets)
	for seq := uint64(1); seq <= total; seq++ {
		raw, err := h.conn.GetMsg(context.Background(), pipeline.StreamTickets, seq)
		if err != nil {
			h.t.Fatal(err)
		}
		var tk v1.Ticket
		if err := proto.Unmarshal(raw.Data, &tk); err != nil {
			h.t.Fatal(err)
		}
		out[tk.Id] = append(out[tk.Id], &tk)
	}
	return out
}

// predictionFrom is the prediction the classifier would publish for a ticket
// version from TICKETS.
func predictionFrom(tk *v1.Ticket, fields ...*v1.FieldPrediction) *v1.Prediction {
	return &v1.Prediction{System: tk.System, Account: tk.Account, TicketId: tk.Id, TicketUpdatedAt: tk.UpdatedAt,
		Ticket: tk, ModelId: testModel, ModelVersion: "2025-03-01 test", Fields: fields, PredictedAt: timestamppb.Now()}
}
