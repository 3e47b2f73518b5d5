package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetterer copies what failed for good to the DLQ, with the headers
// that say where it came from and why.
type DeadLetterer struct {
	*link
	pub *Publisher
}

// deadLetter copies a message to the DLQ. The copy's ID is derived from the
// origin, so repeated attempts (a crash between copy and Term, the
// max-deliveries advisory) store it once.
func (d *DeadLetterer) deadLetter(ctx context.Context, stage string, m *Msg, reason string) error {
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
	_, err := d.pub.Publish(pctx, OutMsg{
		Subject: DLQSubject(stage, accountOf(m.Subject)),
		ID:      fmt.Sprintf("dlq:%s:%d", m.Stream, m.StreamSeq),
		Data:    m.Data,
		Header:  hdr,
	})
	return err
}

// DeadLetterRaw sends bad input that never was a stream message (a webhook
// body that failed validation, say) to the DLQ, so nothing is silently dropped.
func (d *DeadLetterer) DeadLetterRaw(ctx context.Context, stage, account, id string, data []byte, reason string, header map[string]string) error {
	hdr := map[string]string{}
	for k, v := range header {
		hdr[k] = v
	}
	hdr[HeaderStage] = stage
	hdr[HeaderError] = truncate(reason, 4096)
	hdr[HeaderFailedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	_, err := d.pub.Publish(ctx, OutMsg{Subject: DLQSubject(stage, account), ID: id, Data: data, Header: hdr})
	return err
}

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
func (d *DeadLetterer) WatchMaxDeliveries(ctx context.Context, stage, stream, durable string, metrics *Metrics) (stop func(), err error) {
	subject := fmt.Sprintf("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.%s.%s", stream, durable)
	log := d.log.With("stage", stage, "stream", stream, "consumer", durable)
	sub, err := d.nc.Subscribe(subject, func(nm *nats.Msg) {
		var adv maxDeliveriesAdvisory
		if err := json.Unmarshal(nm.Data, &adv); err != nil || adv.StreamSeq == 0 {
			log.Warn("unreadable max-deliveries advisory", "err", err)
			return
		}
		raw, err := d.getRaw(ctx, adv.Stream, adv.StreamSeq)
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
		if err := d.deadLetter(ctx, stage, m, reason); err != nil {
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
