package triage

import (
	"bytes"
	"fmt"

	autotriagev1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classify"
)

// Config is the policy setting every process that decides reads.
type Config struct {
	Policy string `env:"AUTOTRIAGE_POLICY" envDefault:"group=shadow,priority=shadow,type=shadow,tags=shadow" help:"per-field mode and threshold: field=shadow|suggest|apply[:0.9|:p95], comma-separated (p95: the probability at which held-out precision reached 95%)"`
}

// Validate parses the policy so a bad one stops the service at start.
func (c Config) Validate() error {
	if _, err := ParsePolicy(c.Policy); err != nil {
		return fmt.Errorf("AUTOTRIAGE_POLICY: %w", err)
	}
	return nil
}

// Predictor is a loaded model with the policy that turns its probabilities
// into decisions. The model is immutable; the policy is read from a Live on
// every prediction. Safe for concurrent use.
type Predictor struct {
	model   *classify.Model
	live    *Live
	version string
}

// NewPredictor pairs a model with a fixed policy. version is the
// human-facing model version (the registry's), or "" to use the model's
// creation time.
func NewPredictor(m *classify.Model, p Policy, version string) *Predictor {
	return NewLivePredictor(m, NewLive(p), version)
}

// NewLivePredictor pairs a model with the policy in force in l, so policy
// changes reach its next prediction.
func NewLivePredictor(m *classify.Model, l *Live, version string) *Predictor {
	if version == "" {
		version = m.Created().UTC().Format("20060102-150405")
	}
	return &Predictor{model: m, live: l, version: version}
}

// ModelID is the model's content hash.
func (p *Predictor) ModelID() string { return p.model.ID() }

// ModelVersion is the registry's version of the model.
func (p *Predictor) ModelVersion() string { return p.version }

// Model returns the underlying model.
func (p *Predictor) Model() *classify.Model { return p.model }

// Predict classifies the ticket's text and decides every field; each
// predicted field carries the terms that weighed most for its label.
func (p *Predictor) Predict(t *autotriagev1.Ticket) []*autotriagev1.FieldPrediction {
	policy := p.live.Policy()
	k := policy.TopK
	if k <= 0 {
		k = DefaultTopK
	}
	r := p.model.PredictExplain(t.Subject, t.DescriptionText, k, classify.DefaultExplainTerms)
	out := policy.Decide(p.model, t, r)
	setTerms(out, r)
	return out
}

// setTerms copies the explanation of each field into its prediction.
func setTerms(fps []*autotriagev1.FieldPrediction, r classify.Result) {
	for _, fp := range fps {
		if fr, ok := r.Field(fp.Field); ok {
			for _, term := range fr.Terms {
				fp.Terms = append(fp.Terms, &autotriagev1.Term{Text: term.Text, Weight: term.Weight})
			}
		}
	}
}

// SimilarCount is how many similar resolved tickets a prediction carries.
const SimilarCount = 3

// Similar returns the SimilarCount training tickets most similar to t, most
// similar first, never t itself (it may be in the history when it is
// classified again); nil when the model has no similar-ticket index.
func (p *Predictor) Similar(t *autotriagev1.Ticket) []*autotriagev1.SimilarTicket {
	var out []*autotriagev1.SimilarTicket
	for _, st := range p.model.Similar(t.Subject, t.DescriptionText, SimilarCount+1) {
		if st.TicketID != 0 && st.TicketID == t.Id || len(out) == SimilarCount {
			continue
		}
		out = append(out, &autotriagev1.SimilarTicket{TicketId: st.TicketID, ExampleId: st.ExampleID,
			Subject: st.Subject, Labels: st.Labels, Similarity: st.Similarity})
	}
	return out
}

// LoadPredictor decodes an artifact and pairs it with a fixed policy.
func LoadPredictor(artifact []byte, p Policy, version string) (*Predictor, error) {
	return LoadLivePredictor(artifact, NewLive(p), version)
}

// LoadLivePredictor decodes an artifact and pairs it with the policy in
// force in l.
func LoadLivePredictor(artifact []byte, l *Live, version string) (*Predictor, error) {
	m, err := classify.Load(bytes.NewReader(artifact))
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	return NewLivePredictor(m, l, version), nil
}
