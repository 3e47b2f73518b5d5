// Command freshdesk-sim serves the Freshdesk API v2 simulator
// (internal/freshdesksim) and its /_sim/ admin API on one port. It is
// configured by FRESHDESK_SIM_* environment variables; see README.md or
// run it with --help.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/autotriage/autotriage/services/internal/freshdesksim"
)

const prefix = "FRESHDESK_SIM_"

// config is the environment. The help tag is printed by --help.
type config struct {
	Addr                string        `env:"ADDR" envDefault:":8089" help:"listen address of the API and the /_sim/ admin API"`
	APIKey              string        `env:"API_KEY" envDefault:"sim-admin-key" help:"admin API key (basic auth <key>:X)"`
	AgentKey            string        `env:"AGENT_KEY" envDefault:"sim-agent-key" help:"non-admin API key: 403 on groups and agents"`
	Plan                string        `env:"PLAN" envDefault:"unlimited" help:"rate-limit plan: trial, growth, pro, enterprise or unlimited"`
	TimeScale           float64       `env:"TIME_SCALE" envDefault:"1" help:"simulated seconds per real second (>= 1); scales the rate-limit minute, Retry-After and webhook retries"`
	Seed                int64         `env:"SEED" envDefault:"1" help:"seed of the ticket generator and the fault dice"`
	Domain              string        `env:"DOMAIN" envDefault:"sim" help:"account name used in ticket URLs"`
	History             int           `env:"HISTORY" envDefault:"2000" help:"generated resolved tickets with labels (ignored with DATASET)"`
	New                 int           `env:"NEW" envDefault:"20" help:"generated untriaged open tickets at start (ignored with DATASET)"`
	ArrivalRate         float64       `env:"ARRIVAL_RATE" envDefault:"0" help:"new tickets per real second after start (0 = none; with DATASET: test rows per second, 0 = all at once)"`
	Arrivals            int           `env:"ARRIVALS" envDefault:"0" help:"stop generated arrivals after this many (0 = no limit)"`
	Dataset             string        `env:"DATASET" help:"dataset directory with train.jsonl (history) and test.jsonl (new tickets); replaces the generator"`
	DatasetHistoryLimit int           `env:"DATASET_HISTORY_LIMIT" envDefault:"0" help:"load at most this many train.jsonl rows (0 = all)"`
	DatasetNewLimit     int           `env:"DATASET_NEW_LIMIT" envDefault:"0" help:"load at most this many test.jsonl rows (0 = all)"`
	IndexDelay          time.Duration `env:"INDEX_DELAY" envDefault:"0s" help:"search index lag in simulated time, e.g. 2m"`
	WebhookURL          string        `env:"WEBHOOK_URL" help:"POST automation-rule webhooks here (empty = no webhooks)"`
	WebhookHeader       string        `env:"WEBHOOK_HEADER" help:"name of a header carrying WEBHOOK_SECRET"`
	WebhookSecret       string        `env:"WEBHOOK_SECRET" help:"value of WEBHOOK_HEADER"`
	WebhookUsername     string        `env:"WEBHOOK_USERNAME" help:"basic-auth user for webhooks"`
	WebhookPassword     string        `env:"WEBHOOK_PASSWORD" help:"basic-auth password for webhooks"`
	WebhookOnAPIUpdates bool          `env:"WEBHOOK_ON_API_UPDATES" envDefault:"false" help:"also fire status/priority webhooks for changes made through the API"`
	FaultErrorRate      float64       `env:"FAULT_ERROR_RATE" envDefault:"0" help:"probability of an injected error on every endpoint"`
	FaultStatus         int           `env:"FAULT_STATUS" envDefault:"500" help:"HTTP status of injected errors"`
	FaultLatency        time.Duration `env:"FAULT_LATENCY" envDefault:"0s" help:"latency added to every API request"`
	FaultResetRate      float64       `env:"FAULT_RESET_RATE" envDefault:"0" help:"probability of a connection reset without response"`
	LogLevel            string        `env:"LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`
}

// configError names the variable that is invalid; main exits 2 on it.
type configError struct {
	name string
	err  error
}

func (e *configError) Error() string { return fmt.Sprintf("invalid %s: %v", e.name, e.err) }
func (e *configError) Unwrap() error { return e.err }

func varName(field string) string {
	f, ok := reflect.TypeFor[config]().FieldByName(field)
	if !ok {
		return field
	}
	return prefix + f.Tag.Get("env")
}

