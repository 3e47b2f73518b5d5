// Package natsserver runs an embedded NATS server with JetStream: the broker
// of `autotriage up` on a machine without Docker, and of every integration
// test. It can be stopped and started again on the same port and store, which
// is how tests prove that the stages survive a broker restart.
package natsserver

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure an embedded server.
type Options struct {
	// Host to bind; default 127.0.0.1.
	Host string
	// Port to bind; 0 picks a free one, kept across restarts.
	Port int
	// StoreDir holds JetStream data; required.
	StoreDir string
	// MaxMemory and MaxStore bound JetStream resources (0: server defaults).
	MaxMemory int64
	MaxStore  int64
	// MonitorPort enables the HTTP monitoring endpoint when > 0 (-1 picks a free one).
	MonitorPort int
	// SyncAlways fsyncs every write (slower, survives power loss).
	SyncAlways bool
	// Logs sends the server's own log lines to stderr.
	Logs bool
	// Config is NATS configuration text applied before the options above
	// (which win): the authorization block of natsauth.Render, a tls block.
	Config string
}

// Server is an embedded NATS server that can be restarted in place.
type Server struct {
	mu   sync.Mutex
	opts Options
	srv  *server.Server

	vmu        sync.Mutex
	violations []string
}

// Start starts a server and waits until it accepts connections.
func Start(opts Options) (*Server, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("natsserver: StoreDir is required")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		p, err := freePort(opts.Host)
		if err != nil {
			return nil, err
		}
		opts.Port = p
	}
	s := &Server{opts: opts}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	// The server reports a busy port only in its log and then never becomes
	// ready; check first so the caller hears why at once.
	if l, err := net.Listen("tcp", net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))); err != nil {
		return fmt.Errorf("natsserver: cannot listen on %s:%d: %w", s.opts.Host, s.opts.Port, err)
	} else {
		l.Close()
	}
	o := &server.Options{}
	if s.opts.Config != "" {
		if err := o.ProcessConfigString(s.opts.Config); err != nil {
			return fmt.Errorf("natsserver: configuration: %w", err)
		}
	}
	o.ServerName = "autotriage-embedded"
	o.Host, o.Port = s.opts.Host, s.opts.Port
	o.JetStream, o.StoreDir = true, s.opts.StoreDir
	o.JetStreamMaxMemory, o.JetStreamMaxStore = s.opts.MaxMemory, s.opts.MaxStore
	o.SyncAlways = s.opts.SyncAlways
	o.NoSigs = true
	o.NoLog = false // the logger below records permission violations
	o.MaxPayload = 8 << 20
	if s.opts.MonitorPort != 0 {
		o.HTTPHost = s.opts.Host
		o.HTTPPort = s.opts.MonitorPort
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return fmt.Errorf("natsserver: configure: %w", err)
	}
	var next server.Logger
	if s.opts.Logs {
		srv.ConfigureLogger()
		next = srv.Logger()
	}
	srv.SetLoggerV2(&recorder{s: s, next: next}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("natsserver: not ready on %s:%d within 30s", s.opts.Host, s.opts.Port)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		return errors.New("natsserver: JetStream did not start")
	}
	s.srv = srv
	return nil
}

// URL is the client URL, stable across restarts.
func (s *Server) URL() string {
	return "nats://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// MonitorURL is the HTTP monitoring URL, or "" when disabled.
func (s *Server) MonitorURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil || s.opts.MonitorPort == 0 {
		return ""
	}
	addr := s.srv.MonitorAddr()
	if addr == nil {
		return ""
	}
	return "http://" + addr.String()
}

// Violations returns the permission and authorization violations the
// server has logged since it started: the evidence, in tests, that a
// client tried something its identity may not do.
func (s *Server) Violations() []string {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	return slices.Clone(s.violations)
}

// recorder keeps the server's violation lines and passes every line on.
type recorder struct {
	s    *Server
	next server.Logger
}

func (r *recorder) keep(format string, v []any) {
	if line := fmt.Sprintf(format, v...); strings.Contains(line, "Violation") {
		r.s.vmu.Lock()
		if len(r.s.violations) < 1000 {
			r.s.violations = append(r.s.violations, line)
		}
		r.s.vmu.Unlock()
	}
}

func (r *recorder) Noticef(format string, v ...any) {
	if r.next != nil {
		r.next.Noticef(format, v...)
	}
}
func (r *recorder) Warnf(format string, v ...any) {
	r.keep(format, v)
	if r.next != nil {
		r.next.Warnf(format, v...)
	}
}
func (r *recorder) Fatalf(format string, v ...any) {
	if r.next != nil {
		r.next.Fatalf(format, v...)
	}
}
func (r *recorder) Errorf(format string, v ...any) {
	r.keep(format, v)
	if r.next != nil {
		r.next.Errorf(format, v...)
	}
}
func (r *recorder) Debugf(format string, v ...any) {
	if r.next != nil {
		r.next.Debugf(format, v...)
	}
}
func (r *recorder) Tracef(format string, v ...any) {
	if r.next != nil {
		r.next.Tracef(format, v...)
	}
}

// Stop shuts the server down and waits for it; the store stays on disk.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart starts a stopped server again on the same port and store.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("natsserver: already running")
	}
	// The port may linger in TIME_WAIT for a moment on some kernels; retry briefly.
	var err error
	for range 50 {
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Running reports whether the server is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv != nil && s.srv.Running()
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("natsserver: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
