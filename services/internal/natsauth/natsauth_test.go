package natsauth_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/natsauth"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

var update = flag.Bool("update", false, "rewrite the shipped authorization file from natsauth.Render")

// shippedAuth is the authorization block every shipped NATS configuration
// includes.
const shippedAuth = "../../../deploy/nats/auth.conf"

func TestShippedAuthorizationIsRendered(t *testing.T) {
	want, err := natsauth.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(shippedAuth, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(shippedAuth)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s differs from natsauth.Render; run go test ./internal/natsauth -run TestShipped -update", shippedAuth)
	}
}

// The shipped server configurations load with the keys in the environment
// and refuse to load without them (a broker without users would be open).
func TestShippedConfigsNeedTheKeys(t *testing.T) {
	confs, _ := filepath.Glob("../../../deploy/nats/*.conf")
	cluster, _ := filepath.Glob("../../../deploy/nats/cluster/*.conf")
	confs = append(confs, cluster...)
	var checked int
	for _, c := range confs {
		if filepath.Base(c) == "auth.conf" {
			continue
		}
		b, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(c) == "nats-tls.conf" {
			// nats.conf plus a tls block (whose files exist only in the
			// container); nats.conf is checked on its own.
			if !strings.Contains(string(b), `include "nats.conf"`) {
				t.Errorf("%s does not include nats.conf", c)
			}
			continue
		}
		if !strings.Contains(string(b), "auth.conf") {
			t.Errorf("%s does not include auth.conf: it would run without authorization", c)
			continue
		}
		checked++
		t.Run(filepath.Base(c), func(t *testing.T) {
			// As in the image: the configuration beside auth.conf in /etc/nats.
			dir := t.TempDir()
			auth, err := os.ReadFile(shippedAuth)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "auth.conf"), auth, 0o644); err != nil {
				t.Fatal(err)
			}
			c := filepath.Join(dir, "nats.conf")
			if err := os.WriteFile(c, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := server.ProcessConfigFile(c); err == nil {
				t.Fatalf("%s loaded without AUTOTRIAGE_NKEY_* in the environment", c)
			}
			keys, err := natsauth.GenerateKeys(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			for role, k := range keys {
				t.Setenv(natsauth.KeyVar(role), k)
			}
			o, err := server.ProcessConfigFile(c)
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			if len(o.Nkeys) != len(pipeline.Roles()) {
				t.Fatalf("%s: %d NKey users, want one per role", c, len(o.Nkeys))
			}
			for _, u := range o.Nkeys {
				if u.Account == nil || u.Account.Name != natsauth.Account {
					t.Fatalf("%s: user %s outside account %s", c, u.Nkey, natsauth.Account)
				}
			}
		})
	}
	if checked == 0 {
		t.Fatal("no shipped NATS configuration found")
	}
}

