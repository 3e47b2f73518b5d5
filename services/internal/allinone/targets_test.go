package allinone_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/allinone"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/natsserver"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
)

// externalConfig is up against the real-account simulator ra and an
// external server: its own data directory, free ports, extra variables
// (the broker identity) on top.
func (ra *realAccount) externalConfig(t *testing.T, extra map[string]string) allinone.Config {
	t.Helper()
	env := map[string]string{
		"AUTOTRIAGE_DATA_DIR":              t.TempDir(),
		"AUTOTRIAGE_WEBHOOK_ADDR":          "127.0.0.1:0",
		"AUTOTRIAGE_DEBUG_ADDR":            "127.0.0.1:0",
		"AUTOTRIAGE_WEBHOOK_SECRET":        "0123456789abcdef-test-secret",
		"AUTOTRIAGE_FETCHER_POLL_INTERVAL": "300ms",
		"AUTOTRIAGE_SUMMARY_EVERY":         "500ms",
		"AUTOTRIAGE_SHUTDOWN_TIMEOUT":      shutdownBudget.String(),
		"AUTOTRIAGE_NATS_CONNECT_WAIT":     "10s",
		"FRESHDESK_BASE_URL":               ra.url,
		"FRESHDESK_API_KEY":                "sim-admin-key",
		"AUTOTRIAGE_POLICY":                "group=apply:0.01,priority=shadow,type=shadow,tags=shadow",
	}
	for k, v := range extra {
		env[k] = v
	}
	return loadUp(t, env)
}

// `autotriage up --targets writer --nats URL` is the writer stage alone
// against a server it does not own: no embedded server, no simulator, no
// model. A prediction published to PREDICTIONS is written to the helpdesk
// and its outcome lands in OUTCOMES. Against the shipped authorization the
// writer connects with the writer's seed and does nothing its role may not.
func TestUpWriterTargetAgainstAnExternalServer(t *testing.T) {
	for _, auth := range []bool{false, true} {
		name := "open"
		if auth {
			name = "authenticated"
		}
		t.Run(name, func(t *testing.T) {
			ra := startRealAccount(t)
			var srv *natsserver.Server
			var admin *pipeline.Conn
			extra := map[string]string{}
			if auth {
				as := natstest.StartAuth(t, "")
				srv = as.Server
				extra["NATS_NKEY_FILE"] = as.SeedFile(pipeline.RoleWriter)
				admin = as.ConnectAs(t, pipeline.RoleAdmin, pipeline.Topology{})
			} else {
				srv = natstest.Start(t)
				admin = natstest.Connect(t, srv, pipeline.Topology{})
			}
			cfg := ra.externalConfig(t, extra)
			r := startUp(t, cfg, allinone.Options{PolicyExplicit: true, Targets: []string{"writer"}, NATS: srv.URL()})
			addrs := r.waitReady(t)
			if addrs.NATS != srv.URL() || addrs.Sim != nil {
				t.Errorf("up reports NATS %q and a simulator %v; want the external server and none", addrs.NATS, addrs.Sim)
			}
			for _, l := range []string{"nats", "freshdesk-sim", "webhook"} {
				if a, ok := addrs.Listeners[l]; ok {
					t.Errorf("the writer target alone listens as %s on %s", l, a)
				}
			}

			id, err := ra.sim.AddTicket(freshdesksim.NewTicket{Subject: "Invoice twice", Description: "I was charged twice this month."})
			if err != nil {
				t.Fatal(err)
			}
			tk, _ := ra.sim.Ticket(id)
			billing, ok := ra.sim.GroupID("Billing")
			if !ok {
				t.Fatal("the simulator has no Billing group")
			}
			p := &v1.Prediction{
				System: "freshdesk", Account: cfg.Freshdesk.AccountName(), TicketId: id, TicketUpdatedAt: timestamppb.New(tk.UpdatedAt),
				Ticket: &v1.Ticket{System: "freshdesk", Account: cfg.Freshdesk.AccountName(), Id: id, Subject: tk.Subject, DescriptionText: tk.DescriptionText,
					Tags: tk.Tags, Type: tk.Type, GroupId: tk.GroupID, Priority: int32(tk.Priority), Status: int32(tk.Status), Source: int32(tk.Source),
					RequesterId: tk.RequesterID, CreatedAt: timestamppb.New(tk.CreatedAt), UpdatedAt: timestamppb.New(tk.UpdatedAt),
					Arrival: v1.Arrival_ARRIVAL_POLL, FetchedAt: timestamppb.Now()},
				ModelId: "model-0123456789abcdef0123", ModelVersion: "test",
				Fields: []*v1.FieldPrediction{{Field: "group", Decision: v1.Decision_DECISION_APPLY, Label: "Billing", Confidence: 0.95, Threshold: 0.5,
					TopK: []*v1.LabelScore{{Label: "Billing", Probability: 0.95}}}},
				PredictedAt: timestamppb.Now(),
			}
			b, err := proto.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := admin.Publish(ctx, pipeline.OutMsg{Subject: pipeline.PredictionSubject(p.System, p.Account, id), ID: "test-prediction-1", Data: b}); err != nil {
				t.Fatal(err)
			}
			var out *v1.Outcome
			for deadline := time.Now().Add(90 * time.Second); out == nil; {
				out = outcomeOf(ctx, t, admin, id)
				if time.Now().After(deadline) {
					t.Fatalf("no outcome for ticket %d:\n%s", id, r.out.String())
				}
				if out == nil {
					time.Sleep(100 * time.Millisecond)
				}
			}
			tk, _ = ra.sim.Ticket(id)
			if tk.GroupID != billing || !containsTag(tk.Tags, "autotriage") {
				t.Errorf("ticket %d after the outcome: group %d (Billing is %d), tags %v", id, tk.GroupID, billing, tk.Tags)
			}
			stopped := time.Now()
			if err := r.stop(t); err != nil {
				t.Fatalf("up returned %v", err)
			}
			if took := time.Since(stopped); took > shutdownBudget+shutdownSlack {
				t.Errorf("up --targets writer took %s to stop, budget %s", took, shutdownBudget)
			} else {
				t.Logf("stopped in %s", took.Round(time.Millisecond))
			}
			if v := srv.Violations(); len(v) > 0 {
				t.Errorf("the writer target did what its role may not: %v", v)
			}
		})
	}
}

