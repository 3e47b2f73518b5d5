// Package allinone runs the whole pipeline in one process for a machine
// without Docker (`autotriage up`, `make run`): an embedded JetStream server,
// the Freshdesk simulator unless a real account is configured, a starter
// model trained on the helpdesk's own history when none is promoted, and the
// fetcher, classifier, writer and trainer targets of package targets, the
// ones the separate binaries run. `--targets` runs a subset, `--nats` runs
// it against an external server (no embedded server, no simulator).
package allinone

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autotriage/autotriage/services/internal/fetcher"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/natsserver"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/service"
	"github.com/autotriage/autotriage/services/internal/targets"
	"github.com/autotriage/autotriage/services/internal/trainer"
	"github.com/autotriage/autotriage/services/internal/triage"
)

// Config is everything `autotriage up` reads from the environment: the
// configuration of every target (each run reads and validates only its
// parts), plus where the process keeps its data, where the embedded server
// listens and how the simulator behaves when no Freshdesk account is
// configured.
type Config struct {
	targets.Config
	Process
	Sim SimConfig
}

// Process is up's own settings.
type Process struct {
	DataDir  string        `env:"AUTOTRIAGE_DATA_DIR" envDefault:".autotriage" help:"directory of the embedded JetStream store and the log file"`
	NATSAddr string        `env:"AUTOTRIAGE_NATS_ADDR" envDefault:"127.0.0.1:4222" help:"where the embedded NATS server listens (port 0: any free port)"`
	Summary  time.Duration `env:"AUTOTRIAGE_SUMMARY_EVERY" envDefault:"2s" help:"how often the live summary is printed"`
}

// SimConfig shapes the simulated helpdesk used when FRESHDESK_DOMAIN and
// FRESHDESK_BASE_URL are unset.
type SimConfig struct {
	Addr        string  `env:"AUTOTRIAGE_SIM_ADDR" envDefault:"127.0.0.1:8089" help:"listen address of the Freshdesk simulator (without a real account)"`
	History     int     `env:"AUTOTRIAGE_SIM_HISTORY" envDefault:"2000" help:"resolved tickets the simulator starts with (the starter model learns from them)"`
	New         int     `env:"AUTOTRIAGE_SIM_NEW" envDefault:"20" help:"untriaged tickets waiting when the simulator starts"`
	ArrivalRate float64 `env:"AUTOTRIAGE_SIM_ARRIVAL_RATE" envDefault:"0.5" help:"new tickets per second arriving in the simulator"`
	Seed        int64   `env:"AUTOTRIAGE_SIM_SEED" envDefault:"1" help:"seed of the simulated helpdesk"`
}

// demoPolicy is used with the simulator when AUTOTRIAGE_POLICY is unset, so
// a first run shows fields being applied; a real account keeps the safe
// default (shadow everywhere) until the operator opts in.
const demoPolicy = "group=apply:p90,type=apply:p90,priority=suggest,tags=shadow"

// demoStart is the simulator demo's AUTOTRIAGE_FETCHER_START when it is
// unset: the simulator's waiting tickets were created within the last hour,
// and a real account's default ("now") would leave them untriaged.
const demoStart = "24h"

// Flags of `autotriage up`; configuration otherwise comes from the
// environment.
const (
	// FlagTrainFromHistory lets `autotriage up` against a real account
	// train its starter model on the helpdesk's history (which costs API
	// credits) when no model is promoted.
	FlagTrainFromHistory = "--train-from-history"
	// FlagTargets picks the targets to run (default: all).
	FlagTargets = "--targets"
	// FlagNATS names an external NATS server: no embedded server, no
	// simulator.
	FlagNATS = "--nats"
)

const summaryText = "the whole pipeline in one process (embedded JetStream; the Freshdesk simulator unless FRESHDESK_DOMAIN or FRESHDESK_BASE_URL is set); every listener on 127.0.0.1 unless its address is set. Against a real account with no model promoted, " + FlagTrainFromHistory + " trains the starter model on the last year of tickets (it states the API credits first; without the flag up stops there). " +
	FlagTargets + " fetcher,classifier,writer,trainer runs only those (the starter model and live precision are the trainer's); " + FlagNATS + " URL runs them against an external server instead (NATS_* settings; no simulator, FRESHDESK_* required). --help lists what the chosen targets read"

