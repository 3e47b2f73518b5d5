package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Follow calls fn for each message of a stream from o's start point, in
// stream order, and keeps waiting for new ones until ctx ends (returning
// nil then) or fn fails (returning its error; ErrStopRead ends it with
// nil). It reads through an ordered ephemeral consumer: no acks, nothing
// left on the server once the reader is gone, and the client re-creates it
// from the last sequence seen after a disconnect, so no message is passed
// twice or skipped (unless retention removed it meanwhile). o.StopSeq and
// o.Idle are ignored.
func (c *Conn) Follow(ctx context.Context, o ReadOptions, fn func(RawMsg) error) error {
	pol, seq, at := o.deliver()
	cons, err := c.js.OrderedConsumer(ctx, o.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    o.filter(),
		DeliverPolicy:     pol,
		OptStartSeq:       seq,
		OptStartTime:      at,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("follow %s: %w", o.Stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("follow %s: %w", o.Stream, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("follow %s: %w", o.Stream, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("follow %s: %w", o.Stream, err)
		}
		raw := RawMsg{Subject: msg.Subject(), Sequence: md.Sequence.Stream, Data: msg.Data(), Header: msg.Headers(), Time: md.Timestamp}
		if err := fn(raw); err != nil {
			if errors.Is(err, ErrStopRead) {
				return nil
			}
			return err
		}
	}
}