// outcomeOf is the first outcome of ticket id in OUTCOMES, or nil.
func outcomeOf(ctx context.Context, t *testing.T, c *pipeline.Conn, id int64) *v1.Outcome {
	t.Helper()
	ss, err := c.StreamStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range ss {
		if st.Name != pipeline.StreamOutcomes {
			continue
		}
		for seq := uint64(1); seq <= st.Messages; seq++ {
			raw, err := c.GetMsg(ctx, pipeline.StreamOutcomes, seq)
			if err != nil {
				continue
			}
			var o v1.Outcome
			if err := proto.Unmarshal(raw.Data, &o); err == nil && o.TicketId == id {
				return &o
			}
		}
	}
	return nil
}

// Two `up` processes against one authenticated external server split the
// pipeline: `--targets writer,trainer` (the trainer trains the starter
// model on the account's history) and `--targets fetcher,classifier`.
// Each process connects once per target with that role's seed from
// AUTOTRIAGE_NATS_NKEY_DIR; a ticket created in the helpdesk is fetched,
// classified and written, and no identity does what its role may not.
func TestUpTargetsSplitAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model and runs every stage")
	}
	ra := startRealAccount(t)
	srv := natstest.StartAuth(t, "")
	ids := map[string]string{"AUTOTRIAGE_NATS_NKEY_DIR": srv.KeysDir}

	back := startUp(t, ra.externalConfig(t, ids), allinone.Options{PolicyExplicit: true, TrainFromHistory: true,
		Targets: []string{"writer", "trainer"}, NATS: srv.URL()})
	back.waitReady(t)
	if out := back.out.String(); !strings.Contains(out, "trained on") {
		t.Errorf("the trainer target trained no starter model:\n%s", out)
	}
	front := startUp(t, ra.externalConfig(t, ids), allinone.Options{PolicyExplicit: true,
		Targets: []string{"classifier", "fetcher"}, NATS: srv.URL()})
	addrs := front.waitReady(t)
	if _, ok := addrs.Listeners["webhook"]; !ok {
		t.Errorf("the fetcher target serves no webhooks: %v", addrs.Listeners)
	}

	fresh, err := ra.sim.AddTicket(freshdesksim.NewTicket{Subject: "Invoice twice", Description: "I was charged twice for my subscription this month, please refund one payment."})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(90 * time.Second); ; {
		if tk, _ := ra.sim.Ticket(fresh); containsTag(tk.Tags, "autotriage") && tk.GroupID != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new ticket was not triaged:\nfront:\n%s\nback:\n%s", front.out.String(), back.out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := front.stop(t); err != nil {
		t.Fatalf("up --targets classifier,fetcher returned %v", err)
	}
	if err := back.stop(t); err != nil {
		t.Fatalf("up --targets writer,trainer returned %v", err)
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("a target did what its role may not: %v", v)
	}
}

