package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// Consumer runs handlers on the messages of durable consumers.
type Consumer struct {
	*link
	dead   *DeadLetterer
	budget ShutdownBudget
}

// ShutdownBudget is the process's shutdown deadline as the consume loops
// need it (platform.Shutdown).
type ShutdownBudget interface {
	// Deadlines starts the shutdown if it has not started, and returns
	// until when in-flight handlers may run and when the shutdown as a
	// whole must be over.
	Deadlines() (work, end time.Time)
}

// BoundShutdown makes every consume loop on c finish its drain within b:
// in-flight handlers are cancelled at b's work deadline, and the loop
// returns by its end deadline even if a handler ignores the cancellation.
// Call it before the first Consume.
func (c *Consumer) BoundShutdown(b ShutdownBudget) { c.budget = b }

// ConsumeOptions configure a consume loop.
type ConsumeOptions struct {
	// Stage names the consumer in logs, metrics and DLQ headers.
	Stage string
	// Stream and Durable select the durable consumer (ensured by EnsureTopology).
	Stream  string
	Durable string
	// Concurrency bounds handlers running at once (default 4).
	Concurrency int
	// Heartbeat is how often InProgress is sent while a handler runs
	// (default: a third of the consumer's AckWait).
	Heartbeat time.Duration
	// DrainTimeout bounds how long in-flight handlers may run after ctx ends;
	// their context is cancelled then. Without it the process's shutdown
	// budget (Conn.BoundShutdown) decides, or 20s when there is none.
	DrainTimeout time.Duration
	// Backoff gives the redelivery delay for untyped errors (default:
	// exponential from 1s, capped at 1m).
	Backoff func(deliveries uint64) time.Duration
	// Metrics, when set, counts results and handler time.
	Metrics *Metrics
	// Middleware wraps the handler inside the consume loop's own (after
	// Recover, so a panic in it is caught too), the first outermost.
	Middleware []Middleware
}

func defaultBackoff(n uint64) time.Duration {
	d := time.Second
	for i := uint64(1); i < n && d < time.Minute; i++ {
		d *= 2
	}
	return min(d, time.Minute)
}

// Consume runs h on the messages of a durable consumer until ctx ends, then
// stops pulling, hands back the messages it had buffered, waits for
// in-flight handlers and returns. With a shutdown budget (BoundShutdown)
// handlers run until its work deadline, are cancelled then, and Consume
// returns by its end deadline whatever they do; without one they get
// DrainTimeout and Consume waits for them to return. It survives server
// restarts: the pull subscription resumes when the connection returns.
func (c *Consumer) Consume(ctx context.Context, o ConsumeOptions, h Handler) error {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Backoff == nil {
		o.Backoff = defaultBackoff
	}
	log := c.log.With("stage", o.Stage, "stream", o.Stream, "consumer", o.Durable)
	o.Metrics.consuming(o.Stage)
	cons, err := c.bind(ctx, o.Stream, o.Durable)
	if err != nil {
		return err
	}
	info := cons.CachedInfo()
	if o.Heartbeat <= 0 {
		o.Heartbeat = max(info.Config.AckWait/3, 100*time.Millisecond)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(o.Concurrency * 2))
	if err != nil {
		return fmt.Errorf("%s: start consuming %s/%s: %w", o.Stage, o.Stream, o.Durable, err)
	}
	// Handlers outlive ctx until the drain deadline so a shutdown finishes
	// work in hand instead of abandoning it to a redelivery.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	l := &pullLoop{
		it: it, log: log, stage: o.Stage, metrics: o.Metrics, maxDeliver: info.Config.MaxDeliver,
		handler: c.chain(o, log, h), sem: make(chan struct{}, o.Concurrency),
		stopping: make(chan struct{}), pulled: make(chan struct{}),
	}
	go l.stopOn(ctx)
	// The pull loop runs apart so that a bounded shutdown can return while
	// the iterator still waits for the server (NATS unreachable).
	go l.pull(hctx)
	select {
	case <-ctx.Done():
	case <-l.pulled:
	}
	c.drain(l, o.DrainTimeout, hcancel)
	return nil
}

// bind looks the durable consumer up, retrying after 200ms, then twice as
// long each time up to 5s, until ctx ends: a stage may start before the
// consumer's stream has a leader.
func (c *Consumer) bind(ctx context.Context, stream, durable string) (jetstream.Consumer, error) {
	var last error
	cons, err := backoff.Retry(ctx, func() (jetstream.Consumer, error) {
		cons, err := c.js.Consumer(ctx, stream, durable)
		last = err
		return cons, err
	}, backoff.WithBackOff(doubling(200*time.Millisecond, 5*time.Second)), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, _ time.Duration) {
			c.log.Warn("bind consumer failed; retrying", "stream", stream, "consumer", durable, "err", err)
		}))
	if err != nil {
		if last != nil && !errors.Is(err, last) {
			err = fmt.Errorf("%w (last error: %v)", err, last)
		}
		return nil, fmt.Errorf("bind consumer %s/%s: %w", stream, durable, err)
	}
	return cons, nil
}

