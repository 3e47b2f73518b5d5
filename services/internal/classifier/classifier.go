// Package classifier is the classifier stage: it consumes ticket versions
// from TICKETS, asks the promoted model for a prediction of each configured
// field, and publishes the Prediction to PREDICTIONS. It serves exactly one
// model at a time and swaps to a newly promoted one without dropping
// in-flight messages. With no model promoted it does not consume at all, so
// tickets wait in the stream instead of exhausting their deliveries.
package classifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// Config is the classifier stage's own configuration.
type Config struct {
	Concurrency int `env:"AUTOTRIAGE_CLASSIFIER_CONCURRENCY" envDefault:"4" help:"tickets classified at once by this replica"`
}

// Predictor is a loaded model together with the triage policy: it turns a
// ticket into per-field predictions with decisions. It must be safe for
// concurrent use and immutable once built.
type Predictor interface {
	ModelID() string
	ModelVersion() string
	Predict(t *v1.Ticket) []*v1.FieldPrediction
}

// SimilarFinder is a Predictor that also finds the most similar resolved
// tickets of its model's history (optional: predictors without it give
// predictions without similar tickets).
type SimilarFinder interface {
	Similar(t *v1.Ticket) []*v1.SimilarTicket
}

// Loader builds a Predictor from a stored artifact.
type Loader func(artifact []byte, info modelstore.Info) (Predictor, error)

// Models is the part of the model registry the stage uses.
type Models interface {
	Watch(ctx context.Context) (<-chan modelstore.Promotion, error)
	Load(ctx context.Context, id string) ([]byte, modelstore.Info, error)
}

// Publisher stores a message in its stream.
type Publisher interface {
	Publish(ctx context.Context, m pipeline.OutMsg) (pipeline.PubAck, error)
}

// Consumer runs a handler over a durable consumer.
type Consumer interface {
	Consume(ctx context.Context, o pipeline.ConsumeOptions, h pipeline.Handler) error
}

// Stage is one classifier replica.
type Stage struct {
	cfg     Config
	log     *slog.Logger
	models  Models
	load    Loader
	pub     Publisher
	metrics *metrics
	// pmetrics counts consume results and handler time under
	// stage="classifier" (the runtime's pipeline series, set by Build); nil
	// records nothing.
	pmetrics *pipeline.Metrics
	current  atomic.Pointer[predictorBox]
	now      func() time.Time
}

type predictorBox struct{ p Predictor }

// New builds a stage; reg may be nil.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer, models Models, load Loader, pub Publisher) *Stage {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	return &Stage{cfg: cfg, log: log, models: models, load: load, pub: pub, metrics: newMetrics(reg), now: time.Now}
}

// Ready is nil once a model is loaded; the classifier's /readyz includes it.
func (s *Stage) Ready() error {
	if s.current.Load() == nil {
		return errors.New("waiting for a promoted model")
	}
	return nil
}

// Predictor returns the model in use, or nil.
func (s *Stage) Predictor() Predictor {
	if b := s.current.Load(); b != nil {
		return b.p
	}
	return nil
}

// SetPredictor installs a predictor directly (tests, `autotriage classify`).
func (s *Stage) SetPredictor(p Predictor) {
	s.current.Store(&predictorBox{p})
	s.metrics.model(p)
}

// Run follows promotions, waits for the first model, then consumes TICKETS
// until ctx ends.
func (s *Stage) Run(ctx context.Context, cons Consumer) error {
	promos, err := s.models.Watch(ctx)
	if err != nil {
		return fmt.Errorf("classifier: %w", err)
	}
	first := make(chan struct{})
	go s.follow(ctx, promos, first)
	if s.current.Load() == nil {
		s.log.Info("no model promoted yet; tickets stay in the stream until one is")
	}
	select {
	case <-first:
	case <-ctx.Done():
		return nil
	}
	return cons.Consume(ctx, pipeline.ConsumeOptions{
		Stage:       "classifier",
		Stream:      pipeline.StreamTickets,
		Durable:     pipeline.ConsumerClassifier,
		Concurrency: s.cfg.Concurrency,
		Metrics:     s.pmetrics,
	}, s.Handle)
}

// follow loads every promoted model and swaps it in. In-flight handlers keep
// the predictor they started with; the next message gets the new one.
func (s *Stage) follow(ctx context.Context, promos <-chan modelstore.Promotion, first chan struct{}) {
	signalled := false
	signal := func() {
		if !signalled && s.current.Load() != nil {
			close(first)
			signalled = true
		}
	}
	signal()
	for p := range promos {
		if cur := s.Predictor(); cur != nil && cur.ModelID() == p.ID {
			continue
		}
		pred, err := s.loadModel(ctx, p)
		if err != nil {
			s.log.Error("cannot load promoted model; keeping the current one", "model", p.ID, "err", err)
			s.metrics.loadFailures.Inc()
			continue
		}
		s.SetPredictor(pred)
		s.log.Info("model loaded", "model", pred.ModelID(), "version", pred.ModelVersion())
		signal()
	}
}

