package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	autotriagev1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/triage"
)

func init() {
	Register("policy", "show or set the live triage policy (per field and class; classifiers follow it without a restart)", runPolicy)
}

func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const cmd = "policy"
	f := newFlags(cmd, `show [--json] | set "<policy>" [--by NAME]`,
		"Show the triage policy stored in KV (per-field and per-class modes, the thresholds they resolve to for the\n"+
			"promoted model, the classes live precision demoted, the history of changes), or set the operator's policy.\n"+
			"Policy syntax: field=mode[:threshold] and field[class]=mode[:threshold], comma-separated, e.g.\n"+
			"  group=apply:p95,group[Billing]=suggest,priority=suggest,tags=apply:0.9\n"+
			"The stored policy wins over AUTOTRIAGE_POLICY, which is only its initial value.", stdout)
	var co connOpts
	co.register(f)
	asJSON := f.Bool("json", false, "print JSON")
	by := f.String("by", "", "set: who changes the policy (default $USER)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef(cmd, "policy: want a subcommand: show or set")
	}
	sub, rest := pos[0], pos[1:]
	var next triage.Policy
	switch sub {
	case "show":
		if len(rest) != 0 {
			return usagef(cmd, "policy show: unexpected argument %q", rest[0])
		}
	case "set":
		if len(rest) != 1 {
			return usagef(cmd, `policy set: want one argument, the policy in quotes (e.g. "group=apply:p95,group[Billing]=suggest")`)
		}
		if next, err = triage.ParsePolicy(rest[0]); err != nil {
			return usagef(cmd, "policy set: %v", err)
		}
	default:
		return usagef(cmd, "policy: unknown subcommand %q", sub)
	}
	env, err := loadEnv()
	if err != nil {
		return err
	}
	conn, err := co.connectReady(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	kv, err := conn.KV(ctx, pipeline.BucketPolicy)
	if err != nil {
		return fmt.Errorf("the policy bucket is missing (start the classifier once to create it): %w", err)
	}
	store := triage.NewStore(kv, conn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if sub == "set" {
		who := *by
		if who == "" {
			who = os.Getenv("USER")
		}
		if who == "" {
			who = "unknown"
		}
		if m, _, err := promotedModel(ctx, conn); err == nil && m != nil {
			for _, w := range unknownClasses(next, m) {
				fmt.Fprintf(stderr, "warning: %s\n", w)
			}
		}
		return policySet(ctx, store, next, "operator:"+who, env.Policy, *asJSON, stdout)
	}
	return policyShow(ctx, conn, kv, store, env.Policy, *asJSON, stdout)
}

func policySet(ctx context.Context, store *triage.Store, next triage.Policy, by, initial string, asJSON bool, w io.Writer) error {
	want := next.String()
	d, rev, changes, err := store.Change(ctx, by, initial, func(d *triage.Doc) ([]*autotriagev1.PolicyChange, error) {
		if d.Policy == want {
			return nil, nil
		}
		c := &autotriagev1.PolicyChange{From: d.Policy, To: want, Reason: "set by operator"}
		d.Policy = want
		return []*autotriagev1.PolicyChange{c}, nil
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(w, map[string]any{"policy": d.Policy, "revision": rev, "changed": len(changes) > 0, "demotions": d.Demotions})
	}
	if len(changes) == 0 {
		fmt.Fprintf(w, "policy unchanged (revision %d): %s\n", rev, d.Policy)
	} else {
		fmt.Fprintf(w, "policy set (revision %d): %s\nclassifiers decide the next ticket under it\n", rev, d.Policy)
	}
	if len(d.Demotions) > 0 {
		fmt.Fprintf(w, "%d class(es) stay demoted by live precision (see `autotriage policy show`)\n", len(d.Demotions))
	}
	return nil
}

// historyRow is one stored revision of the policy document.
type historyRow struct {
	Revision  uint64    `json:"revision"`
	At        time.Time `json:"at"`
	By        string    `json:"by,omitempty"`
	Change    string    `json:"change,omitempty"`
	Policy    string    `json:"policy,omitempty"`
	Demotions int       `json:"demotions"`
	Error     string    `json:"error,omitempty"`
}

type policyView struct {
	Policy    string               `json:"policy"`
	Stored    bool                 `json:"stored"`
	Revision  uint64               `json:"revision,omitempty"`
	ChangedBy string               `json:"changed_by,omitempty"`
	ChangedAt *time.Time           `json:"changed_at,omitempty"`
	Demotions []triage.Demotion    `json:"demotions"`
	ModelID   string               `json:"model_id,omitempty"`
	Version   string               `json:"model_version,omitempty"`
	Classes   []triage.ClassStatus `json:"classes"`
	History   []historyRow         `json:"history"`
}

func policyShow(ctx context.Context, conn *pipeline.Conn, kv *pipeline.KV, store *triage.Store, initial string, asJSON bool, w io.Writer) error {
	v := policyView{Demotions: []triage.Demotion{}, Classes: []triage.ClassStatus{}, History: []historyRow{}}
	d, rev, err := store.Get(ctx)
	switch {
	case errors.Is(err, triage.ErrNoDoc):
		p, perr := triage.ParsePolicy(initial)
		if perr != nil {
			return fmt.Errorf("AUTOTRIAGE_POLICY: %w", perr)
		}
		d = triage.Doc{Policy: p.String()}
	case err != nil:
		return err
	default:
		v.Stored, v.Revision, v.ChangedBy = true, rev, d.ChangedBy
		at := d.ChangedAt
		v.ChangedAt = &at
		v.Demotions = append(v.Demotions, d.Demotions...)
	}
	v.Policy = d.Policy
	eff, err := d.Effective()
	if err != nil {
		return err
	}
	m, pr, err := promotedModel(ctx, conn)
	if err != nil {
		return err
	}
	if m != nil {
		v.ModelID, v.Version = pr.ID, pr.Version
		v.Classes = eff.ClassStatuses(m)
	}
	if v.Stored {
		hist, err := kv.History(ctx, triage.PolicyKey)
		if err != nil {
			return err
		}
		for i := len(hist) - 1; i >= 0; i-- {
			e := hist[i]
			row := historyRow{Revision: e.Revision, At: e.Created.UTC()}
			if e.Deleted {
				row.Change = "deleted"
			} else if hd, err := triage.DecodeDoc(e.Value); err != nil {
				row.Error = err.Error()
			} else {
				row.By, row.Change, row.Policy, row.Demotions = hd.ChangedBy, hd.Change, hd.Policy, len(hd.Demotions)
			}
			v.History = append(v.History, row)
		}
	}
	if asJSON {
		return writeJSON(w, v)
	}
	return printPolicyView(w, v)
}

func printPolicyView(w io.Writer, v policyView) error {
	if v.Stored {
		fmt.Fprintf(w, "policy (revision %d, changed by %s at %s):\n  %s\n", v.Revision, v.ChangedBy, v.ChangedAt.Format(time.RFC3339), orDefault(v.Policy))
	} else {
		fmt.Fprintf(w, "policy (not stored yet; AUTOTRIAGE_POLICY is in force):\n  %s\n", orDefault(v.Policy))
	}
	if v.ModelID == "" {
		fmt.Fprintln(w, "\nno model promoted: thresholds are resolved once one is")
	} else {
		fmt.Fprintf(w, "\nper class, for model %s (version %s):\n", shortID(v.ModelID), v.Version)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FIELD\tCLASS\tSETTING\tIN FORCE\tTHRESHOLD\tHELD-OUT PRECISION\tN\tNOTE")
		for _, c := range v.Classes {
			setting := c.Setting
			if c.Own {
				setting += " (class)"
			}
			th, prec, n := "-", "-", "-"
			if c.Threshold > 0 {
				th = fmt.Sprintf("%.3f", c.Threshold)
			}
			if c.HeldOutCount > 0 {
				prec, n = fmt.Sprintf("%.3f", c.HeldOutPrecision), fmt.Sprint(c.HeldOutCount)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Field, c.Label, setting, c.Effective, th, prec, n, c.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(v.Demotions) > 0 {
		fmt.Fprintln(w, "\ndemoted by live precision:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FIELD\tCLASS\tSINCE\tLOWER BOUND\tTARGET\tN\tREASON")
		for _, d := range v.Demotions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.3f\t%.3f\t%d\t%s\n", d.Field, d.Label, d.Since.Format(time.RFC3339), d.LowerBound, d.Target, d.N, d.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(v.History) > 0 {
		fmt.Fprintln(w, "\nhistory (newest first):")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REVISION\tAT\tBY\tCHANGE\tPOLICY\tDEMOTED")
		for _, h := range v.History {
			change := h.Change
			if h.Error != "" {
				change = "unreadable: " + h.Error
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\n", h.Revision, h.At.Format(time.RFC3339), h.By, strings.TrimSpace(change), h.Policy, h.Demotions)
		}
		return tw.Flush()
	}
	return nil
}

func orDefault(p string) string {
	if p == "" {
		return "(empty: shadow everywhere)"
	}
	return p
}

// promotedModel loads the promoted model; nil without a registry or a
// promotion.
func promotedModel(ctx context.Context, conn *pipeline.Conn) (*classify.Model, modelstore.Promotion, error) {
	st, err := modelstore.Open(ctx, conn)
	if err != nil {
		return nil, modelstore.Promotion{}, nil
	}
	pr, err := st.Promoted(ctx)
	if errors.Is(err, modelstore.ErrNoModel) {
		return nil, pr, nil
	}
	if err != nil {
		return nil, pr, err
	}
	b, _, err := st.Load(ctx, pr.ID)
	if err != nil {
		return nil, pr, err
	}
	m, err := classify.Load(bytes.NewReader(b))
	if err != nil {
		return nil, pr, fmt.Errorf("promoted model %s: %w", shortID(pr.ID), err)
	}
	return m, pr, nil
}

// unknownClasses names the class settings of p that the model does not
// predict (a typo, or a label of a later model): they are stored, and act
// once a model predicts the label.
func unknownClasses(p triage.Policy, m *classify.Model) []string {
	var out []string
	for _, fi := range m.Metadata().Fields {
		known := map[string]bool{}
		for _, l := range fi.Labels {
			known[l] = true
		}
		for label := range p.Classes[fi.Name] {
			if !known[label] {
				out = append(out, fmt.Sprintf("%s[%s]: the promoted model has no such %s label; the setting acts once a model predicts it", fi.Name, label, fi.Name))
			}
		}
	}
	sort.Strings(out)
	return out
}