// Run is `autotriage up`.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg Config
	var rest []string
	o := Options{Stdout: stdout, Stderr: stderr}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == FlagTrainFromHistory || a == FlagTrainFromHistory[1:] {
			o.TrainFromHistory = true
			continue
		}
		name, value, hasValue := strings.Cut(a, "=")
		var flag string
		switch name {
		case FlagTargets, FlagTargets[1:]:
			flag = FlagTargets
		case FlagNATS, FlagNATS[1:]:
			flag = FlagNATS
		default:
			rest = append(rest, a)
			continue
		}
		if !hasValue {
			if i+1 == len(args) {
				return &platform.ConfigError{Var: flag, Msg: "needs a value"}
			}
			i++
			value = args[i]
		}
		if flag == FlagTargets {
			ts, err := targets.Parse(value, FlagTargets)
			if err != nil {
				return err
			}
			o.Targets = targets.NamesOf(ts)
		} else {
			if strings.TrimSpace(value) == "" {
				return &platform.ConfigError{Var: FlagNATS, Msg: "needs the URL of a NATS server"}
			}
			o.NATS = value
		}
	}
	ts, err := o.targets()
	if err != nil {
		return err
	}
	if err := targets.Load(parts(&cfg, ts, o.NATS != ""), rest, "autotriage up", summaryText, stdout, nil); err != nil {
		return err
	}
	_, o.PolicyExplicit = os.LookupEnv("AUTOTRIAGE_POLICY")
	_, o.StartExplicit = os.LookupEnv("AUTOTRIAGE_FETCHER_START")
	return Start(ctx, cfg, o)
}

// parts is what up reads for ts: its own settings, the streams' sizes (and
// with an external server its connection and the per-role identities), the
// Freshdesk settings and, without an external
// server, the simulator's, then each target's.
func parts(cfg *Config, ts []*targets.Target, external bool) []any {
	process := []any{&cfg.Common, &cfg.Process}
	if external {
		// The per-role seeds' directory serves any choice of targets, so
		// one environment fits every `up --targets … --nats` of a host.
		process = append(process, &cfg.NATS, &cfg.Identities)
	} else {
		process = append(process, &cfg.NATS.Topology)
	}
	if targets.NeedHelpdesk(ts) {
		process = append(process, &cfg.Freshdesk)
		if !external {
			process = append(process, &cfg.Sim)
		}
	}
	return targets.Parts(&cfg.Config, ts, process...)
}

// Options are what a caller of Start controls beyond the configuration.
type Options struct {
	Stdout, Stderr io.Writer
	// PolicyExplicit says the operator chose AUTOTRIAGE_POLICY; otherwise
	// the simulator demo applies demoPolicy.
	PolicyExplicit bool
	// StartExplicit says the operator chose AUTOTRIAGE_FETCHER_START;
	// otherwise the simulator demo starts demoStart back, so the tickets
	// the simulator has waiting are triaged.
	StartExplicit bool
	// TrainFromHistory allows training the starter model on a real
	// account's history (FlagTrainFromHistory); the simulator's history is
	// always used.
	TrainFromHistory bool
	// Targets are the targets to run (FlagTargets); nil: all of them.
	Targets []string
	// NATS is the URL of an external server (FlagNATS): no embedded
	// server, no simulator; each target connects as its own broker role.
	NATS string
	// Ready, when set, is called once every stage runs, with the addresses.
	Ready func(Addrs)
}

func (o Options) targets() ([]*targets.Target, error) {
	if o.Targets == nil {
		return targets.All(), nil
	}
	return targets.Parse(strings.Join(o.Targets, ","), FlagTargets)
}

// Addrs are where the parts of a running pipeline listen.
type Addrs struct {
	NATS, Debug, Webhook, Simulator string
	Sim                             *freshdesksim.Sim
	// Listeners is every address (host:port) the process bound, by name:
	// nats (the embedded server), debug, and webhook and freshdesk-sim
	// when they run.
	Listeners map[string]string
}

