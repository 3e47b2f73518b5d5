// Command freshdesk-sim serves the Freshdesk API v2 simulator
// (internal/freshdesksim) and its /_sim/ admin API on one port. It is
// configured by FRESHDESK_SIM_* environment variables; see README.md or
// run it with --help.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/platform"
)

// config is the environment. The help tag is printed by --help.
type config struct {
	Addr                string        `env:"FRESHDESK_SIM_ADDR" envDefault:"127.0.0.1:8089" help:"listen address of the API and the /_sim/ admin API (loopback unless set, e.g. :8089 in a container)"`
	APIKey              string        `env:"FRESHDESK_SIM_API_KEY" envDefault:"sim-admin-key" secret:"true" help:"admin API key (basic auth <key>:X)"`
	AgentKey            string        `env:"FRESHDESK_SIM_AGENT_KEY" envDefault:"sim-agent-key" help:"non-admin API key: 403 on groups and agents"`
	Plan                string        `env:"FRESHDESK_SIM_PLAN" envDefault:"unlimited" help:"rate-limit plan: trial, growth, pro, enterprise or unlimited"`
	TimeScale           float64       `env:"FRESHDESK_SIM_TIME_SCALE" envDefault:"1" help:"simulated seconds per real second (>= 1); scales the rate-limit minute, Retry-After and webhook retries"`
	Seed                int64         `env:"FRESHDESK_SIM_SEED" envDefault:"1" help:"seed of the ticket generator and the fault dice"`
	Domain              string        `env:"FRESHDESK_SIM_DOMAIN" envDefault:"sim" help:"account name used in ticket URLs"`
	History             int           `env:"FRESHDESK_SIM_HISTORY" envDefault:"2000" help:"generated resolved tickets with labels (ignored with DATASET)"`
	New                 int           `env:"FRESHDESK_SIM_NEW" envDefault:"20" help:"generated untriaged open tickets at start (ignored with DATASET)"`
	ArrivalRate         float64       `env:"FRESHDESK_SIM_ARRIVAL_RATE" envDefault:"0" help:"new tickets per real second after start (0 = none; with DATASET: test rows per second, 0 = all at once)"`
	Arrivals            int           `env:"FRESHDESK_SIM_ARRIVALS" envDefault:"0" help:"stop generated arrivals after this many (0 = no limit)"`
	EmailShare          float64       `env:"FRESHDESK_SIM_EMAIL_SHARE" envDefault:"0" help:"share (0..1) of generated tickets that are realistic HTML e-mails: quoted threads, signatures, forwards, inline images, sizes up to several MB (0 keeps every seed's output as before)"`
	Dataset             string        `env:"FRESHDESK_SIM_DATASET" help:"dataset directory with train.jsonl (history) and test.jsonl (new tickets); replaces the generator"`
	DatasetHistoryLimit int           `env:"FRESHDESK_SIM_DATASET_HISTORY_LIMIT" envDefault:"0" help:"load at most this many train.jsonl rows (0 = all)"`
	DatasetNewLimit     int           `env:"FRESHDESK_SIM_DATASET_NEW_LIMIT" envDefault:"0" help:"load at most this many test.jsonl rows (0 = all)"`
	IndexDelay          time.Duration `env:"FRESHDESK_SIM_INDEX_DELAY" envDefault:"0s" help:"search index lag in simulated time, e.g. 2m"`
	WebhookURL          string        `env:"FRESHDESK_SIM_WEBHOOK_URL" help:"POST automation-rule webhooks here (empty = no webhooks)"`
	WebhookHeader       string        `env:"FRESHDESK_SIM_WEBHOOK_HEADER" help:"name of a header carrying WEBHOOK_SECRET"`
	WebhookSecret       string        `env:"FRESHDESK_SIM_WEBHOOK_SECRET" secret:"true" help:"value of WEBHOOK_HEADER"`
	WebhookUsername     string        `env:"FRESHDESK_SIM_WEBHOOK_USERNAME" help:"basic-auth user for webhooks"`
	WebhookPassword     string        `env:"FRESHDESK_SIM_WEBHOOK_PASSWORD" secret:"true" help:"basic-auth password for webhooks"`
	WebhookOnAPIUpdates bool          `env:"FRESHDESK_SIM_WEBHOOK_ON_API_UPDATES" envDefault:"false" help:"also fire status/priority webhooks for changes made through the API"`
	FaultErrorRate      float64       `env:"FRESHDESK_SIM_FAULT_ERROR_RATE" envDefault:"0" help:"probability of an injected error on every endpoint"`
	FaultStatus         int           `env:"FRESHDESK_SIM_FAULT_STATUS" envDefault:"500" help:"HTTP status of injected errors"`
	FaultLatency        time.Duration `env:"FRESHDESK_SIM_FAULT_LATENCY" envDefault:"0s" help:"latency added to every API request"`
	FaultResetRate      float64       `env:"FRESHDESK_SIM_FAULT_RESET_RATE" envDefault:"0" help:"probability of a connection reset without response"`
	LogLevel            string        `env:"FRESHDESK_SIM_LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`
}

