package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
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

// Connect dials NATS, retrying every half second until cfg.ConnectWait
// passes, then keeps the connection alive through server restarts
// (unbounded reconnects, buffered publishes are not used: publishes wait
// for their ack instead).
func Connect(ctx context.Context, cfg Config, name string, log *slog.Logger) (*Conn, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts, err := cfg.options(name, log)
	if err != nil {
		return nil, err
	}
	wait := cfg.ConnectWait
	if wait <= 0 {
		wait = time.Second
	}
	nc, err := backoff.Retry(ctx, func() (*nats.Conn, error) {
		nc, err := nats.Connect(cfg.URL, opts...)
		if err != nil && isAuthError(err) {
			// Wrong credentials do not get better by waiting.
			return nil, backoff.Permanent(fmt.Errorf("NATS at %s refused this process's credentials (%s): %w", redactURL(cfg.URL), cfg.identity(), err))
		}
		return nc, err
	}, backoff.WithBackOff(backoff.NewConstantBackOff(500*time.Millisecond)), backoff.WithMaxElapsedTime(wait))
	switch {
	case err == nil:
	case isAuthError(err):
		return nil, err
	case ctx.Err() != nil:
		return nil, fmt.Errorf("connect to NATS at %s: %w", redactURL(cfg.URL), ctx.Err())
	default:
		return nil, fmt.Errorf("cannot reach NATS at %s after %s: %w", redactURL(cfg.URL), wait, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	return newConn(nc, js, log, cfg), nil
}

// options are the connection options: reconnect for ever, log connection
// changes, and authenticate as cfg says.
func (cfg Config) options(name string, log *slog.Logger) ([]nats.Option, error) {
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
	return append(opts, auth...), nil
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
