//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
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

// adminAuth is the test's own connection credential.
func (s *stack) adminAuth() nats.Option {
	opt, err := nats.NkeyOptionFromSeed(filepath.Join(s.keys.dir, "admin.nk"))
	if err != nil {
		s.t.Fatalf("admin seed: %v", err)
	}
	return opt
}
