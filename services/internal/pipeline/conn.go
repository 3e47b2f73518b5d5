package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// link is the connection every role works through.
type link struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger
}

// Conn is a NATS connection with its JetStream context. It reconnects for
// ever once established; Ready reports the current state for /readyz.
//
// Each role a process plays on the connection is a type of its own, and
// Conn embeds them all, so conn.Publish is conn.Publisher.Publish: a
// package that needs one role can take that type (or an interface of its
// methods) instead of the whole connection.
type Conn struct {
	*link
	*Declarer     // topology: EnsureTopology, HasTopology, TopologyConfig
	*Publisher    // Publish
	*Consumer     // Consume, BoundShutdown
	*DeadLetterer // DeadLetterRaw, WatchMaxDeliveries
	*Stores       // KV, Objects
	*Reader       // Read, CountRange, Follow, GetMsg, Subscribe
	*Stats        // StreamStats, ConsumerStats, SubjectCounts, DLQDepth, WatchLag, WatchStreams
	*Admin        // DeleteMsg, PurgeSubject
}

func newConn(nc *nats.Conn, js jetstream.JetStream, log *slog.Logger, cfg Config) *Conn {
	l := &link{nc: nc, js: js, log: log}
	pub := &Publisher{link: l}
	dead := &DeadLetterer{link: l, pub: pub}
	stats := &Stats{link: l}
	return &Conn{
		link:         l,
		Declarer:     &Declarer{link: l, topology: cfg.Topology, role: cfg.Role},
		Publisher:    pub,
		Consumer:     &Consumer{link: l, dead: dead},
		DeadLetterer: dead,
		Stores:       &Stores{link: l},
		Reader:       &Reader{link: l},
		Stats:        stats,
		Admin:        &Admin{link: l, stats: stats},
	}
}

// Ready is nil when the connection is up and the topology has been ensured.
func (c *Conn) Ready() error {
	if !c.nc.IsConnected() {
		return errors.New("not connected to NATS")
	}
	if !c.Declarer.ensured.Load() {
		return errors.New("JetStream topology not ensured yet")
	}
	return nil
}

// Drain lets subscriptions finish and flushes pending publishes, then
// closes; when ctx ends first (or has ended), it closes at once, so Drain
// returns by ctx's deadline.
func (c *Conn) Drain(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		c.nc.Close()
		return fmt.Errorf("drain NATS connection: closed without draining: %w", err)
	}
	done := make(chan struct{})
	c.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
	if err := c.nc.Drain(); err != nil {
		c.nc.Close()
		return fmt.Errorf("drain NATS connection: %w", err)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		c.nc.Close()
		return fmt.Errorf("drain NATS connection: %w", ctx.Err())
	}
}

// Close closes the connection at once.
func (c *Conn) Close() { c.nc.Close() }
