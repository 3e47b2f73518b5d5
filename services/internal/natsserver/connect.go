package natsserver

import (
	"context"
	"time"

	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// ConnectTest connects to srv with the given topology (the zero value means
// pipeline.DefaultTopology), ensures it, and closes the connection when the
// test ends: the start of every integration test against the pipeline.
func ConnectTest(t TB, srv *Server, top pipeline.Topology) *pipeline.Conn {
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