func TestClientWithoutCredentialsIsRefused(t *testing.T) {
	srv := natstest.StartAuth(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := pipeline.Connect(ctx, pipeline.Config{URL: srv.URL(), ConnectWait: 10 * time.Second}, "anonymous", nil)
	if err == nil {
		t.Fatal("a client without credentials connected")
	}
	if !strings.Contains(err.Error(), "refused this process's credentials") {
		t.Fatalf("refusal not reported as such (it must not wait out the connect time): %v", err)
	}
	// A seed that is not one of the configured users is refused too.
	other := filepath.Join(t.TempDir(), "k")
	if _, err := natsauth.GenerateKeys(other); err != nil {
		t.Fatal(err)
	}
	_, err = pipeline.Connect(ctx, pipeline.Config{URL: srv.URL(), NKeyFile: filepath.Join(other, natsauth.SeedFile("admin")), ConnectWait: time.Second}, "stranger", nil)
	if err == nil {
		t.Fatal("a client with an unknown NKey connected")
	}
	// The configured admin seed connects.
	srv.ConnectAs(t, pipeline.RoleAdmin, pipeline.Topology{})
}

// attempt runs op with a short deadline and reports whether the broker let
// it through.
func attempt(op func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return op(ctx)
}

func TestRefusals(t *testing.T) {
	srv := natstest.StartAuth(t, "")
	admin := srv.ConnectAs(t, pipeline.RoleAdmin, pipeline.Topology{})
	conns := map[string]*pipeline.Conn{pipeline.RoleAdmin: admin}
	for _, role := range []string{pipeline.RoleFetcher, pipeline.RoleClassifier, pipeline.RoleWriter, pipeline.RoleMonitor} {
		conns[role] = srv.ConnectAs(t, role, pipeline.Topology{})
	}
	publish := func(subject string) func(c *pipeline.Conn) error {
		return func(c *pipeline.Conn) error {
			return attempt(func(ctx context.Context) error {
				_, err := c.Publish(ctx, pipeline.OutMsg{Subject: subject, ID: subject + time.Now().String(), Data: []byte("forged")})
				return err
			})
		}
	}
	kvPutKey := func(bucket, key string) func(c *pipeline.Conn) error {
		return func(c *pipeline.Conn) error {
			return attempt(func(ctx context.Context) error {
				kv, err := c.KV(ctx, bucket)
				if err != nil {
					return err
				}
				_, err = kv.Put(ctx, key, []byte("x"))
				return err
			})
		}
	}
	kvPut := func(bucket string) func(c *pipeline.Conn) error { return kvPutKey(bucket, "probe") }
	cases := []struct {
		what    string
		denied  string   // in the server's violation line
		allowed []string // roles that may; every other role is refused
		op      func(c *pipeline.Conn) error
	}{
		{"publish a prediction", "predictions.freshdesk", []string{pipeline.RoleClassifier, pipeline.RoleAdmin}, publish("predictions.freshdesk.acme.1")},
		{"publish a ticket", "tickets.freshdesk", []string{pipeline.RoleFetcher, pipeline.RoleAdmin}, publish("tickets.freshdesk.acme.1")},
		{"publish an outcome", "outcomes.freshdesk", []string{pipeline.RoleFetcher, pipeline.RoleWriter, pipeline.RoleAdmin}, publish("outcomes.freshdesk.acme.1")},
		{"dead-letter as the writer", "dlq.writer", []string{pipeline.RoleWriter, pipeline.RoleAdmin}, publish("dlq.writer.acme")},
		{"promote a model (models KV)", "autotriage-models", []string{pipeline.RoleAdmin}, kvPut(pipeline.BucketModels)},
		// One owner per record: each stage writes its own records only.
		{"write the writer's bucket outside its records", "autotriage-writer", []string{pipeline.RoleAdmin}, kvPut(pipeline.BucketWriter)},
		{"write an applied record", "autotriage-writer", []string{pipeline.RoleWriter, pipeline.RoleAdmin}, kvPutKey(pipeline.BucketWriter, "applied.freshdesk.acme.1")},
		{"write a catalog record", "autotriage-writer", []string{pipeline.RoleWriter, pipeline.RoleAdmin}, kvPutKey(pipeline.BucketWriter, "catalog.freshdesk.acme")},
		{"write a seen record", "autotriage-writer", []string{pipeline.RoleFetcher, pipeline.RoleAdmin}, kvPutKey(pipeline.BucketWriter, "seen.freshdesk.acme.1")},
		{"write the fetcher's bucket", "autotriage-fetcher", []string{pipeline.RoleFetcher, pipeline.RoleAdmin}, kvPutKey(pipeline.BucketFetcher, "feedback.freshdesk.acme.1")},
		{"store a model artifact", "autotriage-models", []string{pipeline.RoleAdmin}, func(c *pipeline.Conn) error {
			return attempt(func(ctx context.Context) error {
				objs, err := c.Objects(ctx, pipeline.ObjectModels)
				if err != nil {
					return err
				}
				_, err = objs.Put(ctx, "poison", []byte("model"), nil)
				return err
			})
		}},
		{"purge a stream", "STREAM.PURGE.OUTCOMES", []string{pipeline.RoleAdmin}, func(c *pipeline.Conn) error {
			return attempt(func(ctx context.Context) error {
				_, err := c.PurgeSubject(ctx, pipeline.StreamOutcomes, "outcomes.none.none.0")
				return err
			})
		}},
		{"delete a message", "STREAM.MSG.DELETE.TICKETS", []string{pipeline.RoleAdmin}, func(c *pipeline.Conn) error {
			return attempt(func(ctx context.Context) error {
				return c.DeleteMsg(ctx, pipeline.StreamTickets, 1)
			})
		}},
	}
	// Something to delete, so only the permission can refuse it.
	if _, err := admin.Publish(context.Background(), pipeline.OutMsg{Subject: "tickets.freshdesk.acme.1", ID: "seed", Data: []byte("t")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			// The admin last: it may delete the message the others may not.
			for _, role := range []string{pipeline.RoleFetcher, pipeline.RoleClassifier, pipeline.RoleWriter, pipeline.RoleMonitor, pipeline.RoleAdmin} {
				mayDo := slices.Contains(tc.allowed, role)
				err := tc.op(conns[role])
				switch {
				case mayDo && err != nil:
					t.Errorf("%s may %s, but: %v", role, tc.what, err)
				case !mayDo && err == nil:
					t.Errorf("%s could %s", role, tc.what)
				case !mayDo && !violated(srv, role, tc.denied):
					t.Errorf("%s was refused to %s, but not by a permission (err %v)", role, tc.what, err)
				}
			}
		})
	}
}

