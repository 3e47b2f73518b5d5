package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// Topology sizes the streams. Limits retention everywhere: work-queue or
// interest retention would make replay impossible.
type Topology struct {
	MaxAge          time.Duration `env:"AUTOTRIAGE_STREAM_MAX_AGE" envDefault:"168h" help:"how long TICKETS, PREDICTIONS and OUTCOMES keep messages (the replay horizon)"`
	MaxBytes        int64         `env:"AUTOTRIAGE_STREAM_MAX_BYTES" envDefault:"-1" help:"size cap per stream in bytes (-1: unlimited); oldest messages go first"`
	DLQMaxAge       time.Duration `env:"AUTOTRIAGE_DLQ_MAX_AGE" envDefault:"720h" help:"how long dead letters are kept"`
	DLQMaxBytes     int64         `env:"AUTOTRIAGE_DLQ_MAX_BYTES" envDefault:"1073741824" help:"size cap of the DLQ in bytes (oldest dead letters go first), so junk sent at the webhook cannot fill the store; -1: unlimited"`
	Replicas        int           `env:"AUTOTRIAGE_STREAM_REPLICAS" envDefault:"1" help:"stream, KV and object-store replicas (3 on a 3-node cluster)"`
	DuplicateWindow time.Duration `env:"AUTOTRIAGE_STREAM_DUPLICATE_WINDOW" envDefault:"2h" help:"window in which a repeated Nats-Msg-Id is dropped"`
	AckWait         time.Duration `env:"AUTOTRIAGE_ACK_WAIT" envDefault:"30s" help:"how long a consumer may hold a message without a heartbeat before it is redelivered"`
	MaxDeliver      int           `env:"AUTOTRIAGE_MAX_DELIVER" envDefault:"10" help:"deliveries before a message is dead-lettered"`
	MaxAckPending   int           `env:"AUTOTRIAGE_MAX_ACK_PENDING" envDefault:"1000" help:"unacknowledged messages a durable consumer may have outstanding"`
}

// DefaultTopology returns the defaults of Topology (as its env tags state),
// for tests and embedded use.
func DefaultTopology() Topology {
	return Topology{
		MaxAge:          7 * 24 * time.Hour,
		MaxBytes:        -1,
		DLQMaxAge:       30 * 24 * time.Hour,
		DLQMaxBytes:     1 << 30,
		Replicas:        1,
		DuplicateWindow: 2 * time.Hour,
		AckWait:         30 * time.Second,
		MaxDeliver:      10,
		MaxAckPending:   1000,
	}
}

// Validate checks settings that the server would otherwise reject later.
func (t Topology) Validate() error {
	switch {
	case t.Replicas < 1 || t.Replicas > 5:
		return errors.New("AUTOTRIAGE_STREAM_REPLICAS: must be between 1 and 5")
	case t.MaxAge < time.Minute:
		return errors.New("AUTOTRIAGE_STREAM_MAX_AGE: must be at least 1m")
	case t.DuplicateWindow <= 0 || t.DuplicateWindow > t.MaxAge:
		return errors.New("AUTOTRIAGE_STREAM_DUPLICATE_WINDOW: must be positive and at most AUTOTRIAGE_STREAM_MAX_AGE")
	case t.AckWait < time.Second:
		return errors.New("AUTOTRIAGE_ACK_WAIT: must be at least 1s")
	case t.MaxDeliver < 1:
		return errors.New("AUTOTRIAGE_MAX_DELIVER: must be at least 1")
	case t.DLQMaxBytes == 0 || t.DLQMaxBytes < -1:
		return errors.New("AUTOTRIAGE_DLQ_MAX_BYTES: must be positive, or -1 for unlimited")
	case t.MaxAckPending < 1:
		return errors.New("AUTOTRIAGE_MAX_ACK_PENDING: must be at least 1")
	}
	return nil
}

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

// Declarer ensures the topology on a connection, as the process's role
// may: a stage creates what it uses, the admin applies everything, the
// monitor only checks it is there.
type Declarer struct {
	*link
	topology Topology
	role     string
	ensured  atomic.Bool
}

// TopologyConfig returns the stream settings this connection ensures.
func (de *Declarer) TopologyConfig() Topology { return de.topology }

