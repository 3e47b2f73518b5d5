package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// result is one CLI invocation.
type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	err := Run(ctx, args, &out, &errb)
	code := ExitCode(err, &errb)
	return result{out.String(), errb.String(), code}
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	r := run(t, args...)
	if r.code != 0 {
		t.Fatalf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// lastLine is the error line ExitCode printed.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// pipelineEnv starts NATS with the pipeline's topology and returns a
// connection for setting up and checking state, and the URL for --nats.
func pipelineEnv(t *testing.T) (*pipeline.Conn, string) {
	t.Helper()
	srv := natstest.Start(t)
	return natstest.Connect(t, srv, pipeline.Topology{}), srv.URL()
}

// writeDataset writes a small, well separated labelled dataset.
func writeDataset(t *testing.T, path string, n int, seed uint64) {
	t.Helper()
	type row struct {
		ID       string   `json:"id"`
		Subject  string   `json:"subject"`
		Body     string   `json:"body"`
		Group    string   `json:"group"`
		Priority string   `json:"priority"`
		Type     string   `json:"type"`
		Tags     []string `json:"tags"`
	}
	topics := []struct {
		group, prio, typ, tag string
		words                 []string
	}{
		{"Billing", "Medium", "Question", "invoice", []string{"invoice", "refund", "charge", "payment", "card", "billing", "receipt"}},
		{"Access", "High", "Incident", "login", []string{"password", "login", "locked", "account", "reset", "sso", "token"}},
		{"Hardware", "Low", "Problem", "laptop", []string{"laptop", "screen", "keyboard", "battery", "monitor", "printer", "dock"}},
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for i := range n {
		tp := topics[i%len(topics)]
		w := func() string { return tp.words[rng.IntN(len(tp.words))] }
		r := row{ID: fmt.Sprint(i), Subject: w() + " " + w(), Body: fmt.Sprintf("hello, my %s and %s need help with %s today", w(), w(), w()),
			Group: tp.group, Priority: tp.prio, Type: tp.typ, Tags: []string{tp.tag}}
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func validSVG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: invalid XML: %v", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Fatalf("%s: root %q, want svg", path, root)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "no subcommand"},
		{[]string{"frobnicate"}, `unknown subcommand "frobnicate"`},
		{[]string{"--nats", "x"}, "flags go after the subcommand"},
		{[]string{"status", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"train", "--out", "m"}, "exactly one of --data FILE or --from-helpdesk"},
		{[]string{"eval", "--model", "m"}, "--data is required"},
		{[]string{"replay", "--stage", "writer"}, "exactly one of --since or --from-seq"},
		{[]string{"replay", "--stage", "nope", "--from-seq", "1"}, `unknown stage "nope"`},
		{[]string{"dlq", "purge"}, "--yes"},
		{[]string{"dlq", "show", "abc"}, "not a sequence number"},
		{[]string{"models", "promote"}, "want 1 argument"},
		{[]string{"classify"}, "no text given"},
		{[]string{"classify", "--policy", "group=yolo", "text"}, "unknown mode"},
		{[]string{"backfill"}, "--from is required"},
	}
	for _, c := range cases {
		r := run(t, c.args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", c.args, r.code, r.stderr)
			continue
		}
		line := lastLine(r.stderr)
		if !strings.HasPrefix(line, "autotriage: ") || !strings.Contains(line, c.want) {
			t.Errorf("%v: error line %q, want it to contain %q", c.args, line, c.want)
		}
		if c.args != nil && strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: want exactly one line on stderr, got %q", c.args, r.stderr)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	out := mustRun(t, "--help")
	for _, sub := range []string{"train", "eval", "models", "classify", "status", "replay", "backfill", "dlq", "version"} {
		if !strings.Contains(out, "  "+sub+" ") {
			t.Errorf("--help does not list %s", sub)
		}
	}
	for _, sub := range []string{"train", "eval", "models", "classify", "status", "replay", "backfill", "dlq", "version"} {
		r := run(t, sub, "--help")
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: autotriage "+sub) || r.stderr != "" {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", sub, r.code, r.stdout, r.stderr)
		}
	}
	if out := mustRun(t, "version"); !strings.HasPrefix(out, "autotriage ") {
		t.Errorf("version: %q", out)
	}
	var bi map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, "version", "--json")), &bi); err != nil || bi["go_version"] == "" {
		t.Errorf("version --json: %v %v", bi, err)
	}
}

