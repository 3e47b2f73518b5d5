package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

func init() {
	Register("models", "list, push, promote and roll back the models in the object store", runModels)
}

// openStore opens the model registry. With create set, a server without
// the pipeline's topology gets it (the one-shot trainer may run before any
// stage); otherwise a missing topology is an error.
func openStore(ctx context.Context, conn *pipeline.Conn, create bool) (*modelstore.Store, error) {
	ok, err := conn.HasTopology(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		if !create {
			return nil, errNoTopology
		}
		// A fresh cluster elects a leader per replicated stream first; keep
		// trying for a while, as the stages do.
		ectx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := conn.EnsureTopologyRetry(ectx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("create the pipeline topology: %w", err)
		}
	}
	if create {
		if err := conn.EnsureModelStore(ctx); err != nil {
			return nil, fmt.Errorf("create the model registry: %w", err)
		}
	}
	st, err := modelstore.Open(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("open the model registry: %w", err)
	}
	return st, nil
}

// resolveModelID finds a stored model by full id or unique prefix.
func resolveModelID(ctx context.Context, st *modelstore.Store, ref string) (string, error) {
	list, err := st.List(ctx)
	if err != nil {
		return "", err
	}
	var found []string
	for _, m := range list {
		if m.ID == ref {
			return ref, nil
		}
		if strings.HasPrefix(m.ID, ref) || m.Version == ref {
			found = append(found, m.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no stored model %q (see `autotriage models list`)", ref)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("model reference %q is ambiguous (%d models match); give more of the id", ref, len(found))
}

// loadedModel is a model with where it came from.
type loadedModel struct {
	model   *classify.Model
	version string
	source  string
}

// loadModel reads a model from a file, or from the registry when spec is
// empty (the promoted model) or not a file (a stored id or prefix).
func loadModel(ctx context.Context, spec string, co *connOpts) (loadedModel, error) {
	if spec != "" {
		if _, err := os.Stat(spec); err == nil {
			m, err := loadModelFile(spec)
			if err != nil {
				return loadedModel{}, err
			}
			return loadedModel{model: m, version: "file", source: spec}, nil
		}
	}
	conn, err := co.connect(ctx)
	if err != nil {
		if spec != "" {
			return loadedModel{}, fmt.Errorf("%q is not a model file, and the registry is unavailable: %w", spec, err)
		}
		return loadedModel{}, err
	}
	defer conn.Close()
	st, err := openStore(ctx, conn, false)
	if err != nil {
		return loadedModel{}, err
	}
	id := ""
	if spec == "" {
		p, err := st.Promoted(ctx)
		if errors.Is(err, modelstore.ErrNoModel) {
			return loadedModel{}, errors.New("no model is promoted yet: pass --model FILE or run `autotriage train --promote`")
		}
		if err != nil {
			return loadedModel{}, err
		}
		id = p.ID
	} else if id, err = resolveModelID(ctx, st, spec); err != nil {
		return loadedModel{}, err
	}
	b, info, err := st.Load(ctx, id)
	if err != nil {
		return loadedModel{}, err
	}
	m, err := classify.Load(bytes.NewReader(b))
	if err != nil {
		return loadedModel{}, fmt.Errorf("stored model %s: %w", shortID(id), err)
	}
	return loadedModel{model: m, version: info.Version, source: "registry:" + shortID(id)}, nil
}

func loadModelFile(path string) (*classify.Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open model: %w", err)
	}
	defer f.Close()
	m, err := classify.Load(f)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	return m, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// pushModel stores an artifact in the registry under its content id and
// promotes it when asked.
func pushModel(ctx context.Context, st *modelstore.Store, m *classify.Model, meta map[string]string, promote bool, by string) (modelstore.Info, *modelstore.Promotion, error) {
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		return modelstore.Info{}, nil, err
	}
	meta = cloneMeta(meta)
	meta["examples"] = strconv.Itoa(m.Metadata().Training.Examples)
	meta["fields"] = strings.Join(m.FieldNames(), ",")
	meta["trained_at"] = m.Created().UTC().Format(time.RFC3339)
	info, err := st.Put(ctx, m.ID(), modelstore.VersionFromTime(m.Created()), buf.Bytes(), meta)
	if err != nil {
		return modelstore.Info{}, nil, err
	}
	if !promote {
		return info, nil, nil
	}
	p, err := st.Promote(ctx, m.ID(), by)
	if err != nil {
		return info, nil, err
	}
	return info, &p, nil
}

func cloneMeta(in map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range in {
		out[k] = v
	}
	return out
}

func runModels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const cmd = "models"
	f := newFlags(cmd, "list|history|push FILE|promote ID|rollback|diff A B [flags]",
		"Manage the model registry (JetStream object store). IDs may be abbreviated to a unique prefix.", stdout)
	var co connOpts
	co.register(f)
	asJSON := f.Bool("json", false, "print JSON")
	promote := f.Bool("promote", false, "push: promote the model after storing it")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef(cmd, "models: want a subcommand: list, history, push, promote, rollback or diff")
	}
	sub, rest := pos[0], pos[1:]
	wantArgs := map[string]int{"list": 0, "history": 0, "push": 1, "promote": 1, "rollback": 0, "diff": 2}
	n, ok := wantArgs[sub]
	if !ok {
		return usagef(cmd, "models: unknown subcommand %q", sub)
	}
	if len(rest) != n {
		return usagef(cmd, "models %s: want %d argument(s), got %d", sub, n, len(rest))
	}
	var pushed *classify.Model
	if sub == "push" {
		if pushed, err = loadModelFile(rest[0]); err != nil {
			return err
		}
	}
	conn, err := co.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	st, err := openStore(ctx, conn, sub == "push")
	if err != nil {
		return err
	}
	by := "autotriage models " + sub
	switch sub {
	case "list":
		return modelsList(ctx, st, *asJSON, stdout)
	case "diff":
		return modelsDiff(ctx, st, rest[0], rest[1], *asJSON, stdout)
	case "history":
		hist, err := st.History(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, hist)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROMOTED AT\tID\tVERSION\tBY")
		for i := len(hist) - 1; i >= 0; i-- {
			p := hist[i]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.PromotedAt.Format(time.RFC3339), shortID(p.ID), p.Version, p.By)
		}
		return tw.Flush()
	case "push":
		info, p, err := pushModel(ctx, st, pushed, map[string]string{"source": "push"}, *promote, by)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, map[string]any{"model": info, "promotion": p})
		}
		fmt.Fprintf(stdout, "stored model %s (version %s, %d bytes)\n", shortID(info.ID), info.Version, info.Size)
		if p != nil {
			fmt.Fprintf(stdout, "promoted %s\n", shortID(p.ID))
		}
		return nil
	case "promote":
		id, err := resolveModelID(ctx, st, rest[0])
		if err != nil {
			return err
		}
		p, err := st.Promote(ctx, id, by)
		if err != nil {
			return err
		}
		return printPromotion(stdout, *asJSON, "promoted", p)
	default: // rollback
		p, err := st.Rollback(ctx, by)
		if errors.Is(err, modelstore.ErrNoModel) {
			return errors.New("no model has been promoted; nothing to roll back")
		}
		if err != nil {
			return err
		}
		return printPromotion(stdout, *asJSON, "rolled back to", p)
	}
}

