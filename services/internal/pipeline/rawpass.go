package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RawPass measures JetStream itself, without any of autotriage's layers:
// n messages of payload published to a fresh file-backed stream (one by
// one, or asynchronously with up to 256 in flight) and consumed by a
// durable with explicit acks. It is the ceiling the throughput benchmark
// compares the stages with, and lives here because only this package
// talks to JetStream. started is called right before consumption starts;
// RawPass returns once the last message was consumed, with the time since
// then. The stream is deleted afterwards.
func RawPass(ctx context.Context, url, stream string, n int, payload []byte, async bool, started func()) (time.Duration, error) {
	pubNC, err := nats.Connect(url, nats.Name("bench-raw-pub"))
	if err != nil {
		return 0, err
	}
	defer pubNC.Close()
	subNC, err := nats.Connect(url, nats.Name("bench-raw-sub"))
	if err != nil {
		return 0, err
	}
	defer subNC.Close()
	pjs, err := jetstream.New(pubNC, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		return 0, err
	}
	sjs, err := jetstream.New(subNC)
	if err != nil {
		return 0, err
	}
	subject := "benchraw." + stream
	if _, err := pjs.CreateStream(ctx, jetstream.StreamConfig{
		Name: stream, Subjects: []string{subject + ".>"}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
		Duplicates: 2 * time.Minute,
	}); err != nil {
		return 0, err
	}
	defer func() { _ = pjs.DeleteStream(context.WithoutCancel(ctx), stream) }()
	cons, err := sjs.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1000, AckWait: 30 * time.Second,
	})
	if err != nil {
		return 0, err
	}
	got := make(chan struct{})
	var count atomic.Int64
	if started != nil {
		started()
	}
	start := time.Now()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if count.Add(1) == int64(n) {
			close(got)
		}
	})
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	for i := range n {
		subj := subject + "." + strconv.Itoa(i)
		id := stream + ":" + strconv.Itoa(i)
		if async {
			if _, err := pjs.PublishAsync(subj, payload, jetstream.WithMsgID(id)); err != nil {
				return 0, err
			}
		} else if _, err := pjs.Publish(ctx, subj, payload, jetstream.WithMsgID(id)); err != nil {
			return 0, err
		}
	}
	if async {
		select {
		case <-pjs.PublishAsyncComplete():
		case <-time.After(60 * time.Second):
			return 0, fmt.Errorf("raw: async publishes not acknowledged within 60s")
		}
	}
	select {
	case <-got:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(60 * time.Second):
		return 0, fmt.Errorf("raw: %d of %d messages consumed within 60s", count.Load(), n)
	}
	d := time.Since(start)
	// Make sure the acks reached the server before the stream goes.
	_ = subNC.Flush()
	return d, nil
}