func TestRegisterHook(t *testing.T) {
	Register("test-hook", "a subcommand registered by another package", func(_ context.Context, args []string, stdout, _ io.Writer) error {
		_, err := fmt.Fprintf(stdout, "hook %v", args)
		return err
	})
	if out := mustRun(t, "test-hook", "a", "b"); out != "hook [a b]" {
		t.Fatalf("hook output %q", out)
	}
	defer func() {
		if recover() == nil {
			t.Error("duplicate Register did not panic")
		}
	}()
	Register("test-hook", "again", nil)
}

func TestUnreachableNATS(t *testing.T) {
	for _, args := range [][]string{
		{"status"}, {"dlq", "list"}, {"models", "list"}, {"replay", "--stage", "classifier", "--from-seq", "1"},
	} {
		args = append(args, "--nats", "nats://127.0.0.1:1", "--connect-wait", "100ms")
		r := run(t, args...)
		if r.code != 1 {
			t.Errorf("%v: exit %d, want 1", args, r.code)
		}
		if strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "cannot reach NATS") {
			t.Errorf("%v: stderr %q, want one line about NATS", args, r.stderr)
		}
	}
}

func TestNoTopology(t *testing.T) {
	srv := natstest.Start(t)
	r := run(t, "status", "--nats", srv.URL())
	if r.code != 1 || !strings.Contains(r.stderr, "streams do not exist") {
		t.Fatalf("status on an empty server: %+v", r)
	}
}

