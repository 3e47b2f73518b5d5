package targets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"

	"github.com/autotriage/autotriage/services/internal/natsauth"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/service"
)

// Main is the body of a binary that runs targets against an external NATS
// server (NATS_URL): the stage binaries and `autotriage trainer`. Every such
// binary shuts down the same way: configuration, then the runtime (logger,
// metrics, debug server, connection), the targets built and started, work
// until ctx ends (SIGTERM, SIGINT), and the drain — in-flight work, the
// listeners, the connection, the debug server — under the one
// AUTOTRIAGE_SHUTDOWN_TIMEOUT.
func Main(ctx context.Context, program, summary string, ts []*Target, args []string, stdout, stderr io.Writer) error {
	var cfg Config
	if err := LoadFor(&cfg, ts, args, program, summary, stdout, nil); err != nil {
		return err
	}
	return Serve(ctx, &cfg, ts, stderr)
}

// LoadFor loads and validates the configuration of a process running ts
// against an external server: Common, the connection (NATS_*), the
// per-role identities when there are several targets, and the targets'
// parts. env nil means the process's environment.
func LoadFor(cfg *Config, ts []*Target, args []string, program, summary string, w io.Writer, env map[string]string) error {
	process := []any{&cfg.Common, &cfg.NATS}
	if len(ts) > 1 {
		process = append(process, &cfg.Identities)
	}
	if err := Load(Parts(cfg, ts, process...), args, program, summary, w, env); err != nil {
		return err
	}
	return Validate(cfg, ts, true)
}

// Serve runs ts against the external server of cfg.NATS until ctx ends,
// then drains them, all within one shutdown budget.
func Serve(ctx context.Context, cfg *Config, ts []*Target, stderr io.Writer) (err error) {
	rts, err := Connect(ctx, cfg, ts, stderr, service.Options{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, StopAll(rts)) }()
	g, err := Start(ctx, cfg, ts, rts, Hooks{})
	if err != nil {
		return err
	}
	<-g.Done()
	return g.Stop()
}

// errNoTargets guards a process started with nothing to run.
var errNoTargets = errors.New("targets: no target to run")

// Connect starts the runtime of each target against the external server of
// cfg.NATS, one connection per target, each as the target's broker role,
// with the role's seed from AUTOTRIAGE_NATS_NKEY_DIR when it is set. A
// single target without it connects exactly as its stage binary
// (NATS_NKEY_FILE, NATS_CREDS or NATS_USER are its identity); several need
// the directory when the server authenticates, so no identity holds more
// than its role's permissions. Several share the process's logger, metrics
// registry (their series labelled stage=<name>), health, debug server and
// shutdown budget. o is for the first runtime, which serves the debug
// server. On error every runtime started is stopped.
func Connect(ctx context.Context, cfg *Config, ts []*Target, stderr io.Writer, o service.Options) ([]*service.Runtime, error) {
	if len(ts) == 0 {
		return nil, errNoTargets
	}
	if len(ts) == 1 {
		rt, err := service.Start(ctx, ts[0].Name, cfg.Common, withRole(cfg.NATS, ts[0], cfg.Identities), stderr, o)
		if err != nil {
			return nil, err
		}
		return []*service.Runtime{rt}, nil
	}
	if n := cfg.NATS; cfg.Identities.NKeyDir == "" && (n.NKeyFile != "" || n.Creds != "" || n.User != "") {
		return nil, &platform.ConfigError{Var: "AUTOTRIAGE_NATS_NKEY_DIR", Msg: "several targets connect as several broker roles: give the directory of their seeds instead of one identity (NATS_NKEY_FILE, NATS_CREDS, NATS_USER)"}
	}
	var rts []*service.Runtime
	for i, t := range ts {
		if i > 0 {
			first := rts[0]
			o = service.Options{Log: first.Log, Registry: first.Registry, Health: first.Health, Shutdown: first.Shutdown, NoDebugServer: true}
		}
		o.Check = "nats " + t.Name
		rt, err := service.Start(ctx, t.Name, cfg.Common, withRole(cfg.NATS, t, cfg.Identities), stderr, o)
		if err != nil {
			return nil, errors.Join(err, StopAll(rts))
		}
		rts = append(rts, rt)
	}
	for i, rt := range rts {
		rts[i] = rt.Stage(ts[i].Name)
	}
	return rts, nil
}

// withRole is the connection of one target: its role, and its seed from
// the identities' directory when there is one. The admin connects with
// the default inbox, as the trainer and the CLI always have.
func withRole(nats pipeline.Config, t *Target, ids Identities) pipeline.Config {
	if t.Role != pipeline.RoleAdmin {
		nats.Role = t.Role
	}
	if ids.NKeyDir != "" {
		nats.NKeyFile, nats.Creds, nats.User, nats.Password = filepath.Join(ids.NKeyDir, natsauth.SeedFile(t.Role)), "", "", ""
	}
	return nats
}

// StopAll stops runtimes in reverse order, so the one serving the debug
// server (the first) stops last.
func StopAll(rts []*service.Runtime) error {
	var errs []error
	for i := len(rts) - 1; i >= 0; i-- {
		errs = append(errs, rts[i].Stop())
	}
	return errors.Join(errs...)
}

// Group is the started targets of a process.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	units  []*Unit
	mu     sync.Mutex
	err    error
}

// Start builds ts (in the pipeline's order) downstream first, rts[i] the
// runtime of ts[i] (one shared runtime's views, or one per target), then
// runs them all. The first that fails ends the others (Done). On a build
// error what was built is stopped.
func Start(ctx context.Context, cfg *Config, ts []*Target, rts []*service.Runtime, h Hooks) (*Group, error) {
	g := &Group{units: make([]*Unit, len(ts))}
	g.ctx, g.cancel = context.WithCancel(ctx)
	for i := len(ts) - 1; i >= 0; i-- {
		u, err := ts[i].Start(g.ctx, rts[i], cfg, h)
		if err != nil {
			g.cancel()
			if serr := g.stopUnits(); serr != nil {
				return nil, errors.Join(err, serr)
			}
			return nil, err
		}
		g.units[i] = u
	}
	for i, u := range g.units {
		if u.Run == nil {
			continue
		}
		name, run := ts[i].Name, u.Run
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := run(g.ctx); err != nil && g.ctx.Err() == nil {
				g.mu.Lock()
				if g.err == nil {
					g.err = fmt.Errorf("%s: %w", name, err)
				}
				g.mu.Unlock()
				g.cancel()
			}
		}()
	}
	return g, nil
}

// Done is closed when the process is told to stop or a target failed.
func (g *Group) Done() <-chan struct{} { return g.ctx.Done() }

// Stop ends every target's work, waits for it, then stops what the
// targets serve, last built first; it returns the first target's failure.
// Call it once, after Done.
func (g *Group) Stop() error {
	g.cancel()
	g.wg.Wait()
	stopErr := g.stopUnits()
	g.mu.Lock()
	defer g.mu.Unlock()
	return errors.Join(g.err, stopErr)
}

func (g *Group) stopUnits() error {
	var errs []error
	for _, u := range g.units {
		if u != nil && u.Stop != nil {
			errs = append(errs, u.Stop())
		}
	}
	g.units = nil
	return errors.Join(errs...)
}