// Start runs the pipeline until ctx ends, then drains every stage and stops,
// all within one AUTOTRIAGE_SHUTDOWN_TIMEOUT counted from the end of ctx:
// the stages' drains, the webhook server, the simulator's server, the NATS
// connections, the debug server and the embedded NATS server share its
// deadline.
//
// Without o.NATS the process embeds the server and connects once, as the
// admin: the server is its own, without authorization. With o.NATS each
// target connects as its own role (targets.Connect). The simulator runs
// only without o.NATS and without a Freshdesk account, for a target that
// talks to the helpdesk; the starter model only with the trainer.
func Start(ctx context.Context, cfg Config, o Options) (err error) {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	ts, err := o.targets()
	if err != nil {
		return err
	}
	external := o.NATS != ""
	simMode := !external && targets.NeedHelpdesk(ts) && !cfg.Freshdesk.Configured()
	names := targets.NamesOf(ts)
	fetching, training := slices.Contains(names, "fetcher"), slices.Contains(names, "trainer")
	if simMode && !o.PolicyExplicit {
		cfg.Triage.Policy = demoPolicy
	}
	if simMode && !o.StartExplicit {
		cfg.Fetcher.Start = demoStart
	}
	if simMode {
		simWebhookSecret(&cfg)
	}
	if err := targets.Validate(&cfg.Config, ts, !simMode); err != nil {
		return err
	}
	policy, _ := triage.ParsePolicy(cfg.Triage.Policy)
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	logFile, err := os.OpenFile(filepath.Join(cfg.DataDir, "autotriage.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	defer logFile.Close()
	log := platform.NewLogger(logFile, cfg.Level(), "autotriage")
	sd := platform.NewShutdown(ctx, cfg.ShutdownTimeout)
	say := func(format string, args ...any) { fmt.Fprintf(o.Stdout, format+"\n", args...) }

	addrs := Addrs{NATS: o.NATS, Listeners: map[string]string{}}
	var srv *natsserver.Server
	storeDir := ""
	if !external {
		// The simulator's helpdesk lives in memory, so the pipeline state
		// that refers to it (cursor, ledger, streams) starts afresh with
		// it; a real account keeps its store across runs.
		storeDir = filepath.Join(cfg.DataDir, "jetstream")
		if simMode {
			storeDir = filepath.Join(cfg.DataDir, "jetstream-sim")
			if err := os.RemoveAll(storeDir); err != nil {
				return fmt.Errorf("reset the simulator's store: %w", err)
			}
		}
		host, port, err := splitHostPort(cfg.NATSAddr)
		if err != nil {
			return &platform.ConfigError{Var: "AUTOTRIAGE_NATS_ADDR", Msg: err.Error()}
		}
		srv, err = natsserver.Start(natsserver.Options{Host: host, Port: port, StoreDir: storeDir})
		if err != nil {
			return fmt.Errorf("embedded NATS on %s: %w", cfg.NATSAddr, err)
		}
		defer stopWithin(sd, log, "embedded NATS server", srv.Stop)
		addrs.NATS = srv.URL()
		addrs.Listeners["nats"] = strings.TrimPrefix(srv.URL(), "nats://")
	}

	// The webhook listener comes first so the simulator can be told its
	// real address (port 0 picks one); it answers 503 until the fetcher is
	// built, and the simulator retries.
	// The listeners stop after the stages (explicitly on the way out, by
	// these defers on an early return) and before the NATS connection.
	hooks := &lateHandler{}
	stopWeb := func() {}
	if fetching && !cfg.Fetcher.WebhooksOff {
		web, err := platform.Listen("webhook", cfg.Fetcher.WebhookAddr, hooks, log)
		if err != nil {
			return &platform.ConfigError{Var: "AUTOTRIAGE_WEBHOOK_ADDR", Msg: err.Error()}
		}
		addrs.Webhook = web.Addr()
		addrs.Listeners["webhook"] = web.Addr()
		stopWeb = sync.OnceFunc(func() {
			sctx, c := sd.WorkContext()
			defer c()
			_ = web.Shutdown(sctx)
		})
		defer stopWeb()
	}

	var sim *freshdesksim.Sim
	stopSim := func() {}
	if simMode {
		var hs *platform.Server
		sim, hs, err = startSim(&cfg, addrs.Webhook, log)
		if err != nil {
			return err
		}
		addrs.Sim, addrs.Simulator = sim, hs.Addr()
		addrs.Listeners["freshdesk-sim"] = hs.Addr()
		defer sim.Close()
		stopSim = sync.OnceFunc(func() {
			// The simulator first, so its requests held by injected
			// latency end; then its listener has nothing to wait for.
			stopWithin(sd, log, "freshdesk simulator", func() { _ = sim.Close() })
			// The stages have stopped: a request still running is one
			// they abandoned, and waiting for it would eat the time the
			// connection's drain needs.
			sctx, c := sd.WorkContext()
			defer c()
			_ = hs.Shutdown(sctx)
		})
		defer stopSim()
	}

	// views[i] is the runtime of ts[i]: views of the one admin connection
	// to the embedded server, or one runtime per target.
	var main *service.Runtime
	views := make([]*service.Runtime, len(ts))
	if !external {
		rt, serr := service.Start(ctx, "autotriage", cfg.Common, pipeline.Config{URL: srv.URL(), ConnectWait: 10 * time.Second, Topology: cfg.NATS.Topology}, o.Stderr, service.Options{Log: log, Shutdown: sd})
		if serr != nil {
			return serr
		}
		defer func() { err = errors.Join(err, rt.Stop()) }()
		main = rt
		for i, t := range ts {
			views[i] = rt.Stage(t.Name)
		}
	} else {
		cfg.NATS.URL = o.NATS
		rts, cerr := targets.Connect(ctx, &cfg.Config, ts, o.Stderr, service.Options{Log: log, Shutdown: sd})
		if cerr != nil {
			return cerr
		}
		defer func() { err = errors.Join(err, targets.StopAll(rts)) }()
		main, views = rts[0], rts
	}
	if main.Debug != nil {
		addrs.Debug = main.Debug.Addr()
		addrs.Listeners["debug"] = main.Debug.Addr()
	}

	if external {
		say("autotriage %s: NATS at %s (external), targets %s", platform.Build().Version, redactURL(o.NATS), strings.Join(targets.NamesOf(ts), ","))
	} else {
		say("autotriage %s: embedded NATS at %s (store %s)", platform.Build().Version, srv.URL(), storeDir)
	}
	switch {
	case simMode:
		say("no FRESHDESK_DOMAIN: simulated helpdesk at http://%s (%d resolved tickets, %.1f new/s; admin API under /_sim/)", addrs.Simulator, cfg.Sim.History, cfg.Sim.ArrivalRate)
	case targets.NeedHelpdesk(ts):
		say("helpdesk: %s", describeHelpdesk(cfg.Freshdesk))
	}
	if !external {
		// The process owns the server: the model registry exists for a
		// classifier run without the trainer too.
		if err := main.Conn.EnsureModelStore(ctx); err != nil {
			return err
		}
	}
	h := targets.Hooks{Webhooks: hooks.set}
	if training {
		h.Starter = func(ctx context.Context, rt *service.Runtime, tr *trainer.Trainer, store *modelstore.Store, live *trainer.Live) (bool, error) {
			continuous, err := ensureModel(ctx, rt, cfg, tr, store, !simMode, o.TrainFromHistory, say)
			if err != nil {
				return false, err
			}
			say("policy: %s (live in KV: `autotriage policy show|set`)", policyString(live.Policy, policy))
			return continuous, nil
		}
	}
	g, err := targets.Start(ctx, &cfg.Config, ts, views, h)
	if err != nil {
		return err
	}

	if fetching {
		say("health http://%s/readyz  metrics http://%s/metrics  webhooks http://%s%s", addrs.Debug, addrs.Debug, addrs.Webhook, fetcher.WebhookPath)
	} else {
		say("health http://%s/readyz  metrics http://%s/metrics", addrs.Debug, addrs.Debug)
	}
	say("log %s; Ctrl-C drains and stops", logFile.Name())
	if o.Ready != nil {
		o.Ready(addrs)
	}
	lags := map[string]*pipeline.Conn{}
	for i, t := range ts {
		switch t.Name {
		case "classifier":
			lags[pipeline.ConsumerClassifier] = views[i].Conn
		case "writer":
			lags[pipeline.ConsumerWriter] = views[i].Conn
		}
	}
	sum := newSummary(main, lags)
	tick := time.NewTicker(cfg.Summary)
	defer tick.Stop()
loop:
	for {
		select {
		case <-g.Done():
			break loop
		case <-tick.C:
			say("%s", sum.line(ctx))
		}
	}
	say("draining...")
	runErr := g.Stop()
	stopWeb()
	stopSim()
	if runErr != nil {
		return runErr
	}
	sctx, scancel := sd.Context()
	defer scancel()
	say("%s", sum.line(sctx))
	say("stopped")
	return nil
}

// redactURL is a server list without the user information of its URLs
// (a password, or a token in the user's place).
func redactURL(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = nil
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// stopWithin runs stop but waits for it only until the shutdown deadline:
// the process exits then whatever stop still does (the embedded server's
// store recovers at the next start).
func stopWithin(sd *platform.Shutdown, log *slog.Logger, what string, stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		stop()
	}()
	t := time.NewTimer(time.Until(sd.Deadline()))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		log.Warn("still stopping at the shutdown deadline; not waiting longer", "what", what, "budget", sd.Budget())
	}
}

// simWebhookSecret gives the simulator's webhooks a random secret when the
// operator set none, before the fetcher's settings are validated.
func simWebhookSecret(cfg *Config) {
	if cfg.Fetcher.WebhookSecret.Reveal() == "" && !cfg.Fetcher.WebhooksOff && cfg.Fetcher.WebhookUser == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		cfg.Fetcher.WebhookSecret = platform.Secret(hex.EncodeToString(b))
	}
}

