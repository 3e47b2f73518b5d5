//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/testcontainers/testcontainers-go/wait"
)

// seedMount is where a container finds its broker seed (NATS_NKEY_FILE).
const seedMount = "/run/secrets/nats.nk"

// brokerRoles are the users of the shipped NATS authorization
// (deploy/nats/auth.conf).
var brokerRoles = []string{"fetcher", "classifier", "writer", "admin", "monitor"}

// brokerKeys are the seeds of a stack's broker users, in a directory the
// containers bind-mount, as `make up` lays them out.
type brokerKeys struct {
	dir string
	pub map[string]string
}

func newBrokerKeys(t *testing.T) brokerKeys {
	t.Helper()
	k := brokerKeys{dir: t.TempDir(), pub: map[string]string{}}
	if err := os.Chmod(k.dir, 0o755); err != nil { // the containers run as another user
		t.Fatal(err)
	}
	for _, r := range brokerRoles {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := kp.Seed()
		pub, _ := kp.PublicKey()
		if err := os.WriteFile(filepath.Join(k.dir, r+".nk"), seed, 0o644); err != nil {
			t.Fatal(err)
		}
		k.pub[r] = pub
	}
	return k
}

// serverEnv gives the NATS server the public keys.
func (k brokerKeys) serverEnv() map[string]string {
	env := map[string]string{}
	for r, p := range k.pub {
		env["AUTOTRIAGE_NKEY_"+strings.ToUpper(r)] = p
	}
	return env
}

// mount binds a role's seed at seedMount.
func (k brokerKeys) mount(role string) string {
	return filepath.Join(k.dir, role+".nk") + ":" + seedMount + ":ro"
}

// tlsMount is where a container finds the CA and the client certificate.
const tlsMount = "/run/secrets/nats-tls"

// mounts are the credential files a container of role gets.
func (s *stack) mounts(role string) []string {
	m := []string{s.keys.mount(role)}
	if s.tlsDir != "" {
		for _, f := range []string{"ca.pem", "client.pem", "client-key.pem"} {
			m = append(m, filepath.Join(s.tlsDir, f)+":"+tlsMount+"/"+f+":ro")
		}
	}
	return m
}

// makeTLS creates the CA and certificates with the CLI image's
// `autotriage secrets tls`, exactly as an operator does, and returns the
// directory.
func (s *stack) makeTLS(ctx context.Context) string {
	dir := s.t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil { // the CLI runs as uid 65532
		s.t.Fatal(err)
	}
	c, err := s.run(ctx, "tlsgen", image(images["cli"]), nil,
		[]string{"secrets", "tls", "--dir", "/out/tls", "--hosts", "nats,localhost,127.0.0.1"},
		wait.ForExit().WithExitTimeout(time.Minute), nil, true, dir+":/out")
	if err != nil {
		s.t.Fatalf("autotriage secrets tls: %v", err)
	}
	if st, err := c.State(ctx); err != nil || st.ExitCode != 0 {
		s.t.Fatalf("autotriage secrets tls failed (%v): %s", err, logsOf(c))
	}
	return filepath.Join(dir, "tls")
}

// adminAuth is the test's own connection credential (and, with TLS, the
// CA and client certificate).
func (s *stack) adminAuth() nats.Option {
	opts := []nats.Option{}
	opt, err := nats.NkeyOptionFromSeed(filepath.Join(s.keys.dir, "admin.nk"))
	if err != nil {
		s.t.Fatalf("admin seed: %v", err)
	}
	opts = append(opts, opt)
	if s.tlsDir != "" {
		opts = append(opts, nats.RootCAs(filepath.Join(s.tlsDir, "ca.pem")),
			nats.ClientCert(filepath.Join(s.tlsDir, "client.pem"), filepath.Join(s.tlsDir, "client-key.pem")))
	}
	return func(o *nats.Options) error {
		for _, opt := range opts {
			if err := opt(o); err != nil {
				return err
			}
		}
		return nil
	}
}