func TestTrainEvalClassifyModels(t *testing.T) {
	_, url := pipelineEnv(t)
	dir := t.TempDir()
	train, test, other := filepath.Join(dir, "train.jsonl"), filepath.Join(dir, "test.jsonl"), filepath.Join(dir, "other.jsonl")
	writeDataset(t, train, 90, 1)
	writeDataset(t, test, 30, 2)
	writeDataset(t, other, 60, 3)
	model := filepath.Join(dir, "model.bin")

	out := mustRun(t, "train", "--data", train, "--out", model, "--seed", "7", "--folds", "2")
	if !strings.Contains(out, "trained on 90 tickets") || !strings.Contains(out, "group") {
		t.Fatalf("train output:\n%s", out)
	}
	if _, err := os.Stat(model); err != nil {
		t.Fatal(err)
	}

	plots := filepath.Join(dir, "plots")
	var ev evalOutput
	if err := json.Unmarshal([]byte(mustRun(t, "eval", "--model", model, "--data", test, "--json", "--plots", plots)), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Examples != 30 || len(ev.Fields) == 0 {
		t.Fatalf("eval: %+v", ev)
	}
	g := ev.Fields[0]
	if g.Field != "group" || g.Accuracy < 0.9 || len(g.Classes) != 3 || len(g.CoverageTable) != len(precisionTargets) {
		t.Fatalf("eval group: %+v", g.FieldReport)
	}
	for _, name := range []string{"group-coverage.svg", "group-confusion.svg", "group-reliability.svg", "tags-coverage.svg"} {
		validSVG(t, filepath.Join(plots, name))
	}
	text := mustRun(t, "eval", "--model", model, "--data", test)
	for _, want := range []string{"accuracy", "macro-F1", "coverage at precision", "Billing", "ECE"} {
		if !strings.Contains(text, want) {
			t.Errorf("eval text lacks %q:\n%s", want, text)
		}
	}

	out = mustRun(t, "classify", "--model", model, "--policy", "group=apply:0.5,priority=suggest", "my invoice shows a double charge on my card")
	if !strings.Contains(out, "Billing") || !strings.Contains(out, "apply") || !strings.Contains(out, "suggest") {
		t.Fatalf("classify output:\n%s", out)
	}
	// Explained: the terms per field and three similar training tickets
	// (the dataset's ids are numeric, so they read as ticket ids).
	if !strings.Contains(out, "because of: ") || !strings.Contains(out, "similar tickets of the training history:") ||
		strings.Count(out, "(group Billing") < 2 {
		t.Fatalf("classify explanation:\n%s", out)
	}
	var co classifyOutput
	if err := json.Unmarshal([]byte(mustRun(t, "classify", "--model", model, "--json", "my invoice shows a double charge on my card")), &co); err != nil {
		t.Fatal(err)
	}
	if len(co.Similar) != 3 || co.Similar[0].Labels["group"] != "Billing" || co.Similar[0].Similarity <= 0 ||
		len(co.Fields) == 0 || len(co.Fields[0].Terms) == 0 || !strings.Contains("my invoice shows a double charge on my card", co.Fields[0].Terms[0].Text) {
		t.Fatalf("classify --json explanation: %+v", co)
	}

	// --promote stores and promotes; a second run skips training.
	out = mustRun(t, "train", "--data", train, "--promote", "--nats", url, "--folds", "2")
	if !strings.Contains(out, "stored and promoted") {
		t.Fatalf("train --promote:\n%s", out)
	}
	out = mustRun(t, "train", "--data", train, "--promote", "--nats", url)
	if !strings.Contains(out, "already promoted; not retraining") {
		t.Fatalf("second train --promote:\n%s", out)
	}
	var first []struct {
		ID       string `json:"id"`
		Promoted bool   `json:"promoted"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "models", "list", "--json", "--nats", url)), &first); err != nil || len(first) != 1 || !first[0].Promoted {
		t.Fatalf("models list: %+v %v", first, err)
	}
	// A second model: pushed, promoted by prefix, then rolled back.
	model2 := filepath.Join(dir, "model2.bin")
	mustRun(t, "train", "--data", other, "--out", model2, "--folds", "1")
	out = mustRun(t, "models", "push", model2, "--nats", url)
	if !strings.Contains(out, "stored model") {
		t.Fatalf("push: %s", out)
	}
	var second []struct {
		ID       string `json:"id"`
		Promoted bool   `json:"promoted"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "models", "list", "--json", "--nats", url)), &second); err != nil || len(second) != 2 {
		t.Fatalf("models list after push: %+v %v", second, err)
	}
	newID := second[0].ID
	if newID == first[0].ID {
		newID = second[1].ID
	}
	out = mustRun(t, "models", "promote", newID[:10], "--nats", url)
	if !strings.Contains(out, "promoted model "+newID[:12]) {
		t.Fatalf("promote: %s", out)
	}
	if out := mustRun(t, "classify", "--nats", url, "--json", "--subject", "locked out", "--body", "password reset please"); !strings.Contains(out, newID) {
		t.Fatalf("classify with the promoted model:\n%s", out)
	}
	out = mustRun(t, "models", "rollback", "--nats", url)
	if !strings.Contains(out, "rolled back to model "+first[0].ID[:12]) {
		t.Fatalf("rollback: %s", out)
	}
	if out := mustRun(t, "models", "history", "--nats", url); strings.Count(out, "\n") != 4 {
		t.Fatalf("history:\n%s", out)
	}
	if r := run(t, "models", "promote", "ffffff", "--nats", url); r.code != 1 || !strings.Contains(r.stderr, "no stored model") {
		t.Fatalf("promote unknown: %+v", r)
	}
}

