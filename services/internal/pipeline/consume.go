package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Msg is a delivered message as a handler sees it.
type Msg struct {
	Subject      string
	Data         []byte
	Header       map[string][]string
	Stream       string
	StreamSeq    uint64
	NumDelivered uint64
	// Published is when the stream stored the message.
	Published time.Time

	msg jetstream.Msg
}

// HeaderValue returns the first value of a header.
func (m *Msg) HeaderValue(k string) string { return nats.Header(m.Header).Get(k) }

// InProgress resets the ack timer; the consume loop already calls it
// periodically, so handlers need it only between long steps of their own.
func (m *Msg) InProgress() error {
	if m.msg == nil {
		return nil
	}
	return m.msg.InProgress()
}

// retryError asks for redelivery after a delay.
type retryError struct {
	err   error
	after time.Duration
}

func (e *retryError) Error() string { return fmt.Sprintf("retry after %s: %v", e.after, e.err) }
func (e *retryError) Unwrap() error { return e.err }

// permanentError asks for dead-lettering: retrying cannot help.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// RetryAfter marks err as transient: the message is redelivered after d
// (Nak with delay), up to the consumer's MaxDeliver, then dead-lettered.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryError{err: err, after: d}
}

// Permanent marks err as final: the message is terminated and copied to the
// DLQ with its stage, error, deliveries and origin.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// RetryDelay returns the delay of a RetryAfter error.
func RetryDelay(err error) (time.Duration, bool) {
	var r *retryError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

// Handler processes one message. Returning nil acks it; RetryAfter and
// Permanent errors choose redelivery or the DLQ; any other error is retried
// with exponential back-off. A panic is caught and treated as permanent.
type Handler func(ctx context.Context, m *Msg) error

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
func (c *Conn) Consume(ctx context.Context, o ConsumeOptions, h Handler) error {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Backoff == nil {
		o.Backoff = defaultBackoff
	}
	log := c.log.With("stage", o.Stage, "stream", o.Stream, "consumer", o.Durable)
	o.Metrics.consuming(o.Stage)
	cons, err := c.consumerWithRetry(ctx, o.Stream, o.Durable)
	if err != nil {
		return err
	}
	info := cons.CachedInfo()
	maxDeliver := info.Config.MaxDeliver
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
	stopping := make(chan struct{})
	pulled := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-pulled:
			return
		}
		close(stopping)
		it.Drain()
	}()

	sem := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	var running atomic.Int64
	// The pull loop runs apart so that a bounded shutdown can return while
	// the iterator still waits for the server (NATS unreachable).
	go func() {
		defer close(pulled)
		for {
			acquired := false
			select {
			case sem <- struct{}{}:
				acquired = true
			case <-stopping:
			}
			release := func() {
				if acquired {
					<-sem
				}
			}
			msg, err := it.Next()
			if err != nil {
				release()
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return
				}
				log.Warn("pull failed; continuing", "err", err)
				select {
				case <-stopping:
				case <-time.After(200 * time.Millisecond):
				}
				continue
			}
			if !acquired {
				// Buffered but not started: give it back at once for another replica.
				_ = msg.Nak()
				continue
			}
			wg.Add(1)
			running.Add(1)
			o.Metrics.running(o.Stage, 1)
			go func() {
				defer wg.Done()
				defer release()
				defer func() { running.Add(-1); o.Metrics.running(o.Stage, -1) }()
				c.handle(hctx, log, o, maxDeliver, msg, h)
			}()
		}
	}()

	select {
	case <-ctx.Done():
	case <-pulled:
	}
	var work, end time.Time
	if c.budget != nil {
		work, end = c.budget.Deadlines()
		if o.DrainTimeout > 0 {
			work = minTime(work, time.Now().Add(o.DrainTimeout))
		}
	}
	endC := timerC(end) // nil without a budget: wait as long as it takes
	select {
	case <-pulled:
	case <-endC:
		log.Warn("shutdown deadline passed before the pull subscription closed; handlers abandoned, their messages are redelivered after the ack wait",
			"running", running.Load())
		hcancel()
		return nil
	}
	if c.budget == nil {
		d := o.DrainTimeout
		if d <= 0 {
			d = 20 * time.Second
		}
		work = time.Now().Add(d)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	workT := time.NewTimer(time.Until(work))
	defer workT.Stop()
	select {
	case <-done:
		return nil
	case <-workT.C:
	}
	log.Warn("drain deadline passed; cancelling in-flight handlers", "running", running.Load(), "budget_left", timeLeft(end))
	hcancel()
	select {
	case <-done:
	case <-endC:
		log.Warn("shutdown deadline passed with handlers still running; abandoned, their messages are redelivered after the ack wait",
			"running", running.Load())
	}
	return nil
}