func printPromotion(w io.Writer, asJSON bool, verb string, p modelstore.Promotion) error {
	if asJSON {
		return writeJSON(w, p)
	}
	_, err := fmt.Fprintf(w, "%s model %s (version %s); classifiers switch to it within seconds\n", verb, shortID(p.ID), p.Version)
	return err
}

func modelsList(ctx context.Context, st *modelstore.Store, asJSON bool, w io.Writer) error {
	list, err := st.List(ctx)
	if err != nil {
		return err
	}
	cur, err := st.Promoted(ctx)
	if err != nil && !errors.Is(err, modelstore.ErrNoModel) {
		return err
	}
	if asJSON {
		type row struct {
			modelstore.Info
			Promoted bool `json:"promoted"`
		}
		rows := make([]row, 0, len(list))
		for _, m := range list {
			rows = append(rows, row{m, m.ID == cur.ID})
		}
		return writeJSON(w, rows)
	}
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no models stored")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tID\tVERSION\tSIZE\tCREATED\tEXAMPLES\tFIELDS")
	for _, m := range list {
		mark := ""
		if m.ID == cur.ID {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, shortID(m.ID), m.Version, humanBytes(m.Size),
			m.CreatedAt.UTC().Format(time.RFC3339), m.Meta["examples"], m.Meta["fields"])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, "(* = promoted)")
	return err
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