func ticketMsg(t *testing.T, id int64, batch string) []byte {
	t.Helper()
	b, err := proto.Marshal(&v1.Ticket{System: "freshdesk", Account: "acme", Id: id, Subject: fmt.Sprint("ticket ", id),
		UpdatedAt: timestamppb.New(time.Unix(1700000000+id, 0)), Arrival: v1.Arrival_ARRIVAL_POLL, BatchId: batch})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func publishT(t *testing.T, c *pipeline.Conn, m pipeline.OutMsg) pipeline.PubAck {
	t.Helper()
	ack, err := c.Publish(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

func TestStatus(t *testing.T) {
	c, url := pipelineEnv(t)
	for i := int64(1); i <= 3; i++ {
		publishT(t, c, pipeline.OutMsg{Subject: pipeline.TicketSubject("freshdesk", "acme", i), ID: fmt.Sprint("t", i), Data: ticketMsg(t, i, "")})
	}
	publishT(t, c, pipeline.OutMsg{Subject: pipeline.DLQSubject("classifier", "acme"), ID: "d1", Data: []byte("x")})
	publishT(t, c, pipeline.OutMsg{Subject: pipeline.DLQSubject("writer", "acme"), ID: "d2", Data: []byte("x")})
	publishT(t, c, pipeline.OutMsg{Subject: pipeline.DLQSubject("writer", "beta"), ID: "d3", Data: []byte("x")})
	kv, err := c.KV(context.Background(), pipeline.BucketFetcher)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), "cursor.freshdesk.acme", []byte(`{"updated_since":"2024-05-01T00:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), "lease.freshdesk.acme", []byte(`{"holder":"fetcher-1"}`)); err != nil {
		t.Fatal(err)
	}

	var st statusOutput
	if err := json.Unmarshal([]byte(mustRun(t, "status", "--json", "--nats", url)), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Streams) != 4 || st.Streams[0].Name != "TICKETS" || st.Streams[0].Messages != 3 || st.Streams[3].Messages != 3 {
		t.Fatalf("streams: %+v", st.Streams)
	}
	if fmt.Sprint(st.DLQ) != "[{classifier 1} {writer 2}]" {
		t.Fatalf("dlq depth: %v", st.DLQ)
	}
	if len(st.Consumers) != 2 || st.Consumers[0].Pending != 3 {
		t.Fatalf("consumers: %+v", st.Consumers)
	}
	if len(st.Fetcher) != 2 || !strings.Contains(string(st.Fetcher[0].Value), "2024-05-01") {
		t.Fatalf("fetcher: %+v", st.Fetcher)
	}
	if !strings.Contains(st.Model.Error, "no model promoted") {
		t.Fatalf("model: %+v", st.Model)
	}
	text := mustRun(t, "status", "--nats", url)
	for _, want := range []string{"TICKETS", "classifier", "DLQ: classifier 1, writer 2", "cursor.freshdesk.acme", "no model promoted"} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
}

func TestStatusWithHelpdesk(t *testing.T) {
	_, url := pipelineEnv(t)
	sim, err := freshdesksim.New(freshdesksim.Config{Plan: "pro"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	t.Setenv("FRESHDESK_BASE_URL", hs.URL)
	t.Setenv("FRESHDESK_API_KEY", "sim-admin-key")
	out := mustRun(t, "status", "--nats", url)
	if !strings.Contains(out, "API credits left this minute") {
		t.Fatalf("status lacks the helpdesk headroom:\n%s", out)
	}
	if strings.Contains(out, "sim-admin-key") {
		t.Fatal("API key printed")
	}
}

func TestReplay(t *testing.T) {
	c, url := pipelineEnv(t)
	for i := int64(1); i <= 5; i++ {
		publishT(t, c, pipeline.OutMsg{Subject: pipeline.TicketSubject("freshdesk", "acme", i), ID: fmt.Sprint("t", i), Data: ticketMsg(t, i, "")})
	}
	publishT(t, c, pipeline.OutMsg{Subject: pipeline.TicketSubject("freshdesk", "other", 9), ID: "o9", Data: ticketMsg(t, 9, "")})
	for i := int64(1); i <= 2; i++ {
		publishT(t, c, pipeline.OutMsg{Subject: pipeline.PredictionSubject("freshdesk", "acme", i), ID: fmt.Sprint("p", i), Data: []byte("pred")})
	}

	var dry replayOutput
	if err := json.Unmarshal([]byte(mustRun(t, "replay", "--stage", "classifier", "--from-seq", "2", "--account", "acme", "--dry-run", "--json", "--nats", url)), &dry); err != nil {
		t.Fatal(err)
	}
	if dry.Matched != 4 || dry.Published != 4 || !dry.DryRun {
		t.Fatalf("dry run: %+v", dry)
	}
	counts := func(stream string) uint64 {
		ss, err := c.StreamStats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			if s.Name == stream {
				return s.Messages
			}
		}
		return 0
	}
	if n := counts("TICKETS"); n != 6 {
		t.Fatalf("dry run published: %d messages", n)
	}

	out := mustRun(t, "replay", "--stage", "classifier", "--since", "1h", "--nats", url)
	if !strings.Contains(out, "re-published 6 of 6") {
		t.Fatalf("replay: %s", out)
	}
	if n := counts("TICKETS"); n != 12 {
		t.Fatalf("after replay: %d messages, want 12", n)
	}
	m, err := c.GetMsg(context.Background(), "TICKETS", 7)
	if err != nil {
		t.Fatal(err)
	}
	var tk v1.Ticket
	if err := proto.Unmarshal(m.Data, &tk); err != nil || tk.Arrival != v1.Arrival_ARRIVAL_REPLAY || !strings.HasPrefix(tk.BatchId, "r") || tk.Id != 1 {
		t.Fatalf("replayed ticket: %v %v", &tk, err)
	}
	if id := m.Header["Nats-Msg-Id"]; len(id) != 1 || !strings.HasPrefix(id[0], "replay:"+tk.BatchId+":1") {
		t.Fatalf("replayed message id: %v", m.Header)
	}

	out = mustRun(t, "replay", "--stage", "writer", "--from-seq", "1", "--nats", url)
	if !strings.Contains(out, "re-published 2 of 2") || counts("PREDICTIONS") != 4 {
		t.Fatalf("writer replay: %s", out)
	}
}

// deadLetter stores a DLQ message the way the pipeline does.
func deadLetter(t *testing.T, c *pipeline.Conn, stage, origSubj string, origSeq int, data []byte) uint64 {
	t.Helper()
	h := map[string]string{
		pipeline.HeaderStage: stage, pipeline.HeaderError: "boom\nsecond line", pipeline.HeaderDeliveries: "3",
		pipeline.HeaderOriginalStream: "TICKETS", pipeline.HeaderOriginalSeq: fmt.Sprint(origSeq), pipeline.HeaderOriginalSubj: origSubj,
		pipeline.HeaderContentType: pipeline.ContentTypeProtobuf,
	}
	if origSubj == "" {
		delete(h, pipeline.HeaderOriginalSubj)
		delete(h, pipeline.HeaderOriginalStream)
	}
	return publishT(t, c, pipeline.OutMsg{Subject: pipeline.DLQSubject(stage, "acme"), ID: fmt.Sprintf("dlq:%s:%d", stage, origSeq), Data: data, Header: h}).Sequence
}

func TestDLQ(t *testing.T) {
	c, url := pipelineEnv(t)
	s1 := deadLetter(t, c, "classifier", pipeline.TicketSubject("freshdesk", "acme", 1), 1, ticketMsg(t, 1, ""))
	s2 := deadLetter(t, c, "classifier", pipeline.TicketSubject("freshdesk", "acme", 2), 2, ticketMsg(t, 2, ""))
	s3 := deadLetter(t, c, "writer", pipeline.TicketSubject("freshdesk", "acme", 3), 3, ticketMsg(t, 3, ""))
	s4 := deadLetter(t, c, "fetcher", "", 4, []byte(`{"bad":"webhook"}`))

	var list []dlqEntry
	if err := json.Unmarshal([]byte(mustRun(t, "dlq", "list", "--json", "--nats", url)), &list); err != nil || len(list) != 4 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := json.Unmarshal([]byte(mustRun(t, "dlq", "list", "--stage", "classifier", "--json", "--nats", url)), &list); err != nil || len(list) != 2 || list[0].Seq != s1 {
		t.Fatalf("list classifier: %+v %v", list, err)
	}
	text := mustRun(t, "dlq", "list", "--nats", url)
	if !strings.Contains(text, "boom second line") || !strings.Contains(text, "(raw input)") {
		t.Fatalf("list text:\n%s", text)
	}
	show := mustRun(t, "dlq", "show", fmt.Sprint(s2), "--nats", url)
	if !strings.Contains(show, "autotriage.v1.Ticket") || !strings.Contains(show, `"ticket 2"`) || !strings.Contains(show, "Autotriage-Error: boom") {
		t.Fatalf("show:\n%s", show)
	}
	if r := run(t, "dlq", "show", "999", "--nats", url); r.code != 1 || !strings.Contains(r.stderr, "no dead letter with sequence 999") {
		t.Fatalf("show missing: %+v", r)
	}

	out := mustRun(t, "dlq", "retry", fmt.Sprint(s1), "--nats", url)
	if !strings.Contains(out, "re-published to tickets.freshdesk.acme.1") {
		t.Fatalf("retry: %s", out)
	}
	if _, err := c.GetMsg(context.Background(), "DLQ", s1); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("retried dead letter still there: %v", err)
	}
	m, err := c.GetMsg(context.Background(), "TICKETS", 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "tickets.freshdesk.acme.1" || len(m.Header[pipeline.HeaderError]) != 0 || m.Header[pipeline.HeaderContentType][0] != pipeline.ContentTypeProtobuf {
		t.Fatalf("retried message: %s %v", m.Subject, m.Header)
	}

	// --all of a stage; the raw one cannot be retried and says so.
	out = mustRun(t, "dlq", "retry", "--all", "--stage", "classifier", "--nats", url)
	if !strings.Contains(out, "1 retried, 0 failed") {
		t.Fatalf("retry --all: %s", out)
	}
	r := run(t, "dlq", "retry", fmt.Sprint(s4), "--nats", url)
	if r.code != 1 || !strings.Contains(r.stdout, "cannot be retried") {
		t.Fatalf("retry raw: %+v", r)
	}

	out = mustRun(t, "dlq", "purge", "--stage", "writer", "--yes", "--nats", url)
	if !strings.Contains(out, "purged 1 dead letter") {
		t.Fatalf("purge: %s", out)
	}
	if _, err := c.GetMsg(context.Background(), "DLQ", s3); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatal("purged dead letter still there")
	}
	out = mustRun(t, "dlq", "purge", "--yes", "--nats", url)
	if !strings.Contains(out, "purged 1 dead letter") {
		t.Fatalf("purge all: %s", out)
	}
	if out := mustRun(t, "dlq", "list", "--nats", url); !strings.Contains(out, "no dead letters") {
		t.Fatalf("list after purge: %s", out)
	}
}

func outcomeMsg(t *testing.T, id int64, batch, group string, prio int32, predGroup string, conf float64) []byte {
	t.Helper()
	tk := &v1.Ticket{System: "freshdesk", Account: "acme", Id: id, GroupName: group, Priority: prio, BatchId: batch,
		UpdatedAt: timestamppb.New(time.Unix(1700000000+id, 0)), ShadowOnly: true, Tags: []string{"vpn"}}
	o := &v1.Outcome{System: "freshdesk", Account: "acme", TicketId: id, Kind: v1.OutcomeKind_OUTCOME_KIND_DECISION,
		Prediction: &v1.Prediction{Ticket: tk, ModelId: "abcdef0123456789", ModelVersion: "v1", Fields: []*v1.FieldPrediction{
			{Field: "group", Label: predGroup, Confidence: conf, Decision: v1.Decision_DECISION_SHADOW, TopK: []*v1.LabelScore{{Label: predGroup, Probability: conf}}},
			{Field: "priority", Label: "Low", Confidence: 0.7, Decision: v1.Decision_DECISION_SHADOW, TopK: []*v1.LabelScore{{Label: "Low", Probability: 0.7}}},
			{Field: "tags", Labels: []string{"vpn"}, Confidence: 0.9, Decision: v1.Decision_DECISION_SHADOW, TopK: []*v1.LabelScore{{Label: "vpn", Probability: 0.9}}},
		}}}
	b, err := proto.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBackfillReport(t *testing.T) {
	c, url := pipelineEnv(t)
	// 4 tickets of batch b1: groups right at high confidence, wrong at low;
	// one duplicate outcome and one of another batch are ignored.
	rows := []struct {
		id        int64
		group     string
		predicted string
		conf      float64
	}{{1, "Billing", "Billing", 0.95}, {2, "Access", "Access", 0.92}, {3, "Access", "Billing", 0.55}, {4, "Billing", "Billing", 0.81}}
	for _, r := range rows {
		publishT(t, c, pipeline.OutMsg{Subject: pipeline.OutcomeSubject("freshdesk", "acme", r.id), ID: fmt.Sprint("o", r.id),
			Data: outcomeMsg(t, r.id, "b1", r.group, 1, r.predicted, r.conf)})
	}
	publishT(t, c, pipeline.OutMsg{Subject: pipeline.OutcomeSubject("freshdesk", "acme", 1), ID: "dup",
		Data: outcomeMsg(t, 1, "b1", "Billing", 1, "Billing", 0.95)})
	publishT(t, c, pipeline.OutMsg{Subject: pipeline.OutcomeSubject("freshdesk", "acme", 7), ID: "other",
		Data: outcomeMsg(t, 7, "b2", "Billing", 1, "Access", 0.99)})

	var rep backfillReport
	if err := json.Unmarshal([]byte(mustRun(t, "backfill", "report", "--batch", "b1", "--since", "1h", "--json", "--thresholds", "0,0.8,0.9", "--nats", url)), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Outcomes != 4 || len(rep.Fields) != 3 {
		t.Fatalf("report: %+v", rep)
	}
	g := rep.Fields[0]
	if g.Field != "group" || g.N != 4 || g.Agree != 3 || g.Decisions["shadow"] != 4 {
		t.Fatalf("group: %+v", g)
	}
	want := []thresholdRow{{0, 4, 1, 0.75}, {0.8, 3, 0.75, 1}, {0.9, 2, 0.5, 1}}
	if fmt.Sprint(g.ByLevel) != fmt.Sprint(want) {
		t.Fatalf("group by threshold: %v, want %v", g.ByLevel, want)
	}
	if p := rep.Fields[1]; p.Field != "priority" || p.Agree != 4 {
		t.Fatalf("priority: %+v", p)
	}
	if tg := rep.Fields[2]; tg.Field != "tags" || tg.Agree != 4 {
		t.Fatalf("tags: %+v", tg)
	}
	text := mustRun(t, "backfill", "report", "--batch", "b1", "--nats", url)
	if !strings.Contains(text, "agreed with the agents on 3 of 4") {
		t.Fatalf("report text:\n%s", text)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2024, 5, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2024-05-01":           time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC),
		"2024-05-01T10:30":     time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC),
		"2024-05-01T10:30:00Z": time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC),
		"36h":                  now.Add(-36 * time.Hour),
		"7d":                   now.Add(-7 * 24 * time.Hour),
	} {
		got, err := parseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "-3h", "7x"} {
		if _, err := parseTime(bad, now); err == nil {
			t.Errorf("parseTime(%q) accepted", bad)
		}
	}
}

// simEnv serves a simulator with generated resolved history and points the
// FRESHDESK_* variables at it.
func simEnv(t *testing.T, history int) *freshdesksim.Sim {
	t.Helper()
	sim, err := freshdesksim.New(freshdesksim.Config{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if err := sim.Generate(freshdesksim.GenerateOptions{History: history, HistoryDays: 30}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	t.Setenv("FRESHDESK_BASE_URL", hs.URL)
	t.Setenv("FRESHDESK_API_KEY", "sim-admin-key")
	t.Setenv("FRESHDESK_DOMAIN", "")
	return sim
}

func TestTrainFromHelpdesk(t *testing.T) {
	_, url := pipelineEnv(t)
	simEnv(t, 150)
	var sum trainSummary
	r := run(t, "train", "--from-helpdesk", "--since", "40d", "--promote", "--folds", "2", "--json", "--nats", url)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if !sum.Promoted || sum.Examples < 100 || len(sum.Fields) < 3 {
		t.Fatalf("summary: %+v", sum)
	}
	if !strings.Contains(r.stderr, "helpdesk: ") || !strings.Contains(r.stderr, "pages") {
		t.Fatalf("no helpdesk progress on stderr: %q", r.stderr)
	}
	if out := mustRun(t, "train", "--from-helpdesk", "--promote", "--nats", url); !strings.Contains(out, "already promoted") {
		t.Fatalf("second run: %s", out)
	}
}

func TestBackfillRun(t *testing.T) {
	c, url := pipelineEnv(t)
	simEnv(t, 20)
	t.Setenv("AUTOTRIAGE_ACCOUNT", "sim")
	// No classifier or writer runs here: the tickets are published, then the
	// wait for outcomes gives up quickly and the report says none arrived.
	r := run(t, "backfill", "--from", "40d", "--batch", "bt", "--wait", "1s", "--idle", "1s", "--nats", url)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "backfill bt: 20 tickets, 20 published") || !strings.Contains(r.stdout, "no outcomes for this batch yet") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	n := 0
	if _, err := c.Read(context.Background(), pipeline.ReadOptions{Stream: pipeline.StreamTickets, Subject: "tickets.freshdesk.sim.>"}, func(m pipeline.RawMsg) error {
		var tk v1.Ticket
		if err := proto.Unmarshal(m.Data, &tk); err != nil || tk.BatchId != "bt" || !tk.ShadowOnly || tk.Arrival != v1.Arrival_ARRIVAL_BACKFILL {
			t.Errorf("backfilled ticket: %v %v", &tk, err)
		}
		n++
		return nil
	}); err != nil || n != 20 {
		t.Fatalf("read %d backfilled tickets: %v", n, err)
	}
}
