// Package natstest starts embedded NATS servers for tests and connects to
// them: test support only, kept out of the production packages so that no
// binary carries it.
package natstest

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/autotriage/autotriage/services/internal/natsauth"
	"github.com/autotriage/autotriage/services/internal/natsserver"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// TB is the subset of testing.TB the helpers need.
type TB interface {
	Helper()
	TempDir() string
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// Start starts a server for a test on a random port with a temporary
// store, and stops it when the test ends. AUTOTRIAGE_NATS_LOGS=1 shows the
// server's log.
func Start(t TB) *natsserver.Server {
	t.Helper()
	s, err := natsserver.Start(natsserver.Options{StoreDir: t.TempDir(), Logs: os.Getenv("AUTOTRIAGE_NATS_LOGS") != ""})
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Connect connects to srv with the given topology (the zero value means
// pipeline.DefaultTopology), ensures it, and closes the connection when the
// test ends: the start of every integration test against the pipeline.
func Connect(t TB, srv *natsserver.Server, top pipeline.Topology) *pipeline.Conn {
	t.Helper()
	if top == (pipeline.Topology{}) {
		top = pipeline.DefaultTopology()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pipeline.Connect(ctx, pipeline.Config{URL: srv.URL(), ConnectWait: 5 * time.Second, Topology: top}, "test", nil)
	if err != nil {
		t.Fatalf("connect to embedded NATS: %v", err)
	}
	t.Cleanup(c.Close)
	if err := c.EnsureTopology(ctx); err != nil {
		t.Fatalf("ensure topology: %v", err)
	}
	return c
}

// AuthServer is an embedded server that requires the shipped authorization
// (natsauth.Render with keys made for the test), and the seeds to connect as
// each role.
type AuthServer struct {
	*natsserver.Server
	KeysDir string
}

// StartAuth starts a server for a test with autotriage's account and
// per-role permissions, exactly as shipped, plus extra configuration text
// (a tls block); it stops when the test ends.
func StartAuth(t TB, extra string) *AuthServer {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nkeys")
	keys, err := natsauth.GenerateKeys(dir)
	if err != nil {
		t.Fatalf("broker keys: %v", err)
	}
	conf, err := natsauth.Render(keys)
	if err != nil {
		t.Fatalf("broker authorization: %v", err)
	}
	s, err := natsserver.Start(natsserver.Options{StoreDir: t.TempDir(), Logs: os.Getenv("AUTOTRIAGE_NATS_LOGS") != "", Config: conf + extra})
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	t.Cleanup(s.Stop)
	return &AuthServer{Server: s, KeysDir: dir}
}

// SeedFile is the path of a role's seed.
func (a *AuthServer) SeedFile(role string) string {
	return filepath.Join(a.KeysDir, natsauth.SeedFile(role))
}

// Config is the connection configuration of a role.
func (a *AuthServer) Config(role string, top pipeline.Topology) pipeline.Config {
	if top == (pipeline.Topology{}) {
		top = pipeline.DefaultTopology()
	}
	return pipeline.Config{URL: a.URL(), NKeyFile: a.SeedFile(role), Role: role, ConnectWait: 5 * time.Second, Topology: top}
}

// ConnectAs connects as role and ensures the role's part of the topology,
// closing when the test ends.
func (a *AuthServer) ConnectAs(t TB, role string, top pipeline.Topology) *pipeline.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pipeline.Connect(ctx, a.Config(role, top), "test-"+role, nil)
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(c.Close)
	if err := c.EnsureTopology(ctx); err != nil {
		t.Fatalf("ensure topology as %s: %v", role, err)
	}
	return c
}
