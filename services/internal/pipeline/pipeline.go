// Package pipeline is autotriage's only door to NATS JetStream: the topology
// (streams, durable consumers, KV buckets, the model object store) declared
// once and ensured idempotently at start, a publisher that deduplicates by
// message id and waits for the ack, and a consume loop with bounded
// concurrency, heartbeats, retry-after and dead-lettering. Nothing outside
// this package imports jetstream.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autotriage/autotriage/services/internal/platform"
)

// Config is the connection and topology configuration shared by every
// service. Its env tags are read by platform.LoadConfig.
type Config struct {
	URL      string          `env:"NATS_URL" envDefault:"nats://127.0.0.1:4222" help:"NATS server URL(s), comma-separated"`
	Creds    string          `env:"NATS_CREDS" help:"path of a NATS credentials file (JWT and NKey seed)"`
	NKeyFile string          `env:"NATS_NKEY_FILE" help:"path of the NKey seed file of this process's broker user (autotriage secrets nats writes one per role)"`
	User     string          `env:"NATS_USER" help:"broker user name, with NATS_PASSWORD (instead of an NKey)"`
	Password platform.Secret `env:"NATS_PASSWORD" secret:"true" help:"broker user password"`
	CA       string          `env:"NATS_CA" help:"PEM file of the CA that signed the broker's certificate; turns TLS on and verifies the server name"`
	Cert     string          `env:"NATS_CERT" help:"PEM client certificate for mutual TLS (with NATS_KEY)"`
	Key      string          `env:"NATS_KEY" help:"PEM private key of NATS_CERT"`
	// Role is the broker role the process connects as (see Roles): it
	// picks the inbox prefix its identity may subscribe to and the part of
	// the topology it ensures. Set by the process, not by the operator;
	// "" behaves as the admin with the default inbox.
	Role        string
	ConnectWait time.Duration `env:"AUTOTRIAGE_NATS_CONNECT_WAIT" envDefault:"20s" help:"how long to keep trying to reach NATS at start before giving up"`
	Topology    Topology
}

// Topology sizes the streams. Limits retention everywhere: work-queue or
// interest retention would make replay impossible.
type Topology struct {
	MaxAge          time.Duration `env:"AUTOTRIAGE_STREAM_MAX_AGE" envDefault:"168h" help:"how long TICKETS, PREDICTIONS and OUTCOMES keep messages (the replay horizon)"`
	MaxBytes        int64         `env:"AUTOTRIAGE_STREAM_MAX_BYTES" envDefault:"-1" help:"size cap per stream in bytes (-1: unlimited); oldest messages go first"`
	DLQMaxAge       time.Duration `env:"AUTOTRIAGE_DLQ_MAX_AGE" envDefault:"720h" help:"how long dead letters are kept"`
	DLQMaxBytes     int64         `env:"AUTOTRIAGE_DLQ_MAX_BYTES" envDefault:"1073741824" help:"size cap of the DLQ in bytes (oldest dead letters go first), so junk sent at the webhook cannot fill the store; -1: unlimited"`
	Replicas        int           `env:"AUTOTRIAGE_STREAM_REPLICAS" envDefault:"1" help:"stream, KV and object-store replicas (3 on a 3-node cluster)"`
	DuplicateWindow time.Duration `env:"AUTOTRIAGE_STREAM_DUPLICATE_WINDOW" envDefault:"2h" help:"window in which a repeated Nats-Msg-Id is dropped"`
	AckWait         time.Duration `env:"AUTOTRIAGE_ACK_WAIT" envDefault:"30s" help:"how long a consumer may hold a message without a heartbeat before it is redelivered"`
	MaxDeliver      int           `env:"AUTOTRIAGE_MAX_DELIVER" envDefault:"10" help:"deliveries before a message is dead-lettered"`
	MaxAckPending   int           `env:"AUTOTRIAGE_MAX_ACK_PENDING" envDefault:"1000" help:"unacknowledged messages a durable consumer may have outstanding"`
}

// DefaultTopology returns the defaults of Topology (as its env tags state),
// for tests and embedded use.
func DefaultTopology() Topology {
	return Topology{
		MaxAge:          7 * 24 * time.Hour,
		MaxBytes:        -1,
		DLQMaxAge:       30 * 24 * time.Hour,
		DLQMaxBytes:     1 << 30,
		Replicas:        1,
		DuplicateWindow: 2 * time.Hour,
		AckWait:         30 * time.Second,
		MaxDeliver:      10,
		MaxAckPending:   1000,
	}
}

