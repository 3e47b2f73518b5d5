package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/triage"
)

func init() {
	Register("classify", "classify one text and show the decision under the policy", runClassify)
}

type classifyField struct {
	Field      string       `json:"field"`
	Label      string       `json:"label,omitempty"`
	Labels     []string     `json:"labels,omitempty"`
	Confidence float64      `json:"confidence"`
	TopK       []labelScore `json:"top_k"`
	Decision   string       `json:"decision"`
	Reason     string       `json:"reason"`
	Threshold  float64      `json:"threshold,omitempty"`
	// Terms are the words of the text that weighed most for the label.
	Terms []classifyTerm `json:"terms,omitempty"`
}

type classifyTerm struct {
	Text   string  `json:"text"`
	Weight float64 `json:"weight"`
}

type classifySimilar struct {
	TicketID   int64             `json:"ticket_id,omitempty"`
	ExampleID  string            `json:"example_id"`
	Subject    string            `json:"subject"`
	Labels     map[string]string `json:"labels"`
	Similarity float64           `json:"similarity"`
}

type labelScore struct {
	Label       string  `json:"label"`
	Probability float64 `json:"probability"`
}

type classifyOutput struct {
	Model   string          `json:"model"`
	ModelID string          `json:"model_id"`
	Policy  string          `json:"policy"`
	Empty   bool            `json:"empty_text,omitempty"`
	Fields  []classifyField `json:"fields"`
	// Similar are the most similar tickets of the model's training history
	// (none from a model without a similar-ticket index).
	Similar []classifySimilar `json:"similar"`
}

