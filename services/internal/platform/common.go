package platform

import (
	"log/slog"
	"time"
)

// Common is the configuration every service shares.
type Common struct {
	LogLevel        string        `env:"AUTOTRIAGE_LOG_LEVEL" envDefault:"info" help:"log level: debug, info, warn or error"`
	DebugAddr       string        `env:"AUTOTRIAGE_DEBUG_ADDR" envDefault:"127.0.0.1:9090" help:"address of the debug server (/healthz, /readyz, /metrics, /version, and /debug/pprof with AUTOTRIAGE_PPROF); loopback unless set, e.g. :9090 where Prometheus or a probe must reach it"`
	Pprof           bool          `env:"AUTOTRIAGE_PPROF" envDefault:"false" help:"serve /debug/pprof/ on the debug server (404 otherwise): profiles reveal memory contents and cost CPU, so they are opt-in"`
	ShutdownTimeout time.Duration `env:"AUTOTRIAGE_SHUTDOWN_TIMEOUT" envDefault:"25s" help:"one deadline for the whole shutdown after SIGTERM (consumer drain, webhook server, NATS drain, debug server): in-flight work is cancelled a fifth (at most 2s) before it, and the process exits by it; keep it below the grace period of Docker (stop_grace_period) and Kubernetes (terminationGracePeriodSeconds)"`
}

// Validate checks the shared settings.
func (c Common) Validate() error {
	if _, err := ParseLevel(c.LogLevel); err != nil {
		return &ConfigError{Var: "AUTOTRIAGE_LOG_LEVEL", Msg: "must be debug, info, warn or error"}
	}
	if c.ShutdownTimeout <= 0 {
		return &ConfigError{Var: "AUTOTRIAGE_SHUTDOWN_TIMEOUT", Msg: "must be positive"}
	}
	return nil
}

// Level returns the parsed log level (info when invalid; Validate reports that).
func (c Common) Level() slog.Level {
	l, err := ParseLevel(c.LogLevel)
	if err != nil {
		return slog.LevelInfo
	}
	return l
}