// Validate checks settings that the server would otherwise reject later.
func (t Topology) Validate() error {
	switch {
	case t.Replicas < 1 || t.Replicas > 5:
		return errors.New("AUTOTRIAGE_STREAM_REPLICAS: must be between 1 and 5")
	case t.MaxAge < time.Minute:
		return errors.New("AUTOTRIAGE_STREAM_MAX_AGE: must be at least 1m")
	case t.DuplicateWindow <= 0 || t.DuplicateWindow > t.MaxAge:
		return errors.New("AUTOTRIAGE_STREAM_DUPLICATE_WINDOW: must be positive and at most AUTOTRIAGE_STREAM_MAX_AGE")
	case t.AckWait < time.Second:
		return errors.New("AUTOTRIAGE_ACK_WAIT: must be at least 1s")
	case t.MaxDeliver < 1:
		return errors.New("AUTOTRIAGE_MAX_DELIVER: must be at least 1")
	case t.DLQMaxBytes == 0 || t.DLQMaxBytes < -1:
		return errors.New("AUTOTRIAGE_DLQ_MAX_BYTES: must be positive, or -1 for unlimited")
	case t.MaxAckPending < 1:
		return errors.New("AUTOTRIAGE_MAX_ACK_PENDING: must be at least 1")
	}
	return nil
}

// Stream names.
const (
	StreamTickets     = "TICKETS"
	StreamPredictions = "PREDICTIONS"
	StreamOutcomes    = "OUTCOMES"
	StreamDLQ         = "DLQ"
)

// Durable consumer names; every replica of a stage binds to the same one.
const (
	ConsumerClassifier = "classifier"
	ConsumerWriter     = "writer"
)

// KV buckets and the object store.
const (
	BucketFetcher = "autotriage-fetcher" // polling cursors and the poller lease
	BucketWriter  = "autotriage-writer"  // idempotency records and applied versions
	BucketModels  = "autotriage-models"  // which model is promoted
	// BucketPolicy holds the live triage policy (key "policy") with its
	// history, the trainer's cursor and training requests.
	BucketPolicy = "autotriage-policy"
	ObjectModels = "autotriage-models" // model artifacts
)

// Header names on DLQ messages (and, for the original ones, on every message).
const (
	HeaderStage          = "Autotriage-Stage"
	HeaderError          = "Autotriage-Error"
	HeaderDeliveries     = "Autotriage-Deliveries"
	HeaderOriginalStream = "Autotriage-Original-Stream"
	HeaderOriginalSeq    = "Autotriage-Original-Seq"
	HeaderOriginalSubj   = "Autotriage-Original-Subject"
	HeaderFailedAt       = "Autotriage-Failed-At"
	// HeaderAttempt names the operator's run that re-published a message
	// (dlq-retry:<run>, replay:<run>): a new attempt at the same work, whose
	// results supersede the earlier attempt's instead of being dropped as
	// its duplicates.
	HeaderAttempt       = "Autotriage-Attempt"
	HeaderContentType   = "Content-Type"
	ContentTypeProtobuf = "application/protobuf"
)

// Subject tokens must not contain the separators NATS reserves.
var tokenReplacer = strings.NewReplacer(".", "_", "*", "_", ">", "_", " ", "_", "\t", "_", "\n", "_", "\r", "_")

// Token makes s safe as a single subject token.
func Token(s string) string {
	if s == "" {
		return "_"
	}
	return tokenReplacer.Replace(s)
}

// TicketSubject is where the fetcher publishes a ticket version.
func TicketSubject(system, account string, id int64) string {
	return fmt.Sprintf("tickets.%s.%s.%d", Token(system), Token(account), id)
}

// PredictionSubject is where the classifier publishes a prediction.
func PredictionSubject(system, account string, id int64) string {
	return fmt.Sprintf("predictions.%s.%s.%d", Token(system), Token(account), id)
}

// OutcomeSubject is where the writer publishes an outcome.
func OutcomeSubject(system, account string, id int64) string {
	return fmt.Sprintf("outcomes.%s.%s.%d", Token(system), Token(account), id)
}

// DLQSubject is where a stage dead-letters a message about an account.
func DLQSubject(stage, account string) string {
	return "dlq." + Token(stage) + "." + Token(account)
}

// accountOf extracts the account token of a tickets/predictions/outcomes subject.
func accountOf(subject string) string {
	parts := strings.Split(subject, ".")
	if len(parts) >= 3 {
		return parts[2]
	}
	return "_"
}

// Conn is a NATS connection with its JetStream context. It reconnects for
// ever once established; Ready reports the current state for /readyz.
type Conn struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	log      *slog.Logger
	topology Topology
	ensured  atomic.Bool
	role     string
	budget   ShutdownBudget
}

// ShutdownBudget is the process's shutdown deadline as the consume loops
// need it (platform.Shutdown).
type ShutdownBudget interface {
	// Deadlines starts the shutdown if it has not started, and returns
	// until when in-flight handlers may run and when the shutdown as a
	// whole must be over.
	Deadlines() (work, end time.Time)
}

// BoundShutdown makes every consume loop on c finish its drain within b:
// in-flight handlers are cancelled at b's work deadline, and the loop
// returns by its end deadline even if a handler ignores the cancellation.
// Call it before the first Consume.
func (c *Conn) BoundShutdown(b ShutdownBudget) { c.budget = b }