// startSim starts the simulated helpdesk on its own listener and points the
// Freshdesk settings and webhooks of cfg at it. The caller shuts the
// listener down after the stages stopped, so their drains can still write.
func startSim(cfg *Config, webhookAddr string, log *slog.Logger) (*freshdesksim.Sim, *platform.Server, error) {
	secret := cfg.Fetcher.WebhookSecret.Reveal()
	webhookURL := ""
	if webhookAddr != "" {
		whost, wport, err := net.SplitHostPort(webhookAddr)
		if err != nil {
			return nil, nil, fmt.Errorf("webhook address %s: %w", webhookAddr, err)
		}
		if whost == "" || whost == "0.0.0.0" || whost == "::" {
			whost = "127.0.0.1"
		}
		webhookURL = "http://" + net.JoinHostPort(whost, wport) + fetcher.WebhookPath
	}
	sim, err := freshdesksim.New(freshdesksim.Config{
		Seed: cfg.Sim.Seed, Domain: "sim",
		Webhook: freshdesksim.WebhookConfig{URL: webhookURL, Header: cfg.Fetcher.WebhookHeader, Secret: secret},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("simulator: %w", err)
	}
	if err := sim.Generate(freshdesksim.GenerateOptions{History: cfg.Sim.History, New: cfg.Sim.New, ArrivalRate: cfg.Sim.ArrivalRate}); err != nil {
		sim.Close()
		return nil, nil, fmt.Errorf("simulator: %w", err)
	}
	hs, err := platform.Listen("freshdesk-sim", cfg.Sim.Addr, sim, log)
	if err != nil {
		sim.Close()
		return nil, nil, &platform.ConfigError{Var: "AUTOTRIAGE_SIM_ADDR", Msg: err.Error()}
	}
	cfg.Freshdesk.BaseURL = "http://" + hs.Addr()
	cfg.Freshdesk.APIKey = "sim-admin-key"
	// The process talks to its own simulator with the simulator's fixed
	// key, over whatever address AUTOTRIAGE_SIM_ADDR binds (0.0.0.0 in a
	// container): plain http carries nothing secret here.
	cfg.Freshdesk.AllowInsecureHTTP = true
	if cfg.Freshdesk.Account == "" {
		cfg.Freshdesk.Account = "sim"
	}
	return sim, hs, nil
}

// lateHandler serves 503 until the real handler is set.
type lateHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lateHandler) set(h http.Handler) { l.h.Store(&h) }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "starting", http.StatusServiceUnavailable)
}