// loadModel reads a promoted model, trying five times, 500ms apart at
// first and twice as long each time (the store may lag the promotion),
// and decodes it.
func (s *Stage) loadModel(ctx context.Context, p modelstore.Promotion) (Predictor, error) {
	type artifact struct {
		data []byte
		info modelstore.Info
	}
	a, err := backoff.Retry(ctx, func() (artifact, error) {
		b, info, err := s.models.Load(ctx, p.ID)
		return artifact{b, info}, err
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 500 * time.Millisecond, Multiplier: 2, MaxInterval: 4 * time.Second}),
		backoff.WithMaxTries(5), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return nil, err
	}
	return s.load(a.data, a.info)
}

// Handle classifies one ticket version. Undecodable or invalid tickets are
// permanent failures (DLQ); publish failures are retried.
func (s *Stage) Handle(ctx context.Context, m *pipeline.Msg) error {
	t, err := decodeTicket(m.Data)
	if err != nil {
		s.metrics.invalid.Inc()
		return pipeline.Permanent(err)
	}
	b := s.current.Load()
	if b == nil {
		return pipeline.RetryAfter(errors.New("no model loaded"), 30*time.Second)
	}
	start := time.Now()
	fields := b.p.Predict(t)
	s.metrics.predictSeconds.Observe(time.Since(start).Seconds())
	pred := &v1.Prediction{
		System:          t.System,
		Account:         t.Account,
		TicketId:        t.Id,
		TicketUpdatedAt: t.UpdatedAt,
		Ticket:          t,
		ModelId:         b.p.ModelID(),
		ModelVersion:    b.p.ModelVersion(),
		Fields:          fields,
		PredictedAt:     timestamppb.New(s.now()),
	}
	if sf, ok := b.p.(SimilarFinder); ok {
		pred.Similar = sf.Similar(t)
	}
	data, err := proto.Marshal(pred)
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("encode prediction: %w", err))
	}
	_, err = s.pub.Publish(ctx, pipeline.OutMsg{
		Subject: pipeline.PredictionSubject(t.System, t.Account, t.Id),
		ID:      PredictionID(t, b.p.ModelID()),
		Data:    data,
		Header:  map[string]string{pipeline.HeaderContentType: pipeline.ContentTypeProtobuf},
	})
	if err != nil {
		return fmt.Errorf("publish prediction for ticket %d: %w", t.Id, err)
	}
	for _, f := range fields {
		s.metrics.decisions.WithLabelValues(f.Field, f.Decision.Short()).Inc()
	}
	return nil
}

// PredictionID names a prediction by ticket version and model (and replay
// or backfill batch), so a redelivered ticket does not produce a second
// prediction, while a replay or a new model does.
func PredictionID(t *v1.Ticket, modelID string) string {
	short := modelID
	if len(short) > 16 {
		short = short[:16]
	}
	id := fmt.Sprintf("%s:%s:%d:%s:%s", t.System, t.Account, t.Id, t.UpdatedAt.AsTime().UTC().Format(time.RFC3339Nano), short)
	if t.BatchId != "" {
		id += ":" + t.BatchId
	}
	return id
}

// decodeTicket reads a ticket message from the stream; an error means the
// message can never be classified.
func decodeTicket(data []byte) (*v1.Ticket, error) {
	var t v1.Ticket
	if err := proto.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("ticket message is not a valid autotriage.v1.Ticket: %w", err)
	}
	if err := validate(&t); err != nil {
		return nil, err
	}
	return &t, nil
}

func validate(t *v1.Ticket) error {
	switch {
	case t.Id <= 0:
		return fmt.Errorf("invalid ticket: id %d", t.Id)
	case t.System == "" || t.Account == "":
		return fmt.Errorf("invalid ticket %d: system and account are required", t.Id)
	case t.UpdatedAt == nil:
		return fmt.Errorf("invalid ticket %d: updated_at is required", t.Id)
	}
	return nil
}

type metrics struct {
	decisions      *prometheus.CounterVec
	invalid        prometheus.Counter
	loadFailures   prometheus.Counter
	predictSeconds prometheus.Histogram
	modelInfo      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_classifier_decisions_total",
			Help: "Field decisions made by the classifier, by field and decision (shadow, suggest, apply, abstain).",
		}, []string{"field", "decision"}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "autotriage_classifier_invalid_tickets_total",
			Help: "Ticket messages that could not be decoded or were invalid (sent to the DLQ).",
		}),
		loadFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "autotriage_classifier_model_load_failures_total",
			Help: "Promoted models that could not be loaded.",
		}),
		predictSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "autotriage_classifier_predict_seconds",
			Help:    "Time to predict every field of one ticket.",
			Buckets: prometheus.ExponentialBuckets(0.000005, 3, 10),
		}),
		modelInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autotriage_classifier_model_info",
			Help: "The model in use (1) by id and version.",
		}, []string{"model_id", "model_version"}),
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.invalid, m.loadFailures, m.predictSeconds, m.modelInfo)
	}
	return m
}

func (m *metrics) model(p Predictor) {
	m.modelInfo.Reset()
	m.modelInfo.WithLabelValues(p.ModelID(), p.ModelVersion()).Set(1)
}
