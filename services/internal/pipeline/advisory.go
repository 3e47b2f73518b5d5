package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
)

// maxDeliveriesAdvisory is the server's event when a message ran out of
// deliveries without an ack or a term (for instance its handler crashed on
// the final attempt).
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// WatchMaxDeliveries copies every message that exhausts MaxDeliver on the
// durable consumer to the DLQ, as the consume loop does for handler
// failures. Every replica may run it: the DLQ copy's message ID makes the
// copy happen once. Advisories are core NATS messages, so one sent while no
// replica listens is missed; the final-attempt path of Consume covers
// handler failures independently of it.
func (c *Conn) WatchMaxDeliveries(ctx context.Context, stage, stream, durable string, metrics *Metrics) (stop func(), err error) {
	subject := fmt.Sprintf("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.%s.%s", stream, durable)
	log := c.log.With("stage", stage, "stream", stream, "consumer", durable)
	sub, err := c.nc.Subscribe(subject, func(nm *nats.Msg) {
		var adv maxDeliveriesAdvisory
		if err := json.Unmarshal(nm.Data, &adv); err != nil || adv.StreamSeq == 0 {
			log.Warn("unreadable max-deliveries advisory", "err", err)
			return
		}
		raw, err := c.getRaw(ctx, adv.Stream, adv.StreamSeq)
		if err != nil {
			log.Error("max deliveries reached but the message cannot be read; not dead-lettered", "seq", adv.StreamSeq, "err", err)
			return
		}
		m := &Msg{
			Subject:      raw.Subject,
			Data:         raw.Data,
			Header:       raw.Header,
			Stream:       adv.Stream,
			StreamSeq:    adv.StreamSeq,
			NumDelivered: adv.Deliveries,
			Published:    raw.Time,
		}
		reason := "max deliveries exhausted (" + strconv.FormatUint(adv.Deliveries, 10) + ") without an ack"
		if err := c.deadLetter(ctx, stage, m, reason); err != nil {
			log.Error("dead-letter after max deliveries failed", "seq", adv.StreamSeq, "err", err)
			return
		}
		metrics.advisory(stage)
		log.Warn("message dead-lettered after max deliveries", "seq", adv.StreamSeq, "subject", raw.Subject)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	metrics.DeadLetters(stage, CauseMaxDeliveries)
	return func() { _ = sub.Unsubscribe() }, nil
}
