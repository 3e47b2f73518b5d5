package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	dlq.MaxBytes = t.DLQMaxBytes
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

// kvConfigs declares the KV buckets.
func kvConfigs(t Topology) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: BucketFetcher, Description: "fetcher cursors and poller leases", History: 1, Replicas: t.Replicas, Storage: jetstream.FileStorage},
		{Bucket: BucketWriter, Description: "writer idempotency records", History: 1, Replicas: t.Replicas, Storage: jetstream.FileStorage, TTL: t.MaxAge + 24*time.Hour},
		{Bucket: BucketModels, Description: "promoted model and promotion history", History: 64, Replicas: t.Replicas, Storage: jetstream.FileStorage},
		{Bucket: BucketPolicy, Description: "live triage policy and its history, trainer state", History: 64, Replicas: t.Replicas, Storage: jetstream.FileStorage},
	}
}

// objectConfig declares the model object store.
func objectConfig(t Topology) jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{
		Bucket:      ObjectModels,
		Description: "trained model artifacts",
		Replicas:    t.Replicas,
		Storage:     jetstream.FileStorage,
	}
}

// EnsureTopology makes the topology exist. A stage role (see Uses) creates
// the objects it uses when they are missing and leaves existing ones as they
// are: its broker identity may not change them, and a replica started with
// other settings must not impose them on the rest. An object whose settings
// differ from this process's is reported as a warning; the admin role
// (`autotriage topology apply`, `autotriage up`, tests: any connection
// without a stage role) creates or updates everything. It is idempotent and
// safe to run from every replica of every stage at once.
func (c *Conn) EnsureTopology(ctx context.Context) error {
	t := c.topology
	if t == (Topology{}) {
		t = DefaultTopology()
		c.topology = t
	}
	if err := t.Validate(); err != nil {
		return err
	}
	var err error
	switch {
	case c.role == RoleMonitor:
		// The monitor changes nothing; it only needs the topology to be there.
		var ok bool
		if ok, err = c.HasTopology(ctx); err == nil && !ok {
			err = errors.New("the autotriage streams do not exist yet (a stage or the admin creates them)")
		}
	case isStage(c.role):
		var differs []string
		differs, err = c.createMissing(ctx, t, stageUses[c.role])
		for _, d := range differs {
			c.log.Warn("topology differs from this process's settings; left as it is (apply it with the admin identity: autotriage topology apply)", "object", d)
		}
	default:
		err = c.applyAll(ctx, t)
	}
	if err != nil {
		return err
	}
	c.ensured.Store(true)
	return nil
}

// EnsureModelStore creates the models KV bucket and object store when they
// are missing and leaves them as they are otherwise: the trainer may run
// before the classifier, the stage that creates them, has ever started.
func (c *Conn) EnsureModelStore(ctx context.Context) error {
	t := c.topology
	if t == (Topology{}) {
		t = DefaultTopology()
	}
	_, err := c.createMissing(ctx, t, Uses{ReadBuckets: []string{BucketModels}, ReadObjects: []string{ObjectModels}})
	return err
}

// applyAll creates or updates every object.
func (c *Conn) applyAll(ctx context.Context, t Topology) error {
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
	for _, kc := range kvConfigs(t) {
		if _, err := c.js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("ensure KV bucket %s: %w", kc.Bucket, err)
		}
	}
	if _, err := c.js.CreateOrUpdateObjectStore(ctx, objectConfig(t)); err != nil {
		return fmt.Errorf("ensure object store %s: %w", ObjectModels, err)
	}
	return nil
}

// createMissing creates the objects u uses that do not exist, and returns
// the names of those that exist with other settings.
func (c *Conn) createMissing(ctx context.Context, t Topology, u Uses) (differs []string, _ error) {
	for _, sc := range streamConfigs(t) {
		if !slices.Contains(u.Streams, sc.Name) {
			continue
		}
		if _, err := c.js.CreateStream(ctx, sc); err != nil {
			if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return nil, fmt.Errorf("ensure stream %s: %w", sc.Name, err)
			}
			differs = append(differs, "stream "+sc.Name)
		}
	}
	for _, d := range u.Consumes {
		if _, err := c.js.CreateConsumer(ctx, d.Stream, consumerConfig(d.Stream, d.Durable, t)); err != nil {
			if !errors.Is(err, jetstream.ErrConsumerExists) {
				return nil, fmt.Errorf("ensure consumer %s on %s: %w", d.Durable, d.Stream, err)
			}
			differs = append(differs, "consumer "+d.Stream+"/"+d.Durable)
		}
	}
	buckets := u.bucketsAll()
	for _, kc := range kvConfigs(t) {
		if !slices.Contains(buckets, kc.Bucket) {
			continue
		}
		if _, err := c.js.CreateKeyValue(ctx, kc); err != nil {
			if !errors.Is(err, jetstream.ErrBucketExists) {
				return nil, fmt.Errorf("ensure KV bucket %s: %w", kc.Bucket, err)
			}
			differs = append(differs, "KV bucket "+kc.Bucket)
		}
	}
	if oc := objectConfig(t); slices.Contains(u.ReadObjects, oc.Bucket) {
		if _, err := c.js.CreateObjectStore(ctx, oc); err != nil {
			if !errors.Is(err, jetstream.ErrBucketExists) {
				return nil, fmt.Errorf("ensure object store %s: %w", oc.Bucket, err)
			}
			differs = append(differs, "object store "+oc.Bucket)
		}
	}
	return differs, nil
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
