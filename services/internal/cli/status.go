package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

func init() {
	Register("status", "streams, consumer lag, DLQ depth, model in use, fetcher cursor, API headroom and live precision", runStatus)
}

type streamStatus struct {
	Name     string    `json:"name"`
	Messages uint64    `json:"messages"`
	Bytes    uint64    `json:"bytes"`
	FirstSeq uint64    `json:"first_seq"`
	LastSeq  uint64    `json:"last_seq"`
	Oldest   time.Time `json:"oldest,omitzero"`
}

type consumerStatus struct {
	Stream      string `json:"stream"`
	Name        string `json:"name"`
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ack_pending"`
	Redelivered int    `json:"redelivered"`
	AckFloor    uint64 `json:"ack_floor"`
	Error       string `json:"error,omitempty"`
}

type modelStatus struct {
	ID         string    `json:"id,omitempty"`
	Version    string    `json:"version,omitempty"`
	PromotedAt time.Time `json:"promoted_at,omitzero"`
	By         string    `json:"by,omitempty"`
	Error      string    `json:"error,omitempty"`
}

type kvValue struct {
	Key      string          `json:"key"`
	Value    json.RawMessage `json:"value"`
	Revision uint64          `json:"revision"`
	Updated  time.Time       `json:"updated"`
}

type helpdeskStatus struct {
	BaseURL   string    `json:"base_url"`
	Reachable bool      `json:"reachable"`
	Error     string    `json:"error,omitempty"`
	Known     bool      `json:"rate_limit_known"`
	Total     int       `json:"rate_limit_total,omitempty"`
	Remaining int       `json:"rate_limit_remaining,omitempty"`
	Reserve   int       `json:"rate_limit_reserve,omitempty"`
	ResetAt   time.Time `json:"rate_limit_reset_at,omitzero"`
}

type statusOutput struct {
	Streams   []streamStatus        `json:"streams"`
	Consumers []consumerStatus      `json:"consumers"`
	DLQ       []pipeline.StageCount `json:"dlq"`
	Model     modelStatus           `json:"model"`
	Fetcher   []kvValue             `json:"fetcher"`
	Helpdesk  *helpdeskStatus       `json:"helpdesk,omitempty"`
	Precision *livePrecision        `json:"live_precision,omitempty"`
	Catalog   *catalogStatus        `json:"catalog,omitempty"`
	Problems  []string              `json:"problems,omitempty"`
}

