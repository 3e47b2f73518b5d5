package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

func init() {
	Register("replay", "reprocess a stage's input from a time or sequence", runReplay)
}

// HeaderReplay marks a re-published message with the replay run that sent it.
const HeaderReplay = "Autotriage-Replay"

type replayOutput struct {
	Run       string    `json:"run"`
	Stage     string    `json:"stage"`
	Stream    string    `json:"stream"`
	Filter    string    `json:"filter"`
	DryRun    bool      `json:"dry_run"`
	Matched   int       `json:"matched"`
	Published int       `json:"published"`
	Skipped   int       `json:"skipped"`
	FirstSeq  uint64    `json:"first_seq,omitempty"`
	LastSeq   uint64    `json:"last_seq,omitempty"`
	FirstTime time.Time `json:"first_time,omitzero"`
	LastTime  time.Time `json:"last_time,omitzero"`
}

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const cmd = "replay"
	f := newFlags(cmd, "--stage classifier|writer (--since TIME | --from-seq N) [--to-seq N] [--account A] [--dry-run]",
		"Reprocess a stage's input: read its stream from a point through a new (ephemeral, ordered)\n"+
			"consumer and re-publish each message to its subject under a new message id\n"+
			"(replay:<run>:<seq>), so deduplication does not drop it and the stage's durable consumer\n"+
			"picks it up. classifier replays TICKETS (marked ARRIVAL_REPLAY with the run as batch id);\n"+
			"writer replays PREDICTIONS unchanged. Messages published during the replay are not read back.\n"+
			"Note: the classifier names predictions by ticket version and model, so replaying tickets under\n"+
			"the same model within the duplicate window yields no new predictions; promote a new model first.", stdout)
	var co connOpts
	co.register(f)
	stage := f.String("stage", "", "classifier or writer (required)")
	since := f.String("since", "", "start at this time (RFC 3339, YYYY-MM-DD or a duration ago such as 2h)")
	fromSeq := f.Uint64("from-seq", 0, "start at this stream sequence")
	toSeq := f.Uint64("to-seq", 0, "stop after this stream sequence (default: the last when the replay starts)")
	account := f.String("account", "", "only this account's messages")
	dry := f.Bool("dry-run", false, "count what would be replayed; publish nothing")
	asJSON := f.Bool("json", false, "print the summary as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.noArgs(pos); err != nil {
		return err
	}
	var stream, prefix string
	switch *stage {
	case "classifier":
		stream, prefix = pipeline.StreamTickets, "tickets"
	case "writer":
		stream, prefix = pipeline.StreamPredictions, "predictions"
	case "":
		return usagef(cmd, "replay: --stage is required (classifier or writer)")
	default:
		return usagef(cmd, "replay: unknown stage %q (want classifier or writer)", *stage)
	}
	if (*since == "") == (*fromSeq == 0) {
		return usagef(cmd, "replay: give exactly one of --since or --from-seq")
	}
	ro := pipeline.ReadOptions{Stream: stream, Subject: prefix + ".>", StartSeq: *fromSeq, StopSeq: *toSeq}
	if *account != "" {
		ro.Subject = prefix + ".*." + pipeline.Token(*account) + ".>"
	}
	if *since != "" {
		if ro.StartTime, err = parseTime(*since, time.Now()); err != nil {
			return usagef(cmd, "replay: --since: %v", err)
		}
	}
	conn, err := co.connectReady(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	out, err := replay(ctx, conn, *stage, ro, *dry, stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, out)
	}
	verb := "re-published"
	if out.DryRun {
		verb = "would re-publish"
	}
	fmt.Fprintf(stdout, "replay %s of %s (%s): %s %d of %d message(s)", out.Run, out.Stream, out.Filter, verb, out.Published, out.Matched)
	if out.Matched > 0 {
		fmt.Fprintf(stdout, ", seq %d..%d, %s..%s", out.FirstSeq, out.LastSeq, out.FirstTime.Format(time.RFC3339), out.LastTime.Format(time.RFC3339))
	}
	if out.Skipped > 0 {
		fmt.Fprintf(stdout, "; %d undecodable skipped", out.Skipped)
	}
	_, err = fmt.Fprintln(stdout)
	return err
}

func replay(ctx context.Context, conn *pipeline.Conn, stage string, ro pipeline.ReadOptions, dry bool, stderr io.Writer) (replayOutput, error) {
	run := "r" + strconv.FormatInt(time.Now().UnixMilli(), 36)
	out := replayOutput{Run: run, Stage: stage, Stream: ro.Stream, Filter: ro.Subject, DryRun: dry}
	rng, err := conn.CountRange(ctx, ro)
	if err != nil {
		return out, err
	}
	total := rng.Count
	prog := newProgress(stderr)
	start := time.Now()
	_, err = conn.Read(ctx, ro, func(m pipeline.RawMsg) error {
		out.Matched++
		if out.FirstSeq == 0 {
			out.FirstSeq, out.FirstTime = m.Sequence, m.Time.UTC()
		}
		out.LastSeq, out.LastTime = m.Sequence, m.Time.UTC()
		frac := float64(out.Matched) / float64(max(total, 1))
		prog.update("replay %s: %d/%d messages, ETA %s", run, out.Matched, total, eta(time.Since(start), frac))
		data := m.Data
		if stage == "classifier" {
			var t v1.Ticket
			if err := proto.Unmarshal(m.Data, &t); err != nil {
				out.Skipped++
				return nil
			}
			t.Arrival = v1.Arrival_ARRIVAL_REPLAY
			t.BatchId = run
			if data, err = proto.Marshal(&t); err != nil {
				return fmt.Errorf("encode ticket: %w", err)
			}
		}
		if dry {
			out.Published++
			return nil
		}
		h := map[string]string{HeaderReplay: run}
		for k, v := range m.Header {
			if len(v) > 0 && k != "Nats-Msg-Id" {
				h[k] = v[0]
			}
		}
		h[HeaderReplay] = run
		// A new attempt at each prediction: its outcomes supersede the
		// earlier ones (the classifier's replayed tickets carry the run as
		// their batch, which makes their predictions new ones already).
		h[pipeline.HeaderAttempt] = "replay:" + run
		if _, err := conn.Publish(ctx, pipeline.OutMsg{Subject: m.Subject, ID: fmt.Sprintf("replay:%s:%d", run, m.Sequence), Data: data, Header: h}); err != nil {
			return err
		}
		out.Published++
		return nil
	})
	prog.done("replay %s: %d message(s) read, %d %s", run, out.Matched, out.Published, map[bool]string{true: "counted", false: "re-published"}[dry])
	if err != nil {
		return out, fmt.Errorf("replay stopped after %d message(s): %w", out.Published, err)
	}
	return out, nil
}