// violated reports whether the server logged a violation by role's test
// connection on a subject containing subject.
func violated(srv *natstest.AuthServer, role, subject string) bool {
	for _, v := range srv.Violations() {
		if strings.Contains(v, `go:test-`+role+`"`) && strings.Contains(v, subject) {
			return true
		}
	}
	return false
}

// A durable consumer belongs to its stage: nobody else may pull from it
// (taking its messages), delete or recreate it (moving its position).
func TestDurablesBelongToTheirStage(t *testing.T) {
	srv := natstest.StartAuth(t, "")
	admin := srv.ConnectAs(t, pipeline.RoleAdmin, pipeline.Topology{})
	if _, err := admin.Publish(context.Background(), pipeline.OutMsg{Subject: "tickets.freshdesk.acme.1", ID: "t1", Data: []byte("t")}); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{pipeline.RoleFetcher, pipeline.RoleWriter, pipeline.RoleMonitor} {
		c := srv.ConnectAs(t, role, pipeline.Topology{})
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		var got atomic.Int32
		err := c.Consume(ctx, pipeline.ConsumeOptions{Stream: pipeline.StreamTickets, Durable: pipeline.ConsumerClassifier, Stage: "classifier"}, func(context.Context, *pipeline.Msg) error {
			got.Add(1)
			return nil
		})
		cancel()
		if got.Load() > 0 {
			t.Errorf("%s took %d messages from the classifier's durable", role, got.Load())
		}
		if !violated(srv, role, "TICKETS.classifier") {
			t.Fatalf("%s was not refused the classifier's durable by a permission (err %v)", role, err)
		}
	}
}

// Each stage ensures the part of the topology it uses on a fresh broker,
// with its own identity only, and a second start reports nothing changed.
func TestStagesEnsureTheirTopologyAlone(t *testing.T) {
	srv := natstest.StartAuth(t, "")
	for _, role := range []string{pipeline.RoleClassifier, pipeline.RoleWriter, pipeline.RoleFetcher, pipeline.RoleFetcher} {
		srv.ConnectAs(t, role, pipeline.Topology{})
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Fatalf("violations while the stages ensured the topology:\n%s", strings.Join(v, "\n"))
	}
	mon := srv.ConnectAs(t, pipeline.RoleMonitor, pipeline.Topology{})
	ok, err := mon.HasTopology(context.Background())
	if err != nil || !ok {
		t.Fatalf("topology after the stages started: %v %v", ok, err)
	}
	// The classifier reads models the admin stores and promotes.
	admin := srv.ConnectAs(t, pipeline.RoleAdmin, pipeline.Topology{})
	ctx := context.Background()
	store, err := modelstore.Open(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(ctx, "m1", "v1", []byte("model bytes"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Promote(ctx, "m1", "test"); err != nil {
		t.Fatal(err)
	}
	cls := srv.ConnectAs(t, pipeline.RoleClassifier, pipeline.Topology{})
	cstore, err := modelstore.Open(ctx, cls)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cstore.Promoted(ctx)
	if err != nil || p.ID != "m1" {
		t.Fatalf("classifier reads the promotion: %+v %v", p, err)
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Fatalf("violations:\n%s", strings.Join(v, "\n"))
	}
}
