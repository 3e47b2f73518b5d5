package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/autotriage/autotriage/services/internal/natsauth"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

func init() {
	Register("secrets", "create the broker's NKeys (nats) or a local TLS CA and certificates (tls)", runSecrets)
}

func runSecrets(_ context.Context, args []string, stdout, _ io.Writer) error {
	f := newFlags("secrets", "nats|tls [--dir DIR] [--rotate ROLES] [--hosts HOSTS]",
		"nats: write one NKey seed per broker role ("+strings.Join(pipeline.Roles(), ", ")+") and nkeys.env (their public keys, for the NATS server) into DIR (default .secrets/nats); existing seeds are kept unless --rotate names their roles.\n"+
			"tls: write a local CA, a server certificate for HOSTS and a client certificate into DIR (default .secrets/tls); an existing CA is kept.\n"+
			"Directories are 0700; never commit them.", stdout)
	dir := f.String("dir", "", "output directory")
	rotate := f.String("rotate", "", "nats: comma-separated roles whose keys are replaced")
	hosts := f.String("hosts", "nats,localhost,127.0.0.1", "tls: names and addresses the server certificate is valid for")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("secrets", "say which: nats or tls")
	}
	switch pos[0] {
	case "nats":
		if *dir == "" {
			*dir = filepath.Join(".secrets", "nats")
		}
		var roles []string
		if *rotate != "" {
			roles = strings.Split(*rotate, ",")
		}
		keys, err := natsauth.GenerateKeys(*dir, roles...)
		if err != nil {
			return err
		}
		for _, r := range pipeline.Roles() {
			fmt.Fprintf(stdout, "%-10s %s  seed %s\n", r, keys[r], filepath.Join(*dir, natsauth.SeedFile(r)))
		}
		fmt.Fprintf(stdout, "public keys for the NATS server: %s\n", filepath.Join(*dir, natsauth.KeysEnvFile))
	case "tls":
		if *dir == "" {
			*dir = filepath.Join(".secrets", "tls")
		}
		if err := natsauth.GenerateTLS(*dir, strings.Split(*hosts, ","), time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "CA %s; server %s (for %s); client %s\n", filepath.Join(*dir, natsauth.CAFile),
			filepath.Join(*dir, natsauth.ServerCertFile), *hosts, filepath.Join(*dir, natsauth.ClientCertFile))
	default:
		return usagef("secrets", "unknown kind %q: nats or tls", pos[0])
	}
	return nil
}
