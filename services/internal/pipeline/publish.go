package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// OutMsg is a message to publish. ID becomes Nats-Msg-Id: the stream drops a
// repeat of the same ID within its duplicate window.
type OutMsg struct {
	Subject string
	ID      string
	Data    []byte
	Header  map[string]string
}

// PubAck says where a published message landed.
type PubAck struct {
	Stream    string
	Sequence  uint64
	Duplicate bool // the stream already had this ID; nothing new was stored
}

// ErrPublish wraps every publish failure.
var ErrPublish = errors.New("publish")

// Publisher stores messages in their streams.
type Publisher struct{ *link }

// Publish stores m in its stream and waits for the stream's ack. Transient
// failures (no responders while a server restarts, timeouts) are retried
// after 100ms, then twice as long each time up to 2s, until ctx ends; with
// an ID set this cannot create a duplicate.
func (p *Publisher) Publish(ctx context.Context, m OutMsg) (PubAck, error) {
	msg := nats.NewMsg(m.Subject)
	msg.Data = m.Data
	for k, v := range m.Header {
		msg.Header.Set(k, v)
	}
	var opts []jetstream.PublishOpt
	if m.ID != "" {
		opts = append(opts, jetstream.WithMsgID(m.ID))
	}
	var last error
	attempt := 0
	ack, err := backoff.Retry(ctx, func() (*jetstream.PubAck, error) {
		attempt++
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ack, err := p.js.PublishMsg(actx, msg, opts...)
		if err == nil {
			return ack, nil
		}
		last = err
		// Without an ID, only a failure that proves nothing was stored is retried.
		retry := transientPublishErr(err) && (m.ID != "" || errors.Is(err, nats.ErrNoResponders))
		if !retry || ctx.Err() != nil {
			return nil, backoff.Permanent(fmt.Errorf("%w to %s: %w", ErrPublish, m.Subject, err))
		}
		return nil, err
	}, backoff.WithBackOff(doubling(100*time.Millisecond, 2*time.Second)), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, _ time.Duration) {
			p.log.Debug("publish failed; retrying", "subject", m.Subject, "attempt", attempt, "err", err)
		}))
	switch {
	case err == nil:
		return PubAck{Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
	case errors.Is(err, ErrPublish):
		return PubAck{}, err
	}
	return PubAck{}, fmt.Errorf("%w to %s: %w (last error: %v)", ErrPublish, m.Subject, err, last)
}

func transientPublishErr(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, jetstream.ErrNoStreamResponse)
}
