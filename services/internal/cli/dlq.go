package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

func init() {
	Register("dlq", "list, show, retry and purge dead letters", runDLQ)
}

type dlqEntry struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	Subject    string    `json:"subject"`
	Stage      string    `json:"stage"`
	Error      string    `json:"error"`
	Deliveries string    `json:"deliveries,omitempty"`
	OrigStream string    `json:"original_stream,omitempty"`
	OrigSeq    string    `json:"original_seq,omitempty"`
	OrigSubj   string    `json:"original_subject,omitempty"`
	Size       int       `json:"size"`
}

func hdr(h map[string][]string, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func dlqEntryOf(m pipeline.RawMsg) dlqEntry {
	return dlqEntry{Seq: m.Sequence, Time: m.Time.UTC(), Subject: m.Subject, Stage: hdr(m.Header, pipeline.HeaderStage),
		Error: hdr(m.Header, pipeline.HeaderError), Deliveries: hdr(m.Header, pipeline.HeaderDeliveries),
		OrigStream: hdr(m.Header, pipeline.HeaderOriginalStream), OrigSeq: hdr(m.Header, pipeline.HeaderOriginalSeq),
		OrigSubj: hdr(m.Header, pipeline.HeaderOriginalSubj), Size: len(m.Data)}
}

func dlqFilter(stage string) string {
	if stage == "" {
		return "dlq.>"
	}
	return "dlq." + pipeline.Token(stage) + ".>"
}

func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const cmd = "dlq"
	f := newFlags(cmd, "list [--stage S] | show SEQ | retry (SEQ... | --all [--stage S]) | purge [--stage S] --yes",
		"Inspect and act on dead letters (stream DLQ, subjects dlq.<stage>.<account>).\n"+
			"retry re-publishes the original payload to its original subject with a new message id and\n"+
			"an Autotriage-Attempt header naming the retry (the writer's outcome of the retried prediction\n"+
			"supersedes its earlier FAILED one), then deletes the dead letter.", stdout)
	var co connOpts
	co.register(f)
	stage := f.String("stage", "", "only this stage (fetcher, classifier, writer, ...)")
	asJSON := f.Bool("json", false, "print JSON")
	limit := f.Int("limit", 0, "list: show at most this many (0: all)")
	all := f.Bool("all", false, "retry: every dead letter (of --stage)")
	yes := f.Bool("yes", false, "purge: confirm")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef(cmd, "dlq: want a subcommand: list, show, retry or purge")
	}
	sub, rest := pos[0], pos[1:]
	var seqs []uint64
	for _, a := range rest {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil || n == 0 {
			return usagef(cmd, "dlq %s: %q is not a sequence number", sub, a)
		}
		seqs = append(seqs, n)
	}
	switch sub {
	case "list", "purge":
		if len(seqs) > 0 {
			return usagef(cmd, "dlq %s takes no arguments", sub)
		}
		if sub == "purge" && !*yes {
			return usagef(cmd, "dlq purge deletes dead letters for good; add --yes to confirm")
		}
	case "show":
		if len(seqs) != 1 {
			return usagef(cmd, "dlq show: want one sequence number")
		}
	case "retry":
		if (len(seqs) > 0) == *all {
			return usagef(cmd, "dlq retry: give sequence numbers or --all")
		}
	default:
		return usagef(cmd, "dlq: unknown subcommand %q", sub)
	}
	conn, err := co.connectReady(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	switch sub {
	case "list":
		return dlqList(ctx, conn, *stage, *limit, *asJSON, stdout)
	case "show":
		return dlqShow(ctx, conn, seqs[0], *asJSON, stdout)
	case "retry":
		return dlqRetry(ctx, conn, seqs, *stage, *asJSON, stdout, stderr)
	default:
		n, err := conn.PurgeSubject(ctx, pipeline.StreamDLQ, dlqFilter(*stage))
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, map[string]any{"purged": n, "filter": dlqFilter(*stage)})
		}
		_, err = fmt.Fprintf(stdout, "purged %d dead letter(s) (%s)\n", n, dlqFilter(*stage))
		return err
	}
}