// A bad --targets is a configuration error (exit code 2) that names the
// flag and the targets there are, before anything starts.
func TestUpRejectsBadTargets(t *testing.T) {
	for _, args := range [][]string{
		{"--targets", "fetcher,bogus"},
		{"--targets=console"},
		{"--targets", ","},
		{"--targets"},
		{"--nats"},
	} {
		var out bytes.Buffer
		err := allinone.Run(context.Background(), args, &out, io.Discard)
		var ce *platform.ConfigError
		if !errors.As(err, &ce) || !strings.HasPrefix(ce.Var, "--") || !strings.HasPrefix(args[0], ce.Var) {
			t.Errorf("up %v: %v, want a configuration error naming the flag", args, err)
			continue
		}
		if strings.HasPrefix(args[0], allinone.FlagTargets) && len(args) > 1 && !strings.Contains(ce.Msg, "fetcher, classifier, writer, trainer") {
			t.Errorf("up %v: %q does not list the targets", args, ce.Msg)
		}
		if code := platform.ExitCode(err, io.Discard, "autotriage"); code != platform.ExitConfig {
			t.Errorf("up %v: exit code %d, want %d", args, code, platform.ExitConfig)
		}
	}
}

// --help lists what the chosen targets read: the writer against an
// external server reads the connection and its own settings, not the
// simulator's, the embedded server's or another stage's.
func TestUpHelpListsWhatTheTargetsRead(t *testing.T) {
	var out bytes.Buffer
	err := allinone.Run(context.Background(), []string{"--targets", "writer", "--nats", "nats://127.0.0.1:1", "--help"}, &out, io.Discard)
	if !errors.Is(err, platform.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	help := out.String()
	for _, want := range []string{"NATS_NKEY_FILE", "AUTOTRIAGE_NATS_NKEY_DIR", "AUTOTRIAGE_WRITER_CONCURRENCY", "FRESHDESK_API_KEY", "AUTOTRIAGE_SHUTDOWN_TIMEOUT"} {
		if !strings.Contains(help, want+" ") {
			t.Errorf("help lacks %s:\n%s", want, help)
		}
	}
	for _, unwanted := range []string{"AUTOTRIAGE_SIM_HISTORY", "AUTOTRIAGE_FETCHER_POLL_INTERVAL", "AUTOTRIAGE_CLASSIFIER_CONCURRENCY", "AUTOTRIAGE_TRAINER_INTERVAL", "AUTOTRIAGE_SIM_SEED"} {
		if strings.Contains(help, unwanted+" ") {
			t.Errorf("help lists %s:\n%s", unwanted, help)
		}
	}
}

// `--targets` without `--nats` is the embedded server as without flags,
// running only the chosen targets: the fetcher alone reads the simulator's
// tickets into TICKETS, and nothing trains a model (that is the trainer's).
func TestUpTargetsOnTheEmbeddedServer(t *testing.T) {
	cfg := config(t)
	r := startUp(t, cfg, allinone.Options{Targets: []string{"fetcher"}})
	addrs := r.waitReady(t)
	for _, l := range []string{"nats", "freshdesk-sim", "webhook", "debug"} {
		if _, ok := addrs.Listeners[l]; !ok {
			t.Errorf("no %s listener: %v", l, addrs.Listeners)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pipeline.Connect(ctx, pipeline.Config{URL: addrs.NATS, ConnectWait: 5 * time.Second}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for deadline := time.Now().Add(90 * time.Second); ; {
		ss, err := c.StreamStats(ctx)
		if err == nil && len(ss) > 0 && ss[0].Name == pipeline.StreamTickets && ss[0].Messages > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fetcher target published no ticket (%v, %v):\n%s", ss, err, r.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("up returned %v", err)
	}
	if out := r.out.String(); strings.Contains(out, "trained on") || strings.Contains(out, "model:") || !strings.Contains(out, "lag classifier -, writer -") {
		t.Errorf("up --targets fetcher trained a model or counts lag of stages it does not run:\n%s", out)
	}
}