// Validate names the first invalid variable.
func (cfg config) Validate() error {
	check := func(ok bool, name, msg string) error {
		if ok {
			return nil
		}
		return &platform.ConfigError{Var: name, Msg: msg}
	}
	_, lvlErr := platform.ParseLevel(cfg.LogLevel)
	return platform.FirstError(
		check(cfg.TimeScale >= 1, "FRESHDESK_SIM_TIME_SCALE", "must be >= 1"),
		check(strings.Contains("|trial|growth|pro|enterprise|unlimited|", "|"+cfg.Plan+"|"), "FRESHDESK_SIM_PLAN", "must be trial, growth, pro, enterprise or unlimited"),
		check(cfg.History >= 0, "FRESHDESK_SIM_HISTORY", "must be >= 0"),
		check(cfg.New >= 0, "FRESHDESK_SIM_NEW", "must be >= 0"),
		check(cfg.ArrivalRate >= 0, "FRESHDESK_SIM_ARRIVAL_RATE", "must be >= 0"),
		check(cfg.Arrivals >= 0, "FRESHDESK_SIM_ARRIVALS", "must be >= 0"),
		check(cfg.EmailShare >= 0 && cfg.EmailShare <= 1, "FRESHDESK_SIM_EMAIL_SHARE", "must be in [0,1]"),
		check(cfg.IndexDelay >= 0, "FRESHDESK_SIM_INDEX_DELAY", "must be >= 0"),
		check(cfg.FaultErrorRate >= 0 && cfg.FaultErrorRate <= 1, "FRESHDESK_SIM_FAULT_ERROR_RATE", "must be in [0,1]"),
		check(cfg.FaultResetRate >= 0 && cfg.FaultResetRate <= 1, "FRESHDESK_SIM_FAULT_RESET_RATE", "must be in [0,1]"),
		check(cfg.FaultStatus >= 400 && cfg.FaultStatus <= 599, "FRESHDESK_SIM_FAULT_STATUS", "must be 400-599"),
		check(cfg.APIKey != "" && cfg.APIKey != cfg.AgentKey, "FRESHDESK_SIM_API_KEY", "must be set and differ from FRESHDESK_SIM_AGENT_KEY"),
		check(lvlErr == nil, "FRESHDESK_SIM_LOG_LEVEL", "must be debug, info, warn or error"),
	)
}

func main() { platform.Main(run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config
	if err := platform.LoadConfig(&cfg, args, "freshdesk-sim", "a Freshdesk API v2 simulator (API and /_sim/ admin API on one port)", stdout); err != nil {
		return err
	}
	return serve(ctx, cfg, stderr, nil)
}

// serve runs the simulator until ctx ends. ready, when set, receives the
// bound address.
func serve(ctx context.Context, cfg config, stderr io.Writer, ready chan<- string) error {
	lvl, _ := platform.ParseLevel(cfg.LogLevel)
	log := platform.NewLogger(stderr, lvl, "freshdesk-sim")

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
		err = sim.Generate(freshdesksim.GenerateOptions{History: cfg.History, New: cfg.New, ArrivalRate: cfg.ArrivalRate, Arrivals: cfg.Arrivals, EmailShare: cfg.EmailShare})
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