// EnsureTopology makes the topology exist. A stage role (see Uses) creates
// the objects it uses when they are missing and leaves existing ones as they
// are: its broker identity may not change them, and a replica started with
// other settings must not impose them on the rest. An object whose settings
// differ from this process's is reported as a warning; the admin role
// (`autotriage topology apply`, `autotriage up`, tests: any connection
// without a stage role) creates or updates everything. It is idempotent and
// safe to run from every replica of every stage at once.
func (de *Declarer) EnsureTopology(ctx context.Context) error {
	t := de.topology
	if t == (Topology{}) {
		t = DefaultTopology()
		de.topology = t
	}
	if err := t.Validate(); err != nil {
		return err
	}
	var err error
	switch {
	case de.role == RoleMonitor:
		// The monitor changes nothing; it only needs the topology to be there.
		var ok bool
		if ok, err = de.HasTopology(ctx); err == nil && !ok {
			err = errors.New("the autotriage streams do not exist yet (a stage or the admin creates them)")
		}
	case isStage(de.role):
		var differs []string
		differs, err = de.createMissing(ctx, t, stageUses[de.role])
		for _, d := range differs {
			de.log.Warn("topology differs from this process's settings; left as it is (apply it with the admin identity: autotriage topology apply)", "object", d)
		}
	default:
		err = de.applyAll(ctx, t)
	}
	if err != nil {
		return err
	}
	de.ensured.Store(true)
	return nil
}

// EnsureModelStore creates the models KV bucket and object store when they
// are missing and leaves them as they are otherwise: the trainer may run
// before the classifier, the stage that creates them, has ever started.
func (de *Declarer) EnsureModelStore(ctx context.Context) error {
	t := de.topology
	if t == (Topology{}) {
		t = DefaultTopology()
	}
	_, err := de.createMissing(ctx, t, Uses{ReadBuckets: []string{BucketModels}, ReadObjects: []string{ObjectModels}})
	return err
}

// applyAll creates or updates every object.
func (de *Declarer) applyAll(ctx context.Context, t Topology) error {
	for _, sc := range streamConfigs(t) {
		if _, err := de.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
	}
	for _, dc := range durableConsumers {
		if _, err := de.js.CreateOrUpdateConsumer(ctx, dc.stream, consumerConfig(dc.stream, dc.durable, t)); err != nil {
			return fmt.Errorf("ensure consumer %s on %s: %w", dc.durable, dc.stream, err)
		}
	}
	for _, kc := range kvConfigs(t) {
		if _, err := de.js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("ensure KV bucket %s: %w", kc.Bucket, err)
		}
	}
	if _, err := de.js.CreateOrUpdateObjectStore(ctx, objectConfig(t)); err != nil {
		return fmt.Errorf("ensure object store %s: %w", ObjectModels, err)
	}
	return nil
}

// createMissing creates the objects u uses that do not exist, and returns
// the names of those that exist with other settings.
func (de *Declarer) createMissing(ctx context.Context, t Topology, u Uses) (differs []string, _ error) {
	for _, sc := range streamConfigs(t) {
		if !slices.Contains(u.Streams, sc.Name) {
			continue
		}
		if _, err := de.js.CreateStream(ctx, sc); err != nil {
			if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return nil, fmt.Errorf("ensure stream %s: %w", sc.Name, err)
			}
			differs = append(differs, "stream "+sc.Name)
		}
	}
	for _, d := range u.Consumes {
		if _, err := de.js.CreateConsumer(ctx, d.Stream, consumerConfig(d.Stream, d.Durable, t)); err != nil {
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
		if _, err := de.js.CreateKeyValue(ctx, kc); err != nil {
			if !errors.Is(err, jetstream.ErrBucketExists) {
				return nil, fmt.Errorf("ensure KV bucket %s: %w", kc.Bucket, err)
			}
			differs = append(differs, "KV bucket "+kc.Bucket)
		}
	}
	if oc := objectConfig(t); slices.Contains(u.ReadObjects, oc.Bucket) {
		if _, err := de.js.CreateObjectStore(ctx, oc); err != nil {
			if !errors.Is(err, jetstream.ErrBucketExists) {
				return nil, fmt.Errorf("ensure object store %s: %w", oc.Bucket, err)
			}
			differs = append(differs, "object store "+oc.Bucket)
		}
	}
	return differs, nil
}

// EnsureTopologyRetry retries EnsureTopology until it succeeds or ctx ends,
// for clusters still electing leaders at start: after 250ms, then twice as
// long each time up to 5s. A setting that fails validation is not retried.
func (de *Declarer) EnsureTopologyRetry(ctx context.Context) error {
	var last error
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		last = de.EnsureTopology(ctx)
		if last != nil && de.topology.Validate() != nil {
			return struct{}{}, backoff.Permanent(last) // a bad setting will not fix itself
		}
		return struct{}{}, last
	}, backoff.WithBackOff(doubling(250*time.Millisecond, 5*time.Second)), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, in time.Duration) {
			de.log.Warn("ensure topology failed; retrying", "err", err, "in", in)
		}))
	if err != nil && last != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("ensure topology: %w (last error: %v)", ctx.Err(), last)
	}
	return err
}

// HasTopology reports whether the pipeline's streams exist, without
// creating anything: an operator tool must not impose its own stream
// settings on a running system.
func (de *Declarer) HasTopology(ctx context.Context) (bool, error) {
	_, err := de.js.Stream(ctx, StreamTickets)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", StreamTickets, err)
	}
	return true, nil
}
