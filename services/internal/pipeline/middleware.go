package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
)

// Middleware wraps a Handler with one concern of the consume loop.
type Middleware func(Handler) Handler

// Chain wraps h in mws, the first outermost.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// chain is the consume loop around a stage's handler, outermost first:
// settle acknowledges the message as the rest decided and counted counts
// that decision; deadLettering sends a failure for good (Permanent, or on the
// final delivery) to the DLQ; redeliver picks the delay of any other
// failure; timed observes the handler's time, Heartbeat keeps the ack
// timer from running out meanwhile and Recover turns a panic into a
// permanent failure. The stage's own middleware runs inside them all, so
// no stage has to know the consumer's MaxDeliver (Msg.Final says it).
func (c *Consumer) chain(o ConsumeOptions, log *slog.Logger, h Handler) Handler {
	mws := []Middleware{
		settle(log),
		counted(o.Stage, o.Metrics),
		c.deadLettering(o.Stage, o.Backoff, log),
		redeliver(o.Backoff, log),
		timed(o.Stage, o.Metrics),
		Heartbeat(o.Heartbeat),
		Recover,
	}
	return Chain(h, append(mws, o.Middleware...)...)
}

// Recover turns a panic of the handler into a Permanent error carrying the
// stack: one bad message must not take the process down.
func Recover(next Handler) Handler {
	return func(ctx context.Context, m *Msg) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = Permanent(fmt.Errorf("handler panic: %v\n%s", r, truncate(string(debug.Stack()), 2048)))
			}
		}()
		return next(ctx, m)
	}
}

// Heartbeat tells the server the message is in progress every interval
// while the handler runs, so a long handler keeps its delivery.
func Heartbeat(every time.Duration) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Msg) error {
			done := make(chan struct{})
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				t := time.NewTicker(every)
				defer t.Stop()
				for {
					select {
					case <-done:
						return
					case <-t.C:
						_ = m.InProgress()
					}
				}
			}()
			defer func() { close(done); <-stopped }()
			return next(ctx, m)
		}
	}
}

// timed observes the handler's time.
func timed(stage string, metrics *Metrics) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Msg) error {
			start := time.Now()
			err := next(ctx, m)
			metrics.observe(stage, time.Since(start))
			return err
		}
	}
}

// redeliver gives a failure that is neither Permanent nor on the final
// delivery its redelivery delay: none when the drain cancelled the handler
// (the message goes back at once, for another replica or this one after
// its restart), else the handler's RetryAfter delay or backoff by the
// number of deliveries.
func redeliver(backoff func(deliveries uint64) time.Duration, log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Msg) error {
			err := next(ctx, m)
			if err == nil || IsPermanent(err) || m.Final() {
				return err
			}
			if ctx.Err() != nil {
				log.Info("handler cancelled by the shutdown; message handed back", "seq", m.StreamSeq, "subject", m.Subject, "deliveries", m.NumDelivered)
				return RetryAfter(err, 0)
			}
			delay, ok := RetryDelay(err)
			if !ok {
				delay = backoff(m.NumDelivered)
			}
			log.Info("handler asked for a retry", "seq", m.StreamSeq, "subject", m.Subject, "deliveries", m.NumDelivered, "delay", delay, "err", err)
			if !ok {
				err = RetryAfter(err, delay)
			}
			return err
		}
	}
}

// deadLettered is the verdict on a message copied to the DLQ: terminate it.
type deadLettered struct {
	reason string
	err    error
}

func (e *deadLettered) Error() string { return "dead-lettered: " + e.reason }
func (e *deadLettered) Unwrap() error { return e.err }

// deadLettering copies a message that failed for good (a Permanent error, or
// any failure on the final delivery) to the DLQ, within the shutdown budget
// if the drain cancelled the handler. The copy is what makes terminating
// the message safe: when it fails, the message is redelivered after
// backoff instead.
func (c *Consumer) deadLettering(stage string, backoff func(deliveries uint64) time.Duration, log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Msg) error {
			err := next(ctx, m)
			if err == nil || (!IsPermanent(err) && !m.Final()) {
				return err
			}
			reason := err.Error()
			if !IsPermanent(err) {
				reason = "max deliveries exhausted: " + reason
			}
			if ctx.Err() != nil {
				var cancel context.CancelFunc
				ctx, cancel = c.afterDrainContext()
				defer cancel()
			}
			if derr := c.dead.deadLetter(ctx, stage, m, reason); derr != nil {
				log.Error("dead-letter failed; redelivering", "seq", m.StreamSeq, "err", derr)
				return RetryAfter(fmt.Errorf("dead-letter: %w (after: %w)", derr, err), backoff(m.NumDelivered))
			}
			log.Warn("message dead-lettered", "seq", m.StreamSeq, "subject", m.Subject, "deliveries", m.NumDelivered, "err", reason)
			return &deadLettered{reason: reason, err: err}
		}
	}
}

// counted counts the verdict on each message.
func counted(stage string, metrics *Metrics) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Msg) error {
			err := next(ctx, m)
			var dl *deadLettered
			switch {
			case err == nil:
				metrics.result(stage, "ack")
			case errors.As(err, &dl):
				metrics.result(stage, "dead_letter")
			default:
				metrics.result(stage, "retry")
			}
			return err
		}
	}
}

// settle acknowledges the message as the chain inside decided: nil acks
// it, a dead-lettered failure terminates it, and any other error naks it,
// for redelivery after its RetryAfter delay (none: at once).
func settle(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Msg) error {
			err := next(ctx, m)
			if m.msg == nil {
				return err
			}
			var dl *deadLettered
			switch {
			case err == nil:
				if aerr := m.msg.Ack(); aerr != nil {
					log.Warn("ack failed; the message will be redelivered", "seq", m.StreamSeq, "err", aerr)
				}
			case errors.As(err, &dl):
				_ = m.msg.TermWithReason(truncate(dl.reason, 256))
			default:
				delay, _ := RetryDelay(err)
				_ = m.msg.NakWithDelay(delay)
			}
			return err
		}
	}
}
