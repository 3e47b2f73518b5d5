package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/writer"
)

// catalogStatus is the helpdesk catalog set against the promoted model:
// the `autotriage status` section "catalog". It is computed here, by the
// operator's CLI, which may read both the helpdesk and the model registry;
// the writer, which reads the helpdesk but not the registry, publishes the
// changes it sees as CATALOG_CHANGE outcomes instead (writer/catalogchange.go).
type catalogStatus struct {
	ModelID string `json:"model_id,omitempty"`
	// Untrained: helpdesk values no training example has (added after the
	// training data): never predicted until a model is trained with them.
	Untrained map[string][]string `json:"untrained,omitempty"`
	// Missing: model labels the helpdesk no longer has (after
	// AUTOTRIAGE_LABEL_MAP): never written; the next training drops them.
	Missing map[string][]string `json:"missing,omitempty"`
	Error   string              `json:"error,omitempty"`
}

// catalogSection compares the helpdesk catalog with the promoted model's
// labels. nil when no helpdesk is configured or asked for, or no model is
// promoted (the model section says so). It costs the catalog reads
// (GET /ticket_fields, GET /groups) and one model download.
func catalogSection(ctx context.Context, conn *pipeline.Conn, helpdesk bool) *catalogStatus {
	if !helpdesk {
		return nil
	}
	c, _, ok, err := helpdeskClient()
	if err != nil || !ok {
		return nil // the helpdesk section reports a configuration problem
	}
	st, err := modelstore.Open(ctx, conn)
	if err != nil {
		return &catalogStatus{Error: err.Error()}
	}
	p, err := st.Promoted(ctx)
	if errors.Is(err, modelstore.ErrNoModel) {
		return nil
	}
	if err != nil {
		return &catalogStatus{Error: err.Error()}
	}
	b, _, err := st.Load(ctx, p.ID)
	if err != nil {
		return &catalogStatus{ModelID: p.ID, Error: err.Error()}
	}
	m, err := classify.Load(bytes.NewReader(b))
	if err != nil {
		return &catalogStatus{ModelID: p.ID, Error: fmt.Sprintf("stored model %s: %v", shortID(p.ID), err)}
	}
	lm, err := writer.ParseLabelMap(os.Getenv("AUTOTRIAGE_LABEL_MAP"))
	if err != nil {
		return &catalogStatus{ModelID: p.ID, Error: "AUTOTRIAGE_LABEL_MAP: " + err.Error()}
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cat, err := freshdesk.NewAdapter(c).Catalog(cctx)
	if err != nil {
		return &catalogStatus{ModelID: p.ID, Error: err.Error()}
	}
	cmp := writer.CompareCatalog(cat, lm, modelLabels(m))
	return &catalogStatus{ModelID: p.ID, Untrained: cmp.Untrained, Missing: cmp.Missing}
}

// modelLabels lists, per field, the labels a model predicts: those it had
// training examples of, and no other.
func modelLabels(m *classify.Model) map[string][]string {
	out := map[string][]string{}
	for _, f := range m.Metadata().Fields {
		out[f.Name] = f.Labels
	}
	return out
}

// printCatalog writes the catalog section (nothing when there is none).
func printCatalog(w io.Writer, c *catalogStatus) {
	if c == nil {
		return
	}
	if c.Error != "" {
		fmt.Fprintf(w, "catalog: cannot compare with the model: %s\n", c.Error)
		return
	}
	if len(c.Untrained) == 0 && len(c.Missing) == 0 {
		fmt.Fprintf(w, "catalog: the helpdesk and model %s have the same groups, types and priorities\n", shortID(c.ModelID))
		return
	}
	fmt.Fprintf(w, "catalog (against model %s):\n", shortID(c.ModelID))
	for _, f := range sortedKeys(c.Untrained) {
		fmt.Fprintf(w, "  %s in the helpdesk without training examples (never predicted until trained): %s\n",
			f, strings.Join(c.Untrained[f], ", "))
	}
	for _, f := range sortedKeys(c.Missing) {
		fmt.Fprintf(w, "  %s the model predicts that the helpdesk no longer has (never written; retrain): %s\n",
			f, strings.Join(c.Missing[f], ", "))
	}
}

func sortedKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