// Connect dials NATS, retrying until cfg.ConnectWait passes, then keeps the
// connection alive through server restarts (unbounded reconnects, buffered
// publishes are not used: publishes wait for their ack instead).
func Connect(ctx context.Context, cfg Config, name string, log *slog.Logger) (*Conn, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ReconnectBufSize(-1), // fail fast while disconnected; callers retry with acks
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			} else {
				log.Info("nats disconnected")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats async error", "err", err, "subject", subj)
		}),
	}
	auth, err := cfg.authOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, auth...)
	wait := cfg.ConnectWait
	if wait <= 0 {
		wait = time.Second
	}
	deadline := time.Now().Add(wait)
	var nc *nats.Conn
	for {
		nc, err = nats.Connect(cfg.URL, opts...)
		if err == nil {
			break
		}
		if isAuthError(err) {
			// Wrong credentials do not get better by waiting.
			return nil, fmt.Errorf("NATS at %s refused this process's credentials (%s): %w", redactURL(cfg.URL), cfg.identity(), err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("cannot reach NATS at %s after %s: %w", redactURL(cfg.URL), wait, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to NATS at %s: %w", redactURL(cfg.URL), ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	return &Conn{nc: nc, js: js, log: log, topology: cfg.Topology, role: cfg.Role}, nil
}

// authOptions turns the credential and TLS settings into connection
// options. At most one kind of credential may be set: guessing which one
// wins would hide a misconfiguration.
func (cfg Config) authOptions() ([]nats.Option, error) {
	opts := []nats.Option{nats.CustomInboxPrefix(InboxPrefix(cfg.Role))}
	kinds := 0
	for _, set := range []bool{cfg.Creds != "", cfg.NKeyFile != "", cfg.User != "" || cfg.Password.IsSet()} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		return nil, errors.New("NATS_CREDS, NATS_NKEY_FILE and NATS_USER/NATS_PASSWORD: set only one kind of broker credential")
	}
	switch {
	case cfg.Creds != "":
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	case cfg.NKeyFile != "":
		opt, err := nats.NkeyOptionFromSeed(cfg.NKeyFile)
		if err != nil {
			// The nkeys error never includes the seed, only the path.
			return nil, fmt.Errorf("NATS_NKEY_FILE: %w", err)
		}
		opts = append(opts, opt)
	case cfg.User != "" || cfg.Password.IsSet():
		if cfg.User == "" || !cfg.Password.IsSet() {
			return nil, errors.New("NATS_USER and NATS_PASSWORD: set both or neither")
		}
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password.Reveal()))
	}
	if (cfg.Cert == "") != (cfg.Key == "") {
		return nil, errors.New("NATS_CERT and NATS_KEY: set both or neither")
	}
	if cfg.Cert != "" && cfg.CA == "" {
		return nil, errors.New("NATS_CERT: mutual TLS needs NATS_CA too (the CA that signed the broker's certificate)")
	}
	if cfg.CA != "" {
		for _, f := range []struct{ name, path string }{{"NATS_CA", cfg.CA}, {"NATS_CERT", cfg.Cert}, {"NATS_KEY", cfg.Key}} {
			if f.path == "" {
				continue
			}
			if _, err := os.Stat(f.path); err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
		}
		// RootCAs turns TLS on (1.2 at least); the server's name is verified
		// against the URL's host, always.
		opts = append(opts, nats.RootCAs(cfg.CA))
		if cfg.Cert != "" {
			opts = append(opts, nats.ClientCert(cfg.Cert, cfg.Key))
		}
	}
	return opts, nil
}

// identity describes the credential in use for error messages, without
// any secret.
func (cfg Config) identity() string {
	role := cfg.Role
	if role == "" {
		role = "no role"
	}
	switch {
	case cfg.Creds != "":
		return "role " + role + ", credentials file " + cfg.Creds
	case cfg.NKeyFile != "":
		return "role " + role + ", NKey seed file " + cfg.NKeyFile
	case cfg.User != "":
		return "role " + role + ", user " + cfg.User
	}
	return "role " + role + ", no credentials: set NATS_NKEY_FILE, NATS_CREDS or NATS_USER/NATS_PASSWORD"
}

// isAuthError reports a refusal of the credentials (as opposed to a broker
// that is not up yet).
func isAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) ||
		strings.Contains(strings.ToLower(err.Error()), "authorization violation")
}

// redactURL drops user info from NATS URLs so passwords never reach logs.
func redactURL(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			scheme := ""
			if s := strings.Index(p, "://"); s >= 0 && s < at {
				scheme = p[:s+3]
			}
			parts[i] = scheme + "[redacted]@" + p[at+1:]
		}
	}
	return strings.Join(parts, ",")
}

// Ready is nil when the connection is up and the topology has been ensured.
func (c *Conn) Ready() error {
	if !c.nc.IsConnected() {
		return errors.New("not connected to NATS")
	}
	if !c.ensured.Load() {
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

// TopologyConfig returns the stream settings this connection ensures.
func (c *Conn) TopologyConfig() Topology { return c.topology }
