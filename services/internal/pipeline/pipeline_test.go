package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/natsserver"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

func testTopology() pipeline.Topology {
	t := pipeline.DefaultTopology()
	t.AckWait = 2 * time.Second
	t.MaxDeliver = 3
	return t
}

func connect(t *testing.T, srv *natsserver.Server, top pipeline.Topology) *pipeline.Conn {
	t.Helper()
	return natstest.Connect(t, srv, top)
}

// consume runs a consume loop in the background and returns a stop function
// that waits for it to return.
func consume(t *testing.T, c *pipeline.Conn, o pipeline.ConsumeOptions, h pipeline.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Consume(ctx, o, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("consume returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("consume did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func publish(t *testing.T, c *pipeline.Conn, subject, id, data string) pipeline.PubAck {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := c.Publish(ctx, pipeline.OutMsg{Subject: subject, ID: id, Data: []byte(data)})
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

// waitFor polls cond until it holds or the (generous) deadline passes.
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

func streamCount(t *testing.T, c *pipeline.Conn, name string) uint64 {
	t.Helper()
	ss, err := c.StreamStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if s.Name == name {
			return s.Messages
		}
	}
	t.Fatalf("no stream %s", name)
	return 0
}

func classifierOpts() pipeline.ConsumeOptions {
	return pipeline.ConsumeOptions{Stage: "classifier", Stream: pipeline.StreamTickets, Durable: pipeline.ConsumerClassifier, Concurrency: 4}
}

func TestTopologyIsIdempotent(t *testing.T) {
	srv := natstest.Start(t)
	c := connect(t, srv, testTopology())
	if err := c.EnsureTopology(context.Background()); err != nil {
		t.Fatalf("second ensure: %v", err)
	}
	top := testTopology()
	top.MaxAge = 48 * time.Hour // an operator changes a limit: updated in place
	c2 := connect(t, srv, top)
	if err := c2.Ready(); err != nil {
		t.Fatalf("not ready after ensure: %v", err)
	}
}

func TestMessageFlowsToNextStream(t *testing.T) {
	srv := natstest.Start(t)
	c := connect(t, srv, testTopology())
	consume(t, c, classifierOpts(), func(ctx context.Context, m *pipeline.Msg) error {
		_, err := c.Publish(ctx, pipeline.OutMsg{Subject: "predictions.freshdesk.acme.1", ID: "p:" + m.Subject, Data: append([]byte("pred:"), m.Data...)})
		return err
	})
	publish(t, c, pipeline.TicketSubject("freshdesk", "acme", 1), "freshdesk:acme:1:t1", "ticket-1")
	waitFor(t, "a prediction", func() bool { return streamCount(t, c, pipeline.StreamPredictions) == 1 })
	raw, err := c.GetMsg(context.Background(), pipeline.StreamPredictions, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(raw.Data) != "pred:ticket-1" {
		t.Fatalf("prediction payload %q", raw.Data)
	}
	waitFor(t, "the ticket to be acked", func() bool {
		st, err := c.ConsumerStats(context.Background(), pipeline.StreamTickets, pipeline.ConsumerClassifier)
		return err == nil && st.AckFloor == 1 && st.AckPending == 0
	})
}

func TestDuplicatePublishIsDropped(t *testing.T) {
	srv := natstest.Start(t)
	c := connect(t, srv, testTopology())
	a1 := publish(t, c, "tickets.freshdesk.acme.7", "freshdesk:acme:7:2026-01-01T00:00:00Z", "v1")
	a2 := publish(t, c, "tickets.freshdesk.acme.7", "freshdesk:acme:7:2026-01-01T00:00:00Z", "v1 again")
	if a1.Duplicate || !a2.Duplicate {
		t.Fatalf("duplicate flags: first %v, second %v", a1.Duplicate, a2.Duplicate)
	}
	if n := streamCount(t, c, pipeline.StreamTickets); n != 1 {
		t.Fatalf("TICKETS holds %d messages, want 1", n)
	}
}

func TestRetryIsRedeliveredAfterItsDelay(t *testing.T) {
	srv := natstest.Start(t)
	c := connect(t, srv, testTopology())
	const delay = 700 * time.Millisecond
	var mu sync.Mutex
	var seen []time.Time
	consume(t, c, classifierOpts(), func(ctx context.Context, m *pipeline.Msg) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, time.Now())
		if m.NumDelivered == 1 {
			return pipeline.RetryAfter(errors.New("freshdesk said 429"), delay)
		}
		return nil
	})
	publish(t, c, "tickets.freshdesk.acme.2", "x2", "t")
	waitFor(t, "the redelivery", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 2 })
	mu.Lock()
	gap := seen[1].Sub(seen[0])
	mu.Unlock()
	if gap < delay-50*time.Millisecond {
		t.Fatalf("redelivered after %s, before the %s asked for", gap, delay)
	}
	waitFor(t, "the ack", func() bool {
		st, _ := c.ConsumerStats(context.Background(), pipeline.StreamTickets, pipeline.ConsumerClassifier)
		return st.AckFloor == 1
	})
	if n := streamCount(t, c, pipeline.StreamDLQ); n != 0 {
		t.Fatalf("DLQ holds %d, want 0", n)
	}
}

func checkDLQ(t *testing.T, c *pipeline.Conn, wantSubject, wantStage, wantErrPart string, wantSeq uint64, payload string) {
	t.Helper()
	waitFor(t, "a dead letter", func() bool { return streamCount(t, c, pipeline.StreamDLQ) >= 1 })
	raw, err := c.GetMsg(context.Background(), pipeline.StreamDLQ, 1)
	if err != nil {
		t.Fatal(err)
	}
	h := func(k string) string {
		if v := raw.Header[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if raw.Subject != wantSubject {
		t.Errorf("DLQ subject %q, want %q", raw.Subject, wantSubject)
	}
	if string(raw.Data) != payload {
		t.Errorf("DLQ payload %q, want the original %q", raw.Data, payload)
	}
	if h(pipeline.HeaderStage) != wantStage || h(pipeline.HeaderOriginalStream) != pipeline.StreamTickets ||
		h(pipeline.HeaderOriginalSeq) != strconv.FormatUint(wantSeq, 10) || h(pipeline.HeaderDeliveries) == "" ||
		!contains(h(pipeline.HeaderError), wantErrPart) {
		t.Errorf("DLQ headers %v", raw.Header)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0))
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestPermanentErrorGoesToDLQ(t *testing.T) {
	srv := natstest.Start(t)
	c := connect(t, srv, testTopology())
	var calls sync.WaitGroup
	calls.Add(1)
	consume(t, c, classifierOpts(), func(ctx context.Context, m *pipeline.Msg) error {
		defer calls.Done()
		return pipeline.Permanent(errors.New("malformed ticket: not protobuf"))
	})
	publish(t, c, "tickets.freshdesk.acme.3", "x3", "garbage")
	calls.Wait()
	checkDLQ(t, c, "dlq.classifier.acme", "classifier", "malformed ticket", 1, "garbage")
	// Terminated: never delivered again.
	time.Sleep(2500 * time.Millisecond)
	st, err := c.ConsumerStats(context.Background(), pipeline.StreamTickets, pipeline.ConsumerClassifier)
	if err != nil || st.AckPending != 0 || st.Pending != 0 {
		t.Fatalf("consumer after term: %+v %v", st, err)
	}
}

func TestPanicIsDeadLetteredNotCrashed(t *testing.T) {
	srv := natstest.Start(t)
	c := connect(t, srv, testTopology())
	consume(t, c, classifierOpts(), func(ctx context.Context, m *pipeline.Msg) error {
		var p *pipeline.Msg
		_ = p.Subject // nil dereference
		return nil
	})
	publish(t, c, "tickets.freshdesk.acme.9", "x9", "boom")
	checkDLQ(t, c, "dlq.classifier.acme", "classifier", "panic", 1, "boom")
}

func TestMaxDeliverExhaustedGoesToDLQ(t *testing.T) {
	srv := natstest.Start(t)
	c := connect(t, srv, testTopology())
	var mu sync.Mutex
	deliveries := 0
	consume(t, c, classifierOpts(), func(ctx context.Context, m *pipeline.Msg) error {
		mu.Lock()
		deliveries++
		mu.Unlock()
		return pipeline.RetryAfter(errors.New("still down"), 50*time.Millisecond)
	})
	publish(t, c, "tickets.freshdesk.acme.4", "x4", "retry-me")
	checkDLQ(t, c, "dlq.classifier.acme", "classifier", "max deliveries exhausted", 1, "retry-me")
	mu.Lock()
	defer mu.Unlock()
	if deliveries != testTopology().MaxDeliver {
		t.Fatalf("handled %d times, want MaxDeliver=%d", deliveries, testTopology().MaxDeliver)
	}
}

func TestMaxDeliveriesAdvisoryDeadLetters(t *testing.T) {
	srv := natstest.Start(t)
	top := testTopology()
	top.AckWait = time.Second
	top.MaxDeliver = 2
	c := connect(t, srv, top)
	stop, err := c.WatchMaxDeliveries(context.Background(), "classifier", pipeline.StreamTickets, pipeline.ConsumerClassifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	publish(t, c, "tickets.freshdesk.acme.5", "x5", "stuck")
	// A consumer that dies on every delivery: it takes the message and never
	// answers, so the server, not the handler, exhausts MaxDeliver.
	for i := 0; i < top.MaxDeliver; i++ {
		dead, err := pipeline.Connect(context.Background(), pipeline.Config{URL: srv.URL(), ConnectWait: time.Second, Topology: top}, "dying", nil)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan struct{}, 1)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			_ = dead.Consume(ctx, pipeline.ConsumeOptions{Stage: "classifier", Stream: pipeline.StreamTickets, Durable: pipeline.ConsumerClassifier,
				Concurrency: 1, Heartbeat: time.Hour, DrainTimeout: time.Millisecond},
				func(ctx context.Context, m *pipeline.Msg) error {
					got <- struct{}{}
					<-ctx.Done()
					return nil
				})
		}()
		select {
		case <-got:
		case <-time.After(30 * time.Second):
			t.Fatalf("delivery %d never came", i+1)
		}
		dead.Close() // dies without acking
		cancel()
	}
	checkDLQ(t, c, "dlq.classifier.acme", "classifier", "max deliveries", 1, "stuck")
}

func TestConsumerDyingMidMessageGetsRedelivery(t *testing.T) {
	srv := natstest.Start(t)
	c := connect(t, srv, testTopology())
	publish(t, c, "tickets.freshdesk.acme.6", "x6", "survivor")

	dying, err := pipeline.Connect(context.Background(), pipeline.Config{URL: srv.URL(), ConnectWait: time.Second, Topology: testTopology()}, "dying", nil)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = dying.Consume(ctx, pipeline.ConsumeOptions{Stage: "classifier", Stream: pipeline.StreamTickets, Durable: pipeline.ConsumerClassifier, Concurrency: 1, DrainTimeout: time.Millisecond},
			func(ctx context.Context, m *pipeline.Msg) error {
				close(started)
				<-ctx.Done()
				return nil
			})
	}()
	<-started
	dying.Close() // the process dies: no ack, no nak

	got := make(chan *pipeline.Msg, 1)
	consume(t, c, classifierOpts(), func(ctx context.Context, m *pipeline.Msg) error {
		got <- m
		return nil
	})
	select {
	case m := <-got:
		if string(m.Data) != "survivor" || m.NumDelivered < 2 {
			t.Fatalf("redelivered %q with %d deliveries", m.Data, m.NumDelivered)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("message lost after the consumer died")
	}
}

func TestServerRestartMidFlowLosesNothing(t *testing.T) {
	srv := natstest.Start(t)
	c := connect(t, srv, testTopology())
	var mu sync.Mutex
	seen := map[string]int{}
	consume(t, c, classifierOpts(), func(ctx context.Context, m *pipeline.Msg) error {
		_, err := c.Publish(ctx, pipeline.OutMsg{Subject: "predictions.freshdesk.acme.1", ID: "p:" + string(m.Data), Data: m.Data})
		if err != nil {
			return err
		}
		mu.Lock()
		seen[string(m.Data)]++
		mu.Unlock()
		return nil
	})
	const n = 200
	for i := range n / 2 {
		publish(t, c, "tickets.freshdesk.acme.1", fmt.Sprint("id-", i), fmt.Sprint("m-", i))
	}
	srv.Stop()
	time.Sleep(500 * time.Millisecond)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	for i := n / 2; i < n; i++ {
		publish(t, c, "tickets.freshdesk.acme.1", fmt.Sprint("id-", i), fmt.Sprint("m-", i))
	}
	waitFor(t, "every message after the restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n
	})
	waitFor(t, "one prediction per ticket", func() bool { return streamCount(t, c, pipeline.StreamPredictions) == n })
	if err := c.Ready(); err != nil {
		t.Fatalf("not ready after restart: %v", err)
	}
}

func TestKVCompareAndSet(t *testing.T) {
	srv := natstest.Start(t)
	c := connect(t, srv, testTopology())
	ctx := context.Background()
	kv, err := c.KV(ctx, pipeline.BucketFetcher)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "cursor"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	rev, err := kv.Create(ctx, "cursor", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "cursor", []byte("b")); !errors.Is(err, pipeline.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := kv.Update(ctx, "cursor", []byte("c"), rev+5); !errors.Is(err, pipeline.ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	if _, err := kv.Update(ctx, "cursor", []byte("c"), rev); err != nil {
		t.Fatalf("update: %v", err)
	}
	e, err := kv.Get(ctx, "cursor")
	if err != nil || string(e.Value) != "c" {
		t.Fatalf("get: %q %v", e.Value, err)
	}
}

func TestObjectStoreRoundTrip(t *testing.T) {
	srv := natstest.Start(t)
	c := connect(t, srv, testTopology())
	ctx := context.Background()
	os, err := c.Objects(ctx, pipeline.ObjectModels)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if _, err := os.Put(ctx, "model-abc", data, map[string]string{"version": "1"}); err != nil {
		t.Fatal(err)
	}
	got, info, err := os.Get(ctx, "model-abc", 10<<20)
	if err != nil || len(got) != len(data) || info.Headers["version"] != "1" {
		t.Fatalf("get: %d bytes, %+v, %v", len(got), info, err)
	}
	if _, _, err := os.Get(ctx, "model-abc", 1<<20); err == nil {
		t.Fatal("size limit not enforced")
	}
	if _, _, err := os.Get(ctx, "nope", 1<<20); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("missing object: %v", err)
	}
}
