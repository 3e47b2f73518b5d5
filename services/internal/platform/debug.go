package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health collects readiness checks. A service is live as long as it serves
// /healthz; it is ready only when every registered check passes (for the
// stages: connected to NATS and the topology ensured).
type Health struct {
	mu     sync.RWMutex
	checks map[string]func() error
}

// NewHealth returns an empty set of readiness checks (ready by default).
func NewHealth() *Health { return &Health{checks: map[string]func() error{}} }

// Check registers or replaces a readiness check.
func (h *Health) Check(name string, fn func() error) {
	h.mu.Lock()
	h.checks[name] = fn
	h.mu.Unlock()
}

// Ready runs every check and returns the failures by name.
func (h *Health) Ready() map[string]string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	failed := map[string]string{}
	for name, fn := range h.checks {
		if err := fn(); err != nil {
			failed[name] = err.Error()
		}
	}
	return failed
}

// NewRegistry returns a Prometheus registry with the Go runtime, process and
// build-info collectors, so every service exposes the same baseline.
func NewRegistry(service string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bi := Build()
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "autotriage_build_info",
		Help:        "Build information of the running binary; always 1.",
		ConstLabels: prometheus.Labels{"service": service, "version": bi.Version, "revision": bi.Revision, "goversion": bi.GoVersion},
	})
	info.Set(1)
	reg.MustRegister(info)
	return reg
}

// DebugHandler serves /healthz, /readyz, /metrics, /version and, when pprof
// is true (AUTOTRIAGE_PPROF), /debug/pprof/; without it those paths are 404.
// It is meant for an operator-only port, never the public one: a heap
// profile holds whatever was in memory, tickets and keys included.
func DebugHandler(reg prometheus.Gatherer, health *Health, pprofOn bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		failed := health.Ready()
		w.Header().Set("Content-Type", "application/json")
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			names := make([]string, 0, len(failed))
			for n := range failed {
				names = append(names, n)
			}
			sort.Strings(names)
			_ = json.NewEncoder(w).Encode(map[string]any{"ready": false, "failed": failed, "checks": names})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": true})
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Build())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if pprofOn {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Server is an HTTP server with the timeouts every listener of ours needs.
type Server struct {
	Name string
	srv  *http.Server
	ln   net.Listener
	log  *slog.Logger
	errc chan error
	// abort cancels the context of every request, for a shutdown whose
	// deadline passed with requests still running.
	abort context.CancelFunc
}

// Listen binds addr (":0" picks a free port) and serves h in the background.
func Listen(name, addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s server: listen on %s: %w", name, addr, err)
	}
	base, abort := context.WithCancel(context.Background())
	s := &Server{
		Name: name,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       60 * time.Second,
			WriteTimeout:      120 * time.Second, // pprof profiles run for 30 s by default
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
			BaseContext:       func(net.Listener) context.Context { return base },
		},
		ln:    ln,
		log:   log,
		errc:  make(chan error, 1),
		abort: abort,
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.errc <- err
	}()
	log.Info("listening", "server", name, "addr", ln.Addr().String())
	return s, nil
}

// Addr is the bound address, useful when listening on ":0".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx ends. Requests still running then have their context cancelled
// and their connections closed, so Shutdown returns by ctx's deadline.
func (s *Server) Shutdown(ctx context.Context) error {
	defer s.abort()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.abort()
		_ = s.srv.Close()
		s.log.Warn("requests still running at the shutdown deadline; cancelled", "server", s.Name)
		return fmt.Errorf("%s server: shutdown: %w", s.Name, err)
	}
	return <-s.errc
}
