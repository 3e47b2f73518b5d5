package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
)

// defaultConnectWait is the CLI's patience with NATS: an operator wants to
// hear about an unreachable server in seconds, unlike a stage at start.
const defaultConnectWait = 3 * time.Second

// envConfig is what the CLI reads from the environment (the same variables
// as the stages, so one env file serves both).
type envConfig struct {
	NATS     pipeline.Config
	Helpdesk freshdesk.Settings
	// Policy is the triage policy `classify` shows decisions under.
	Policy string `env:"AUTOTRIAGE_POLICY" help:"triage policy (see the triage package); empty: shadow everywhere"`
	// Role is the broker role the CLI connects as: admin (the default, for
	// train, promote, dlq retry/purge) or monitor (status and reads only).
	Role string `env:"AUTOTRIAGE_NATS_ROLE" envDefault:"admin" help:"broker role of the CLI: admin, or monitor for read-only commands"`
}

// loadEnv parses the environment. It is read afresh on every call (it is
// cheap) so tests and long-lived callers see the current values.
func loadEnv() (envConfig, error) {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var cfg envConfig
	if err := platform.LoadConfigFrom(&cfg, nil, Program, "", io.Discard, env); err != nil {
		return envConfig{}, err
	}
	cfg.NATS.Role = cfg.Role
	if env["AUTOTRIAGE_NATS_CONNECT_WAIT"] == "" {
		cfg.NATS.ConnectWait = defaultConnectWait
	}
	return cfg, nil
}

// connOpts are the connection flags every NATS-using subcommand accepts;
// they override the environment.
type connOpts struct {
	url, creds string
	wait       time.Duration
}

func (o *connOpts) register(f *flags) {
	f.StringVar(&o.url, "nats", "", "NATS server URL(s) (default $NATS_URL or nats://127.0.0.1:4222)")
	f.StringVar(&o.creds, "creds", "", "NATS credentials file (default $NATS_CREDS)")
	f.DurationVar(&o.wait, "connect-wait", 0, "how long to try reaching NATS (default $AUTOTRIAGE_NATS_CONNECT_WAIT or 3s)")
}

func (o *connOpts) config() (pipeline.Config, error) {
	env, err := loadEnv()
	if err != nil {
		return pipeline.Config{}, err
	}
	cfg := env.NATS
	if o.url != "" {
		cfg.URL = o.url
	}
	if o.creds != "" {
		cfg.Creds = o.creds
	}
	if o.wait > 0 {
		cfg.ConnectWait = o.wait
	}
	return cfg, nil
}

// connect dials NATS. It never creates or changes the topology: an
// operator tool must not impose its stream settings on a running system.
func (o *connOpts) connect(ctx context.Context) (*pipeline.Conn, error) {
	cfg, err := o.config()
	if err != nil {
		return nil, err
	}
	return pipeline.Connect(ctx, cfg, Program+"-cli", nil)
}

// errNoTopology explains a fresh or wrong server.
var errNoTopology = errors.New("the autotriage streams do not exist on this NATS server: start a stage (or `autotriage up`) first, or check NATS_URL")

// connectReady dials NATS and checks that the pipeline's streams exist.
func (o *connOpts) connectReady(ctx context.Context) (*pipeline.Conn, error) {
	conn, err := o.connect(ctx)
	if err != nil {
		return nil, err
	}
	ok, err := conn.HasTopology(ctx)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if !ok {
		conn.Close()
		return nil, errNoTopology
	}
	return conn, nil
}

// helpdeskClient builds a Freshdesk client from the environment, or returns
// ok=false when no account is configured.
func helpdeskClient() (c *freshdesk.Client, account string, ok bool, err error) {
	env, err := loadEnv()
	if err != nil {
		return nil, "", false, err
	}
	h := env.Helpdesk
	if !h.Configured() {
		return nil, "", false, nil
	}
	if !h.APIKey.IsSet() {
		return nil, "", false, &platform.ConfigError{Var: "FRESHDESK_API_KEY", Msg: "required when FRESHDESK_DOMAIN or FRESHDESK_BASE_URL is set"}
	}
	h.Timeout = min(h.Timeout, 20*time.Second)
	c, err = h.NewClient(nil, nil, nil)
	if err != nil {
		return nil, "", false, err
	}
	return c, h.AccountName(), true, nil
}

func signalContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills the process
	}()
	return ctx, stop
}

// parseTime accepts RFC 3339, a date (UTC midnight), "2006-01-02T15:04"
// (UTC), or a duration meaning that long ago ("90m", "36h", "7d").
func parseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err == nil && n >= 0 && fmt.Sprint(n) == d {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q: want RFC 3339, YYYY-MM-DD or a duration ago such as 36h or 7d", s)
}