// ensureModel has the trainer train and promote the starter model when no
// model is promoted yet, before the pipeline needs one (gated against the
// majority-label baseline on the most recent tickets, with its lineage). A
// real account's history is read only with allowed (FlagTrainFromHistory),
// after stating its cost; without it ensureModel reads none and returns a
// *TrainingRefused saying what reading it would cost. continuous says
// whether the trainer keeps running: on a real account only once it has
// read the history (a cursor exists), so a later start never reads a year
// of tickets unasked.
func ensureModel(ctx context.Context, rt *service.Runtime, cfg Config, tr *trainer.Trainer, store *modelstore.Store, real, allowed bool,
	say func(string, ...any)) (continuous bool, err error) {
	kv, err := rt.Conn.KV(ctx, pipeline.BucketPolicy)
	if err != nil {
		return false, err
	}
	state, err := trainer.ReadState(ctx, kv)
	if err != nil {
		return false, err
	}
	continuous = !real || allowed || !state.Through.IsZero()
	if p, err := store.Promoted(ctx); err == nil {
		say("model: %s (version %s)", short(p.ID), p.Version)
		if !continuous {
			say("continuous trainer: off until it has read the helpdesk's history once (`autotriage up %s` or `autotriage trainer`)", FlagTrainFromHistory)
		}
		return continuous, nil
	} else if !errors.Is(err, modelstore.ErrNoModel) {
		return false, err
	}
	since := time.Now().Add(-cfg.Trainer.History)
	if real {
		client, err := cfg.Freshdesk.NewClient(nil, rt.Log, nil)
		if err != nil {
			return false, err
		}
		cost := EstimateHistory(ctx, client, since)
		if !allowed {
			return false, &TrainingRefused{Cost: cost}
		}
		say("%s: reading %s", FlagTrainFromHistory, cost)
	}
	say("no model promoted: training a starter model on the helpdesk's resolved tickets...")
	started := time.Now()
	res, err := tr.RunOnce(ctx, "start", true, 0)
	if err != nil {
		return false, fmt.Errorf("train the starter model: %w", err)
	}
	if res.Action != "promoted" {
		why := res.Reason
		if res.Lineage == nil {
			why = res.Skipped
		}
		return false, fmt.Errorf("the starter model was not promoted: %s (promote one with `autotriage models push --promote`)", why)
	}
	l := res.Lineage
	say("model: %s trained on %d tickets in %s and promoted (gated on the %d most recent, %s .. %s)", short(l.ModelID), l.Tickets,
		time.Since(started).Round(time.Millisecond), l.HoldoutTickets, l.HoldoutFrom.Format(time.DateOnly), l.HoldoutThrough.Format(time.DateOnly))
	for _, f := range l.Holdout {
		say("  %-8s held-out accuracy %.3f, macro-F1 %.3f", f.Field, f.Accuracy, f.MacroF1)
	}
	say("continuous trainer: retrains every %s and on `autotriage train --request`", cfg.Trainer.Interval)
	return continuous, nil
}

// policyString is the stored policy, or the configured one when the
// document holds none.
func policyString(d triage.Doc, configured triage.Policy) string {
	if d.Policy == "" {
		return configured.String()
	}
	return d.Policy
}

func describeHelpdesk(s freshdesk.Settings) string {
	if s.BaseURL != "" {
		return s.BaseURL
	}
	return "https://" + s.Domain + ".freshdesk.com"
}

func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return h, n, nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