// drain waits for the pull loop to close and its handlers to return once
// ctx has ended, within the shutdown budget or drainTimeout.
func (c *Consumer) drain(l *pullLoop, drainTimeout time.Duration, hcancel context.CancelFunc) {
	var work, end time.Time
	if c.budget != nil {
		work, end = c.budget.Deadlines()
		if drainTimeout > 0 {
			work = minTime(work, time.Now().Add(drainTimeout))
		}
	}
	endC := timerC(end) // nil without a budget: wait as long as it takes
	select {
	case <-l.pulled:
	case <-endC:
		l.log.Warn("shutdown deadline passed before the pull subscription closed; handlers abandoned, their messages are redelivered after the ack wait",
			"running", l.running.Load())
		hcancel()
		return
	}
	if c.budget == nil {
		if drainTimeout <= 0 {
			drainTimeout = 20 * time.Second
		}
		work = time.Now().Add(drainTimeout)
	}
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	workT := time.NewTimer(time.Until(work))
	defer workT.Stop()
	select {
	case <-done:
		return
	case <-workT.C:
	}
	l.log.Warn("drain deadline passed; cancelling in-flight handlers", "running", l.running.Load(), "budget_left", timeLeft(end))
	hcancel()
	select {
	case <-done:
	case <-endC:
		l.log.Warn("shutdown deadline passed with handlers still running; abandoned, their messages are redelivered after the ack wait",
			"running", l.running.Load())
	}
}

// pullLoop pulls a consumer's messages and runs the handler chain on each,
// at most cap(sem) at once.
type pullLoop struct {
	it         jetstream.MessagesContext
	log        *slog.Logger
	stage      string
	metrics    *Metrics
	maxDeliver int
	handler    Handler
	sem        chan struct{}
	wg         sync.WaitGroup
	running    atomic.Int64
	stopping   chan struct{} // closed when ctx ends: pull no more
	pulled     chan struct{} // closed when the pull loop has returned
}

// stopOn stops pulling when ctx ends: the iterator drains, handing back
// what it had buffered.
func (l *pullLoop) stopOn(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-l.pulled:
		return
	}
	close(l.stopping)
	l.it.Drain()
}

func (l *pullLoop) pull(hctx context.Context) {
	defer close(l.pulled)
	for {
		acquired := false
		select {
		case l.sem <- struct{}{}:
			acquired = true
		case <-l.stopping:
		}
		msg, err := l.it.Next()
		if err != nil {
			if acquired {
				<-l.sem
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			l.log.Warn("pull failed; continuing", "err", err)
			select {
			case <-l.stopping:
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		if !acquired {
			// Buffered but not started: give it back at once for another replica.
			_ = msg.Nak()
			continue
		}
		l.wg.Add(1)
		l.running.Add(1)
		l.metrics.running(l.stage, 1)
		go func() {
			defer l.wg.Done()
			defer func() { <-l.sem }()
			defer func() { l.running.Add(-1); l.metrics.running(l.stage, -1) }()
			l.handle(hctx, msg)
		}()
	}
}

func (l *pullLoop) handle(ctx context.Context, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		// Not a JetStream delivery; nothing to ack.
		l.log.Error("message without metadata", "err", err)
		return
	}
	_ = l.handler(ctx, &Msg{
		Subject:      msg.Subject(),
		Data:         msg.Data(),
		Header:       msg.Headers(),
		Stream:       md.Stream,
		StreamSeq:    md.Sequence.Stream,
		NumDelivered: md.NumDelivered,
		Published:    md.Timestamp,
		MaxDeliver:   l.maxDeliver,
		msg:          msg,
	})
}

// afterDrainContext is for the bookkeeping of a handler the drain cancelled:
// it ends with the shutdown budget, or after 10s without one.
func (c *Consumer) afterDrainContext() (context.Context, context.CancelFunc) {
	if c.budget != nil {
		_, end := c.budget.Deadlines()
		return context.WithDeadline(context.Background(), end)
	}
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// timerC fires at t; a zero t never fires.
func timerC(t time.Time) <-chan time.Time {
	if t.IsZero() {
		return nil
	}
	return time.After(time.Until(t))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// timeLeft is for logs: the time until t, or 0 when there is no t.
func timeLeft(t time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	return max(time.Until(t), 0).Round(time.Millisecond)
}