func runClassify(ctx context.Context, args []string, stdout, _ io.Writer) error {
	const cmd = "classify"
	f := newFlags(cmd, "[--model MODEL] [--policy P] [--subject S] [--body B | --body-file F] [\"text\"]",
		"Predict every field for one ticket text and show what the triage policy would do with it.\n"+
			"A positional text is the body (with --subject unset, its first line is also the subject).\n"+
			"Policy syntax: group=apply:p95,priority=suggest:0.8,type=shadow,tags=apply:0.9", stdout)
	var co connOpts
	co.register(f)
	model := f.String("model", "", "model file or stored id (default: the promoted model from NATS)")
	policy := f.String("policy", "", "triage policy (default $AUTOTRIAGE_POLICY; empty: shadow everywhere)")
	subject := f.String("subject", "", "ticket subject")
	body := f.String("body", "", "ticket body (plain text or HTML)")
	bodyFile := f.String("body-file", "", "read the body from this file (- for stdin)")
	topK := f.Int("top", 3, "labels shown per field")
	asJSON := f.Bool("json", false, "print JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if *bodyFile != "" {
		if *body != "" || len(pos) > 0 {
			return usagef(cmd, "classify: give the body once (--body, --body-file or an argument)")
		}
		var b []byte
		if *bodyFile == "-" {
			b, err = io.ReadAll(io.LimitReader(os.Stdin, 4<<20))
		} else {
			b, err = os.ReadFile(*bodyFile)
		}
		if err != nil {
			return fmt.Errorf("read body: %w", err)
		}
		*body = string(b)
	}
	if len(pos) > 0 {
		if *body != "" {
			return usagef(cmd, "classify: give the body once (--body, --body-file or an argument)")
		}
		*body = strings.Join(pos, " ")
		if *subject == "" {
			*subject, _, _ = strings.Cut(*body, "\n")
		}
	}
	if strings.TrimSpace(*subject) == "" && strings.TrimSpace(*body) == "" {
		return usagef(cmd, "classify: no text given")
	}
	if *topK < 1 {
		return usagef(cmd, "classify: --top must be at least 1")
	}
	polStr := *policy
	if polStr == "" {
		env, err := loadEnv()
		if err != nil {
			return err
		}
		polStr = env.Policy
	}
	pol, err := triage.ParsePolicy(polStr)
	if err != nil {
		return usagef(cmd, "classify: %v", err)
	}
	lm, err := loadModel(ctx, *model, &co)
	if err != nil {
		return err
	}
	if *policy == "" && lm.version != "file" {
		// The model came from the registry: decide under the policy the
		// classifiers follow (the KV document, with its demotions), not
		// under this shell's AUTOTRIAGE_POLICY.
		if stored, ok := storedPolicy(ctx, &co); ok {
			pol = stored
		}
	}
	pol.TopK = *topK
	res := lm.model.PredictExplain(*subject, *body, *topK, classify.DefaultExplainTerms)
	// A fresh, untriaged ticket: no group or type yet, so the policy's
	// "already set" rule does not hide the decision.
	t := &v1.Ticket{System: "cli", Account: "cli", Id: 1, Subject: *subject, DescriptionText: *body}
	preds := pol.Decide(lm.model, t, res)
	out := classifyOutput{Model: lm.source, ModelID: lm.model.ID(), Policy: pol.String(), Empty: res.Empty}
	if out.Policy == "" {
		out.Policy = "shadow everywhere (default)"
	}
	for _, p := range preds {
		cf := classifyField{Field: p.Field, Label: p.Label, Labels: p.Labels, Confidence: p.Confidence,
			Decision: p.Decision.Short(), Reason: p.Reason, Threshold: p.Threshold}
		for _, s := range p.TopK {
			cf.TopK = append(cf.TopK, labelScore{s.Label, s.Probability})
		}
		if fr, ok := res.Field(p.Field); ok {
			for _, term := range fr.Terms {
				cf.Terms = append(cf.Terms, classifyTerm{term.Text, term.Weight})
			}
		}
		out.Fields = append(out.Fields, cf)
	}
	out.Similar = []classifySimilar{}
	for _, st := range lm.model.Similar(*subject, *body, triage.SimilarCount) {
		out.Similar = append(out.Similar, classifySimilar{TicketID: st.TicketID, ExampleID: st.ExampleID,
			Subject: st.Subject, Labels: st.Labels, Similarity: st.Similarity})
	}
	if *asJSON {
		return writeJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "model %s (%s), policy: %s\n", shortID(out.ModelID), out.Model, out.Policy)
	if out.Empty {
		fmt.Fprintln(stdout, "warning: no usable text; predictions are label priors only")
	}
	for _, f := range out.Fields {
		label := f.Label
		if f.Field == "tags" {
			label = "[" + strings.Join(f.Labels, ", ") + "]"
		}
		fmt.Fprintf(stdout, "%-9s %-30s %.3f  %-7s %s\n", f.Field, label, f.Confidence, f.Decision, f.Reason)
		for _, s := range f.TopK {
			fmt.Fprintf(stdout, "            %-28s %.3f\n", s.Label, s.Probability)
		}
		if len(f.Terms) > 0 {
			terms := make([]string, len(f.Terms))
			for i, t := range f.Terms {
				terms[i] = fmt.Sprintf("%s %.2f", t.Text, t.Weight)
			}
			fmt.Fprintf(stdout, "            because of: %s\n", strings.Join(terms, ", "))
		}
	}
	switch {
	case !lm.model.HasSimilar():
		fmt.Fprintln(stdout, "similar tickets: none (the model has no similar-ticket index; retrain to build one)")
	case len(out.Similar) == 0:
		fmt.Fprintln(stdout, "similar tickets: none share a word with this text")
	default:
		fmt.Fprintln(stdout, "similar tickets of the training history:")
		for _, st := range out.Similar {
			id := st.ExampleID
			if st.TicketID > 0 {
				id = fmt.Sprint("#", st.TicketID)
			}
			var ls []string
			for _, f := range classify.Fields {
				if v := st.Labels[f]; v != "" {
					ls = append(ls, f+" "+v)
				}
			}
			fmt.Fprintf(stdout, "  %-8s %.2f  %s (%s)\n", id, st.Similarity, st.Subject, strings.Join(ls, ", "))
		}
	}
	return nil
}

// storedPolicy is the live policy document's policy in force, when the
// broker holds one.
func storedPolicy(ctx context.Context, co *connOpts) (triage.Policy, bool) {
	conn, err := co.connect(ctx)
	if err != nil {
		return triage.Policy{}, false
	}
	defer conn.Close()
	kv, err := conn.KV(ctx, pipeline.BucketPolicy)
	if err != nil {
		return triage.Policy{}, false
	}
	d, _, err := triage.NewStore(kv, conn, slog.New(slog.NewTextHandler(io.Discard, nil))).Get(ctx)
	if err != nil {
		return triage.Policy{}, false
	}
	p, err := d.Effective()
	if err != nil {
		return triage.Policy{}, false
	}
	return p, true
}
