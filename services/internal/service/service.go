// Package service is the process around a stage: logger, metrics registry,
// debug server, the NATS connection with its topology, and the drain at the
// end. The per-stage binaries and `autotriage up` share it, so a stage runs
// the same way alone in a container or beside the others in one process.
package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
)

// Runtime is what a stage gets from its process.
type Runtime struct {
	Name     string
	Log      *slog.Logger
	Registry *prometheus.Registry
	// Registerer is where the stage registers its metrics: the Registry
	// itself, or a view of it labelled with the stage's name when several
	// stages share one process (see Stage).
	Registerer prometheus.Registerer
	Health     *platform.Health
	Conn       *pipeline.Conn
	Metrics    *pipeline.Metrics
	Debug      *platform.Server
	// Shutdown is the process's one shutdown budget: every phase of the
	// stop (the stages' drains, the fetcher's webhook server, Stop) waits
	// on its deadline, never on a timeout of its own.
	Shutdown *platform.Shutdown
}

// Options select what Start does beyond the basics.
type Options struct {
	// Log, when set, is used instead of a new JSON logger on stderr.
	Log *slog.Logger
	// Registry, when set, is shared (all stages in one process).
	Registry *prometheus.Registry
	// Health, when set, is shared.
	Health *platform.Health
	// NoDebugServer skips the debug listener (its owner serves it).
	NoDebugServer bool
	// Shutdown, when set, is the budget shared with the rest of the process
	// (`autotriage up` starts listeners before the runtime); otherwise the
	// runtime's own starts when ctx ends and lasts common.ShutdownTimeout.
	Shutdown *platform.Shutdown
	// Check names the readiness check of the connection ("nats" unless
	// set): several runtimes sharing one Health each need their own.
	Check string
}

// Start brings up the logger, metrics, debug server and NATS connection, and
// ensures the JetStream topology. On error everything started is stopped.
func Start(ctx context.Context, name string, common platform.Common, nats pipeline.Config, stderr io.Writer, o Options) (*Runtime, error) {
	rt := &Runtime{Name: name, Log: o.Log, Registry: o.Registry, Health: o.Health, Shutdown: o.Shutdown}
	if rt.Shutdown == nil {
		rt.Shutdown = platform.NewShutdown(ctx, common.ShutdownTimeout)
	}
	if rt.Log == nil {
		rt.Log = platform.NewLogger(stderr, common.Level(), name)
	}
	if rt.Registry == nil {
		rt.Registry = platform.NewRegistry(name)
	}
	if rt.Health == nil {
		rt.Health = platform.NewHealth()
	}
	rt.Registerer = rt.Registry
	if !o.NoDebugServer {
		dbg, err := platform.Listen("debug", common.DebugAddr, platform.DebugHandler(rt.Registry, rt.Health, common.Pprof), rt.Log)
		if err != nil {
			return nil, err
		}
		rt.Debug = dbg
	}
	if _, stage := pipeline.StageUses(name); stage && nats.Role == "" {
		// A stage binary connects as its own broker role.
		nats.Role = name
	}
	check := o.Check
	if check == "" {
		check = "nats"
	}
	rt.Health.Check(check, func() error { return errors.New("connecting to NATS") })
	conn, err := pipeline.Connect(ctx, nats, "autotriage-"+name, rt.Log)
	if err != nil {
		rt.stopDebug()
		return nil, err
	}
	rt.Conn = conn
	conn.BoundShutdown(rt.Shutdown)
	rt.Health.Check(check, conn.Ready)
	rt.Metrics = pipeline.NewMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"process": name}, rt.Registry))
	if err := conn.EnsureTopologyRetry(ctx); err != nil {
		conn.Close()
		rt.stopDebug()
		return nil, err
	}
	rt.Log.Info("started", "nats", "connected", "topology", "ensured")
	return rt, nil
}

// Stage returns a view of the runtime for one of several stages sharing the
// process: same connection, registry and health, with metrics labelled
// stage=<name> (so two Freshdesk clients can register the same series) and
// logs tagged with the stage.
func (rt *Runtime) Stage(name string) *Runtime {
	v := *rt
	v.Log = rt.Log.With("stage", name)
	v.Registerer = prometheus.WrapRegistererWith(prometheus.Labels{"stage": name}, rt.Registry)
	return &v
}

// WatchConsumer keeps the lag gauges of a durable consumer fresh and copies
// messages that exhaust their deliveries to the DLQ, until ctx ends.
func (rt *Runtime) WatchConsumer(ctx context.Context, stage, stream, durable string) {
	go rt.Conn.WatchLag(ctx, stream, durable, 10*time.Second, rt.Metrics)
	stop, err := rt.Conn.WatchMaxDeliveries(ctx, stage, stream, durable, rt.Metrics)
	if err != nil {
		rt.Log.Warn("max-deliveries advisories not watched", "err", err)
		return
	}
	go func() { <-ctx.Done(); stop() }()
}

// WatchStreams keeps the stream gauges (DLQ depth included) fresh until ctx
// ends, for a stage that consumes nothing (the fetcher); WatchConsumer does
// it too.
func (rt *Runtime) WatchStreams(ctx context.Context) {
	go rt.Conn.WatchStreams(ctx, 10*time.Second, rt.Metrics)
}

// Stop drains the NATS connection, then stops the debug server, both within
// what is left of the shutdown budget (closing at its deadline instead of
// waiting longer). Call it after every stage's Run has returned.
func (rt *Runtime) Stop() error {
	ctx, cancel := rt.Shutdown.Context()
	defer cancel()
	var errs []error
	if rt.Conn != nil {
		if err := rt.Conn.Drain(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if rt.Debug != nil {
		if err := rt.Debug.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	rt.Log.Info("stopped", "shutdown_took", time.Since(rt.Shutdown.Begun()).Round(time.Millisecond), "budget", rt.Shutdown.Budget())
	return errors.Join(errs...)
}

func (rt *Runtime) stopDebug() {
	if rt.Debug != nil {
		ctx, cancel := rt.Shutdown.Context()
		defer cancel()
		_ = rt.Debug.Shutdown(ctx)
	}
}