func runStatus(ctx context.Context, args []string, stdout, _ io.Writer) error {
	const cmd = "status"
	f := newFlags(cmd, "[--json]", "Show the pipeline's state: streams (messages, bytes, oldest), the stage consumers\n"+
		"(pending, ack pending, redelivered), DLQ depth per stage, the model in use, the fetcher's\n"+
		"cursor and lease, the Freshdesk API headroom (when FRESHDESK_* is set; costs one call), and the\n"+
		"live precision per field and class with its Wilson lower bound (from the verdicts in OUTCOMES).", stdout)
	var co connOpts
	co.register(f)
	asJSON := f.Bool("json", false, "print JSON")
	noHelpdesk := f.Bool("no-helpdesk", false, "skip the Freshdesk call")
	precSince := f.String("precision-since", "30d", "live precision: read the verdicts in OUTCOMES since this time (\"\": skip)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.noArgs(pos); err != nil {
		return err
	}
	var since time.Time
	if *precSince != "" {
		if since, err = parseTime(*precSince, time.Now()); err != nil {
			return usagef(cmd, "status: --precision-since: %v", err)
		}
	}
	conn, err := co.connectReady(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	out, err := collectStatus(ctx, conn, !*noHelpdesk)
	if err != nil {
		return err
	}
	if *precSince != "" {
		lp := readLivePrecision(ctx, conn, since)
		if lp.Error != "" {
			out.Problems = append(out.Problems, lp.Error)
		}
		out.Precision = &lp
	}
	if *asJSON {
		return writeJSON(stdout, out)
	}
	return printStatus(stdout, out)
}

// collectStatus gathers every section. Only the streams are essential; a
// failing section is reported in Problems and the rest still shown.
func collectStatus(ctx context.Context, conn *pipeline.Conn, helpdesk bool) (statusOutput, error) {
	var out statusOutput
	ss, err := conn.StreamStats(ctx)
	if err != nil {
		return out, err
	}
	for _, s := range ss {
		out.Streams = append(out.Streams, streamStatus{Name: s.Name, Messages: s.Messages, Bytes: s.Bytes,
			FirstSeq: s.FirstSeq, LastSeq: s.LastSeq, Oldest: oldest(s)})
	}
	for _, c := range []struct{ stream, name string }{
		{pipeline.StreamTickets, pipeline.ConsumerClassifier}, {pipeline.StreamPredictions, pipeline.ConsumerWriter},
	} {
		st, err := conn.ConsumerStats(ctx, c.stream, c.name)
		cs := consumerStatus{Stream: c.stream, Name: c.name}
		if err != nil {
			cs.Error = err.Error()
			out.Problems = append(out.Problems, err.Error())
		} else {
			cs.Pending, cs.AckPending, cs.Redelivered, cs.AckFloor = st.Pending, st.AckPending, st.Redelivered, st.AckFloor
		}
		out.Consumers = append(out.Consumers, cs)
	}
	if out.DLQ, err = conn.DLQDepth(ctx); err != nil {
		out.Problems = append(out.Problems, err.Error())
	}
	out.Model = modelInUse(ctx, conn)
	if out.Model.Error != "" {
		out.Problems = append(out.Problems, out.Model.Error)
	}
	if out.Fetcher, err = fetcherState(ctx, conn); err != nil {
		out.Problems = append(out.Problems, err.Error())
	}
	if helpdesk {
		out.Helpdesk, err = helpdeskHeadroom(ctx)
		if err != nil {
			return out, err
		}
		if out.Helpdesk != nil && out.Helpdesk.Error != "" {
			out.Problems = append(out.Problems, "helpdesk: "+out.Helpdesk.Error)
		}
	}
	out.Catalog = catalogSection(ctx, conn, helpdesk && out.Helpdesk != nil && out.Helpdesk.Reachable)
	return out, nil
}

func oldest(s pipeline.StreamStat) time.Time {
	if s.Messages == 0 || s.Oldest.Year() < 2000 {
		return time.Time{}
	}
	return s.Oldest.UTC()
}

func modelInUse(ctx context.Context, conn *pipeline.Conn) modelStatus {
	st, err := modelstore.Open(ctx, conn)
	if err != nil {
		return modelStatus{Error: err.Error()}
	}
	p, err := st.Promoted(ctx)
	if errors.Is(err, modelstore.ErrNoModel) {
		return modelStatus{Error: "no model promoted: the classifier is waiting (run `autotriage train --promote`)"}
	}
	if err != nil {
		return modelStatus{Error: err.Error()}
	}
	return modelStatus{ID: p.ID, Version: p.Version, PromotedAt: p.PromotedAt, By: p.By}
}

// fetcherState returns the fetcher's cursors, leases and triage starts as stored (their
// JSON is the fetcher's business; non-JSON values are shown as strings).
func fetcherState(ctx context.Context, conn *pipeline.Conn) ([]kvValue, error) {
	kv, err := conn.KV(ctx, pipeline.BucketFetcher)
	if err != nil {
		return nil, err
	}
	keys, err := kv.Keys(ctx)
	if err != nil {
		return nil, err
	}
	sort.Strings(keys)
	var out []kvValue
	for _, k := range keys {
		if !strings.HasPrefix(k, "cursor.") && !strings.HasPrefix(k, "lease.") && !strings.HasPrefix(k, "start.") {
			continue
		}
		e, err := kv.Get(ctx, k)
		if errors.Is(err, pipeline.ErrNotFound) {
			continue
		}
		if err != nil {
			return out, err
		}
		v := json.RawMessage(e.Value)
		if !json.Valid(v) {
			v, _ = json.Marshal(string(e.Value))
		}
		out = append(out, kvValue{Key: k, Value: v, Revision: e.Revision, Updated: e.Created.UTC()})
	}
	return out, nil
}

// helpdeskHeadroom makes one cheap call (GET /agents/me, 1 credit) to read
// the rate-limit headers. nil when no Freshdesk account is configured.
func helpdeskHeadroom(ctx context.Context) (*helpdeskStatus, error) {
	c, _, ok, err := helpdeskClient()
	if err != nil || !ok {
		return nil, err
	}
	hs := &helpdeskStatus{BaseURL: c.BaseURL()}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Me(cctx); err != nil {
		hs.Error = err.Error()
	} else {
		hs.Reachable = true
	}
	rl := c.RateLimit()
	hs.Known, hs.Total, hs.Remaining, hs.Reserve = rl.Known, rl.Total, rl.Remaining, rl.Reserve
	if rl.Known {
		hs.ResetAt = rl.ResetAt.UTC()
	}
	return hs, nil
}

func printStatus(w io.Writer, s statusOutput) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMESSAGES\tBYTES\tFIRST\tLAST\tOLDEST")
	for _, st := range s.Streams {
		old := "-"
		if !st.Oldest.IsZero() {
			old = st.Oldest.Format(time.RFC3339) + " (" + time.Since(st.Oldest).Round(time.Second).String() + " ago)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\n", st.Name, st.Messages, humanBytes(st.Bytes), st.FirstSeq, st.LastSeq, old)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CONSUMER\tSTREAM\tPENDING\tACK PENDING\tREDELIVERED\tACK FLOOR")
	for _, c := range s.Consumers {
		if c.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\t\t\n", c.Name, c.Stream, "unavailable")
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\n", c.Name, c.Stream, c.Pending, c.AckPending, c.Redelivered, c.AckFloor)
	}
	tw.Flush()
	fmt.Fprint(w, "\nDLQ: ")
	if len(s.DLQ) == 0 {
		fmt.Fprintln(w, "empty")
	} else {
		parts := make([]string, 0, len(s.DLQ))
		for _, d := range s.DLQ {
			parts = append(parts, fmt.Sprintf("%s %d", d.Stage, d.Messages))
		}
		fmt.Fprintln(w, strings.Join(parts, ", ")+" (autotriage dlq list)")
	}
	if s.Model.ID != "" {
		fmt.Fprintf(w, "model: %s version %s, promoted %s by %s\n", shortID(s.Model.ID), s.Model.Version,
			s.Model.PromotedAt.UTC().Format(time.RFC3339), s.Model.By)
	} else {
		fmt.Fprintf(w, "model: %s\n", s.Model.Error)
	}
	if len(s.Fetcher) == 0 {
		fmt.Fprintln(w, "fetcher: no cursor or lease stored yet")
	}
	for _, kv := range s.Fetcher {
		fmt.Fprintf(w, "fetcher %s: %s (updated %s)\n", kv.Key, kv.Value, kv.Updated.Format(time.RFC3339))
	}
	if h := s.Helpdesk; h != nil {
		switch {
		case !h.Reachable:
			fmt.Fprintf(w, "helpdesk %s: unreachable: %s\n", h.BaseURL, h.Error)
		case h.Known:
			fmt.Fprintf(w, "helpdesk %s: %d of %d API credits left this minute (reserve %d for others), window resets %s\n",
				h.BaseURL, h.Remaining, h.Total, h.Reserve, h.ResetAt.Format(time.RFC3339))
		default:
			fmt.Fprintf(w, "helpdesk %s: reachable; no rate-limit headers reported\n", h.BaseURL)
		}
	}
	if s.Precision != nil {
		s.Precision.print(w, "live precision")
	}
	printCatalog(w, s.Catalog)
	return nil
}