func dlqList(ctx context.Context, conn *pipeline.Conn, stage string, limit int, asJSON bool, w io.Writer) error {
	entries := []dlqEntry{}
	_, err := conn.Read(ctx, pipeline.ReadOptions{Stream: pipeline.StreamDLQ, Subject: dlqFilter(stage)}, func(m pipeline.RawMsg) error {
		entries = append(entries, dlqEntryOf(m))
		if limit > 0 && len(entries) >= limit {
			return pipeline.ErrStopRead
		}
		return nil
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(w, entries)
	}
	if len(entries) == 0 {
		_, err := fmt.Fprintln(w, "no dead letters")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tSTAGE\tORIGIN\tDELIVERIES\tERROR")
	for _, e := range entries {
		origin := e.OrigSubj
		if origin == "" {
			origin = "(raw input)"
		} else if e.OrigStream != "" {
			origin += " (" + e.OrigStream + " #" + e.OrigSeq + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.Format(time.RFC3339), e.Stage, origin, e.Deliveries, oneLine(e.Error, 100))
	}
	return tw.Flush()
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > n {
		return string([]rune(s)[:n-1]) + "…"
	}
	return s
}

func dlqShow(ctx context.Context, conn *pipeline.Conn, seq uint64, asJSON bool, w io.Writer) error {
	m, err := conn.GetMsg(ctx, pipeline.StreamDLQ, seq)
	if errors.Is(err, pipeline.ErrNotFound) {
		return fmt.Errorf("no dead letter with sequence %d", seq)
	}
	if err != nil {
		return err
	}
	e := dlqEntryOf(m)
	payload, kind := describePayload(e.OrigStream, m.Data)
	if asJSON {
		return writeJSON(w, map[string]any{"entry": e, "headers": m.Header, "payload_kind": kind, "payload": payload})
	}
	fmt.Fprintf(w, "seq %d  %s  %s\n", e.Seq, e.Time.Format(time.RFC3339Nano), e.Subject)
	keys := make([]string, 0, len(m.Header))
	for k := range m.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s: %s\n", k, strings.Join(m.Header[k], ", "))
	}
	_, err = fmt.Fprintf(w, "\npayload (%s, %d bytes):\n%s\n", kind, len(m.Data), payload)
	return err
}

// describePayload renders a payload readably: the protobuf message of its
// original stream as JSON when it decodes, else text, else a byte count.
func describePayload(stream string, data []byte) (string, string) {
	var msg proto.Message
	switch stream {
	case pipeline.StreamTickets:
		msg = &v1.Ticket{}
	case pipeline.StreamPredictions:
		msg = &v1.Prediction{}
	case pipeline.StreamOutcomes:
		msg = &v1.Outcome{}
	}
	if msg != nil && proto.Unmarshal(data, msg) == nil {
		if b, err := (protojson.MarshalOptions{Multiline: true, Indent: "  "}).Marshal(msg); err == nil {
			return string(b), string(msg.ProtoReflect().Descriptor().FullName())
		}
	}
	if utf8.Valid(data) {
		return string(data), "text"
	}
	return fmt.Sprintf("(%d bytes of binary data)", len(data)), "binary"
}

type retryResult struct {
	Seq     uint64 `json:"seq"`
	Subject string `json:"subject,omitempty"`
	NewSeq  uint64 `json:"new_seq,omitempty"`
	Error   string `json:"error,omitempty"`
}

// dlqHeaders are the headers a dead-lettering adds; a retry drops them so
// the message is as it was.
var dlqHeaders = []string{pipeline.HeaderStage, pipeline.HeaderError, pipeline.HeaderDeliveries, pipeline.HeaderOriginalStream,
	pipeline.HeaderOriginalSeq, pipeline.HeaderOriginalSubj, pipeline.HeaderFailedAt, "Nats-Msg-Id"}

// retryOne re-publishes a dead letter to its original subject under a new
// message id (the original id may still be in the duplicate window), then
// deletes it from the DLQ. A dead letter without an original subject (raw
// input such as a rejected webhook body) cannot be retried.
func retryOne(ctx context.Context, conn *pipeline.Conn, m pipeline.RawMsg, run string) retryResult {
	r := retryResult{Seq: m.Sequence}
	subj := hdr(m.Header, pipeline.HeaderOriginalSubj)
	if subj == "" {
		r.Error = "no original subject (raw input); cannot be retried"
		return r
	}
	r.Subject = subj
	h := map[string]string{}
	for k, v := range m.Header {
		if len(v) > 0 {
			h[k] = v[0]
		}
	}
	for _, k := range dlqHeaders {
		delete(h, k)
	}
	// A new attempt: the writer's outcome of it supersedes the FAILED one
	// instead of being dropped as its duplicate.
	h[pipeline.HeaderAttempt] = "dlq-retry:" + run
	ack, err := conn.Publish(ctx, pipeline.OutMsg{Subject: subj, ID: fmt.Sprintf("dlq-retry:%s:%d", run, m.Sequence), Data: m.Data, Header: h})
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.NewSeq = ack.Sequence
	if err := conn.DeleteMsg(ctx, pipeline.StreamDLQ, m.Sequence); err != nil && !errors.Is(err, pipeline.ErrNotFound) {
		r.Error = "re-published, but the dead letter could not be deleted: " + err.Error()
	}
	return r
}

func dlqRetry(ctx context.Context, conn *pipeline.Conn, seqs []uint64, stage string, asJSON bool, stdout, stderr io.Writer) error {
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	results := []retryResult{}
	prog := newProgress(stderr)
	if len(seqs) > 0 {
		for _, s := range seqs {
			m, err := conn.GetMsg(ctx, pipeline.StreamDLQ, s)
			if err != nil {
				results = append(results, retryResult{Seq: s, Error: err.Error()})
				continue
			}
			results = append(results, retryOne(ctx, conn, m, run))
		}
	} else {
		_, err := conn.Read(ctx, pipeline.ReadOptions{Stream: pipeline.StreamDLQ, Subject: dlqFilter(stage)}, func(m pipeline.RawMsg) error {
			results = append(results, retryOne(ctx, conn, m, run))
			prog.update("retried %d dead letters", len(results))
			return ctx.Err()
		})
		if err != nil {
			return err
		}
	}
	failed := 0
	for _, r := range results {
		if r.Error != "" {
			failed++
		}
	}
	if asJSON {
		if err := writeJSON(stdout, results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			if r.Error != "" {
				fmt.Fprintf(stdout, "seq %d: failed: %s\n", r.Seq, r.Error)
			} else {
				fmt.Fprintf(stdout, "seq %d: re-published to %s (seq %d)\n", r.Seq, r.Subject, r.NewSeq)
			}
		}
		fmt.Fprintf(stdout, "%d retried, %d failed\n", len(results)-failed, failed)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d dead letters could not be retried", failed, len(results))
	}
	return nil
}