// afterDrainContext is for the bookkeeping of a handler the drain cancelled:
// it ends with the shutdown budget, or after 10s without one.
func (c *Conn) afterDrainContext() (context.Context, context.CancelFunc) {
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

func (c *Conn) consumerWithRetry(ctx context.Context, stream, durable string) (jetstream.Consumer, error) {
	backoff := 200 * time.Millisecond
	for {
		cons, err := c.js.Consumer(ctx, stream, durable)
		if err == nil {
			return cons, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("bind consumer %s/%s: %w", stream, durable, err)
		}
		c.log.Warn("bind consumer failed; retrying", "stream", stream, "consumer", durable, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bind consumer %s/%s: %w", stream, durable, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (c *Conn) handle(ctx context.Context, log *slog.Logger, o ConsumeOptions, maxDeliver int, msg jetstream.Msg, h Handler) {
	md, err := msg.Metadata()
	if err != nil {
		// Not a JetStream delivery; nothing to ack.
		log.Error("message without metadata", "err", err)
		return
	}
	m := &Msg{
		Subject:      msg.Subject(),
		Data:         msg.Data(),
		Header:       msg.Headers(),
		Stream:       md.Stream,
		StreamSeq:    md.Sequence.Stream,
		NumDelivered: md.NumDelivered,
		Published:    md.Timestamp,
		msg:          msg,
	}
	start := time.Now()
	hbDone := make(chan struct{})
	hbStopped := make(chan struct{})
	go func() {
		defer close(hbStopped)
		t := time.NewTicker(o.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-hbDone:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	herr := safeCall(ctx, h, m)
	close(hbDone)
	<-hbStopped
	o.Metrics.observe(o.Stage, time.Since(start))

	if herr == nil {
		if err := msg.Ack(); err != nil {
			log.Warn("ack failed; the message will be redelivered", "seq", m.StreamSeq, "err", err)
		}
		o.Metrics.result(o.Stage, "ack")
		return
	}
	lastTry := maxDeliver > 0 && int(md.NumDelivered) >= maxDeliver
	if ctx.Err() != nil {
		// The drain cancelled the handler: hand the message back at once
		// for another replica (or this one after its restart).
		if !IsPermanent(herr) && !lastTry {
			_ = msg.Nak()
			log.Info("handler cancelled by the shutdown; message handed back", "seq", m.StreamSeq, "subject", m.Subject, "deliveries", md.NumDelivered)
			o.Metrics.result(o.Stage, "retry")
			return
		}
		// The dead letter below must still be stored, within the shutdown.
		var cancel context.CancelFunc
		ctx, cancel = c.afterDrainContext()
		defer cancel()
	}
	if IsPermanent(herr) || lastTry {
		reason := herr.Error()
		if !IsPermanent(herr) {
			reason = "max deliveries exhausted: " + reason
		}
		if err := c.deadLetter(ctx, o.Stage, m, reason); err != nil {
			// The DLQ copy is what makes a Term safe; without it, try again later.
			log.Error("dead-letter failed; redelivering", "seq", m.StreamSeq, "err", err)
			_ = msg.NakWithDelay(o.Backoff(md.NumDelivered))
			o.Metrics.result(o.Stage, "retry")
			return
		}
		_ = msg.TermWithReason(truncate(reason, 256))
		log.Warn("message dead-lettered", "seq", m.StreamSeq, "subject", m.Subject, "deliveries", md.NumDelivered, "err", reason)
		o.Metrics.result(o.Stage, "dead_letter")
		return
	}
	delay, ok := RetryDelay(herr)
	if !ok {
		delay = o.Backoff(md.NumDelivered)
	}
	log.Info("handler asked for a retry", "seq", m.StreamSeq, "subject", m.Subject, "deliveries", md.NumDelivered, "delay", delay, "err", herr)
	_ = msg.NakWithDelay(delay)
	o.Metrics.result(o.Stage, "retry")
}

func safeCall(ctx context.Context, h Handler, m *Msg) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Permanent(fmt.Errorf("handler panic: %v\n%s", r, truncate(string(debug.Stack()), 2048)))
		}
	}()
	return h(ctx, m)
}

// DeadLetter copies a message to the DLQ with the headers that say where it
// came from and why. The copy's ID is derived from the origin, so repeated
// attempts (a crash between copy and Term, the max-deliveries advisory) store
// it once.
func (c *Conn) deadLetter(ctx context.Context, stage string, m *Msg, reason string) error {
	hdr := map[string]string{}
	for k, v := range m.Header {
		if len(v) > 0 && k != jetstream.MsgIDHeader {
			hdr[k] = v[0]
		}
	}
	hdr[HeaderStage] = stage
	hdr[HeaderError] = truncate(reason, 4096)
	hdr[HeaderDeliveries] = strconv.FormatUint(m.NumDelivered, 10)
	hdr[HeaderOriginalStream] = m.Stream
	hdr[HeaderOriginalSeq] = strconv.FormatUint(m.StreamSeq, 10)
	hdr[HeaderOriginalSubj] = m.Subject
	hdr[HeaderFailedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := c.Publish(pctx, OutMsg{
		Subject: DLQSubject(stage, accountOf(m.Subject)),
		ID:      fmt.Sprintf("dlq:%s:%d", m.Stream, m.StreamSeq),
		Data:    m.Data,
		Header:  hdr,
	})
	return err
}

// DeadLetterRaw sends bad input that never was a stream message (a webhook
// body that failed validation, say) to the DLQ, so nothing is silently dropped.
func (c *Conn) DeadLetterRaw(ctx context.Context, stage, account, id string, data []byte, reason string, header map[string]string) error {
	hdr := map[string]string{}
	for k, v := range header {
		hdr[k] = v
	}
	hdr[HeaderStage] = stage
	hdr[HeaderError] = truncate(reason, 4096)
	hdr[HeaderFailedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	_, err := c.Publish(ctx, OutMsg{Subject: DLQSubject(stage, account), ID: id, Data: data, Header: hdr})
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
