package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// streamConfigs declares every stream of the pipeline in one place.
func streamConfigs(t Topology) []jetstream.StreamConfig {
	base := func(name, subject, desc string, maxAge time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{subject},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			MaxAge:      maxAge,
			MaxBytes:    t.MaxBytes,
			Duplicates:  t.DuplicateWindow,
			Discard:     jetstream.DiscardOld,
			MaxMsgSize:  4 << 20,
		}
	}
	dlq := base(StreamDLQ, "dlq.>", "Messages that failed for good, with stage, error and origin headers", t.DLQMaxAge)
	if dlq.Duplicates > dlq.MaxAge {
		dlq.Duplicates = dlq.MaxAge
	}
	return []jetstream.StreamConfig{
		base(StreamTickets, "tickets.>", "Ticket versions read from the ticket system", t.MaxAge),
		base(StreamPredictions, "predictions.>", "Classifier predictions with the ticket version and model version", t.MaxAge),
		base(StreamOutcomes, "outcomes.>", "What the writer did for each prediction, and overrides", t.MaxAge),
		dlq,
	}
}

// consumerConfig is the durable consumer a stage binds to.
func consumerConfig(stream, durable string, t Topology) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   "autotriage " + durable + " stage",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       t.AckWait,
		MaxDeliver:    t.MaxDeliver,
		MaxAckPending: t.MaxAckPending,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
		Replicas:      0, // inherit the stream's
	}
}

// durableConsumers lists the durable consumers of the pipeline.
var durableConsumers = []struct{ stream, durable string }{
	{StreamTickets, ConsumerClassifier},
	{StreamPredictions, ConsumerWriter},
}

// EnsureTopology creates or updates every stream, durable consumer, KV bucket
// and the object store. It is idempotent and safe to run from every replica
// of every stage at once.
func (c *Conn) EnsureTopology(ctx context.Context) error {
	t := c.topology
	if t == (Topology{}) {
		t = DefaultTopology()
		c.topology = t
	}
	if err := t.Validate(); err != nil {
		return err
	}
	for _, sc := range streamConfigs(t) {
		if _, err := c.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
	}
	for _, dc := range durableConsumers {
		if _, err := c.js.CreateOrUpdateConsumer(ctx, dc.stream, consumerConfig(dc.stream, dc.durable, t)); err != nil {
			return fmt.Errorf("ensure consumer %s on %s: %w", dc.durable, dc.stream, err)
		}
	}
	kvs := []jetstream.KeyValueConfig{
		{Bucket: BucketFetcher, Description: "fetcher cursors and poller leases", History: 1, Replicas: t.Replicas, Storage: jetstream.FileStorage},
		{Bucket: BucketWriter, Description: "writer idempotency records", History: 1, Replicas: t.Replicas, Storage: jetstream.FileStorage, TTL: t.MaxAge + 24*time.Hour},
		{Bucket: BucketModels, Description: "promoted model and promotion history", History: 64, Replicas: t.Replicas, Storage: jetstream.FileStorage},
	}
	for _, kc := range kvs {
		if _, err := c.js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("ensure KV bucket %s: %w", kc.Bucket, err)
		}
	}
	if _, err := c.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      ObjectModels,
		Description: "trained model artifacts",
		Replicas:    t.Replicas,
		Storage:     jetstream.FileStorage,
	}); err != nil {
		return fmt.Errorf("ensure object store %s: %w", ObjectModels, err)
	}
	c.ensured.Store(true)
	return nil
}

// EnsureTopologyRetry retries EnsureTopology until it succeeds or ctx ends,
// for clusters still electing leaders at start.
func (c *Conn) EnsureTopologyRetry(ctx context.Context) error {
	backoff := 250 * time.Millisecond
	for {
		err := c.EnsureTopology(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if c.topology.Validate() != nil {
			return err // a bad setting will not fix itself
		}
		c.log.Warn("ensure topology failed; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return fmt.Errorf("ensure topology: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
