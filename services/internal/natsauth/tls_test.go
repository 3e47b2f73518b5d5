package natsauth_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/natsauth"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// The broker with mutual TLS: a stage with the CA, its client certificate
// and its key connects; leaving out the client certificate, trusting
// another CA or dialling a name the certificate does not carry is refused.
func TestMutualTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if err := natsauth.GenerateTLS(dir, []string{"localhost"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other")
	if err := natsauth.GenerateTLS(other, []string{"localhost"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	srv := natstest.StartAuth(t, natsauth.ServerTLSConfig(dir))
	byName := strings.Replace(srv.URL(), "127.0.0.1", "localhost", 1)
	good := func() pipeline.Config {
		c := srv.Config(pipeline.RoleFetcher, pipeline.Topology{})
		c.URL = byName
		c.CA = filepath.Join(dir, natsauth.CAFile)
		c.Cert = filepath.Join(dir, natsauth.ClientCertFile)
		c.Key = filepath.Join(dir, natsauth.ClientKeyFile)
		c.ConnectWait = time.Second
		return c
	}
	connect := func(c pipeline.Config) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pipeline.Connect(ctx, c, "tls-test", nil)
		if err != nil {
			return err
		}
		defer conn.Close()
		return conn.EnsureTopology(ctx)
	}
	if err := connect(good()); err != nil {
		t.Fatalf("mutual TLS with the right CA, certificate and name: %v", err)
	}
	cases := map[string]func(c *pipeline.Config){
		"no client certificate": func(c *pipeline.Config) { c.Cert, c.Key = "", "" },
		"another CA":            func(c *pipeline.Config) { c.CA = filepath.Join(other, natsauth.CAFile) },
		"a name not in the server certificate": func(c *pipeline.Config) {
			c.URL = srv.URL() // 127.0.0.1: the certificate names localhost only
		},
		"no TLS at all": func(c *pipeline.Config) { c.CA, c.Cert, c.Key = "", "", "" },
		"a client certificate of another CA": func(c *pipeline.Config) {
			c.Cert = filepath.Join(other, natsauth.ClientCertFile)
			c.Key = filepath.Join(other, natsauth.ClientKeyFile)
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := good()
			mutate(&c)
			if err := connect(c); err == nil {
				t.Fatalf("connected with %s", name)
			}
		})
	}
}

func TestTLSSettingsAreChecked(t *testing.T) {
	for name, c := range map[string]pipeline.Config{
		"cert without key":  {Cert: "c.pem"},
		"cert without CA":   {Cert: "c.pem", Key: "k.pem"},
		"missing CA file":   {CA: "/nonexistent/ca.pem"},
		"two credentials":   {NKeyFile: "a.nk", Creds: "b.creds"},
		"user without pass": {User: "u"},
	} {
		c.URL = "nats://127.0.0.1:1"
		c.ConnectWait = time.Millisecond
		_, err := pipeline.Connect(context.Background(), c, "x", nil)
		if err == nil || strings.Contains(err.Error(), "cannot reach") {
			t.Errorf("%s: not refused as a setting mistake: %v", name, err)
		}
	}
}