func loadConfig(environ map[string]string) (config, error) {
	var cfg config
	if err := env.ParseWithOptions(&cfg, env.Options{Prefix: prefix, Environment: environ}); err != nil {
		var pe env.ParseError
		if errors.As(err, &pe) {
			return cfg, &configError{varName(pe.Name), pe.Err}
		}
		return cfg, fmt.Errorf("config: %w", err)
	}
	check := func(ok bool, field, msg string) error {
		if ok {
			return nil
		}
		return &configError{varName(field), errors.New(msg)}
	}
	var lvl slog.Level
	return cfg, errors.Join(
		check(cfg.TimeScale >= 1, "TimeScale", "must be >= 1"),
		check(strings.Contains("|trial|growth|pro|enterprise|unlimited|", "|"+cfg.Plan+"|"), "Plan", "must be trial, growth, pro, enterprise or unlimited"),
		check(cfg.History >= 0, "History", "must be >= 0"),
		check(cfg.New >= 0, "New", "must be >= 0"),
		check(cfg.ArrivalRate >= 0, "ArrivalRate", "must be >= 0"),
		check(cfg.Arrivals >= 0, "Arrivals", "must be >= 0"),
		check(cfg.IndexDelay >= 0, "IndexDelay", "must be >= 0"),
		check(cfg.FaultErrorRate >= 0 && cfg.FaultErrorRate <= 1, "FaultErrorRate", "must be in [0,1]"),
		check(cfg.FaultResetRate >= 0 && cfg.FaultResetRate <= 1, "FaultResetRate", "must be in [0,1]"),
		check(cfg.FaultStatus >= 400 && cfg.FaultStatus <= 599, "FaultStatus", "must be 400-599"),
		check(cfg.APIKey != "" && cfg.APIKey != cfg.AgentKey, "APIKey", "must be set and differ from AGENT_KEY"),
		check(lvl.UnmarshalText([]byte(cfg.LogLevel)) == nil, "LogLevel", "must be debug, info, warn or error"),
	)
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "freshdesk-sim: a Freshdesk API v2 simulator. Configuration by environment:")
	t := reflect.TypeFor[config]()
	for i := range t.NumField() {
		f := t.Field(i)
		def, ok := f.Tag.Lookup("envDefault")
		if !ok {
			def = `""`
		}
		fmt.Fprintf(w, "  %-40s default %-16s %s\n", prefix+f.Tag.Get("env"), def, f.Tag.Get("help"))
	}
}

func main() {
	for _, a := range os.Args[1:] {
		if a == "--help" || a == "-h" || a == "-help" {
			printHelp(os.Stdout)
			return
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	var ce *configError
	switch {
	case errors.As(err, &ce):
		fmt.Fprintln(os.Stderr, "freshdesk-sim: "+ce.Error())
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "freshdesk-sim: "+err.Error())
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	return runWith(ctx, env.ToMap(os.Environ()), nil)
}

// runWith serves until ctx ends. ready, when set, receives the bound address.
func runWith(ctx context.Context, environ map[string]string, ready chan<- string) error {
	cfg, err := loadConfig(environ)
	if err != nil {
		return err
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	sim, err := freshdesksim.New(freshdesksim.Config{
		APIKey: cfg.APIKey, AgentKey: cfg.AgentKey, Plan: cfg.Plan, TimeScale: cfg.TimeScale,
		Seed: cfg.Seed, Domain: cfg.Domain, IndexDelay: cfg.IndexDelay,
		Webhook: freshdesksim.WebhookConfig{
			URL: cfg.WebhookURL, Header: cfg.WebhookHeader, Secret: cfg.WebhookSecret,
			Username: cfg.WebhookUsername, Password: cfg.WebhookPassword, OnAPIUpdates: cfg.WebhookOnAPIUpdates,
		},
	})
	if err != nil {
		return fmt.Errorf("create simulator: %w", err)
	}
	defer func() { _ = sim.Close() }()
	if cfg.FaultErrorRate > 0 || cfg.FaultLatency > 0 || cfg.FaultResetRate > 0 {
		sim.SetFault("*", freshdesksim.Fault{ErrorRate: cfg.FaultErrorRate, Status: cfg.FaultStatus, Latency: cfg.FaultLatency, ResetRate: cfg.FaultResetRate})
	}
	if cfg.Dataset != "" {
		err = sim.LoadDataset(cfg.Dataset, freshdesksim.DatasetOptions{HistoryLimit: cfg.DatasetHistoryLimit, NewLimit: cfg.DatasetNewLimit, Rate: cfg.ArrivalRate})
	} else {
		err = sim.Generate(freshdesksim.GenerateOptions{History: cfg.History, New: cfg.New, ArrivalRate: cfg.ArrivalRate, Arrivals: cfg.Arrivals})
	}
	if err != nil {
		return fmt.Errorf("seed simulator: %w", err)
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	// Secrets (keys, webhook credentials) are never logged.
	log.Info("freshdesk-sim listening", "addr", ln.Addr().String(), "plan", cfg.Plan, "time_scale", cfg.TimeScale,
		"tickets", len(sim.TicketIDs()), "dataset", cfg.Dataset, "webhook", cfg.WebhookURL != "")
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
