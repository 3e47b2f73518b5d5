package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// Lineage is where a model came from and how it fared, stored beside its
// artifact (modelstore.PutLineage) and summarised in its metadata.
type Lineage struct {
	ModelID   string    `json:"model_id"`
	Version   string    `json:"version"`
	TrainedAt time.Time `json:"trained_at"`
	// Parent is the champion when the model was trained ("" for a first
	// model).
	Parent        string `json:"parent,omitempty"`
	ParentVersion string `json:"parent_version,omitempty"`
	// DataFrom and DataThrough bound the updated_at of the tickets it was
	// trained on; Tickets counts them.
	DataFrom    time.Time `json:"data_from"`
	DataThrough time.Time `json:"data_through"`
	Tickets     int       `json:"tickets"`
	// The held-out window (the most recent tickets, by time) it was gated on.
	HoldoutFrom    time.Time `json:"holdout_from"`
	HoldoutThrough time.Time `json:"holdout_through"`
	HoldoutTickets int       `json:"holdout_tickets"`
	// Holdout is the model's quality on the held-out window, per field
	// and class.
	Holdout []*classify.FieldReport `json:"holdout,omitempty"`
	// LabelCounts are the training tickets per field and label.
	LabelCounts map[string]map[string]int `json:"label_counts,omitempty"`
	Gate        GateResult                `json:"gate"`
	// Outcome is "promoted", "kept" (the champion stayed) or "rolled_back".
	Outcome string `json:"outcome"`
	// Trigger says what started the run: "schedule", "request", "start".
	Trigger string `json:"trigger,omitempty"`
	// RolledBackAt and RollbackReason are set when live precision undid
	// the promotion.
	RolledBackAt   time.Time `json:"rolled_back_at,omitzero"`
	RollbackReason string    `json:"rollback_reason,omitempty"`
}

// meta is the lineage's summary in the artifact's metadata (shown by
// `autotriage models list` and kept even where lineage records are not).
func (l *Lineage) meta() map[string]string {
	m := map[string]string{
		"source":          "trainer",
		"parent":          l.Parent,
		"data_from":       l.DataFrom.UTC().Format(time.RFC3339),
		"data_through":    l.DataThrough.UTC().Format(time.RFC3339),
		"tickets":         strconv.Itoa(l.Tickets),
		"holdout_tickets": strconv.Itoa(l.HoldoutTickets),
		"gate":            gateWord(l.Gate.Pass),
	}
	for _, f := range l.Holdout {
		m["holdout_"+f.Field] = strconv.FormatFloat(f.Accuracy, 'f', 4, 64)
	}
	return m
}

func gateWord(pass bool) string {
	if pass {
		return "passed"
	}
	return "failed"
}

// SaveLineage stores l as model l.ModelID's lineage record.
func SaveLineage(ctx context.Context, st *modelstore.Store, l *Lineage) error {
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode lineage: %w", err)
	}
	return st.PutLineage(ctx, l.ModelID, b)
}

// LoadLineage reads model id's lineage; ok is false when it has none.
func LoadLineage(ctx context.Context, st *modelstore.Store, id string) (*Lineage, bool, error) {
	b, err := st.Lineage(ctx, id)
	if errors.Is(err, pipeline.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var l Lineage
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, false, fmt.Errorf("lineage of %s is unreadable: %w", id, err)
	}
	return &l, true, nil
}
