package natsauth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// KeysEnvFile is the file, beside the seeds, that gives the NATS server the
// public keys (an env file: AUTOTRIAGE_NKEY_<ROLE>=U...).
const KeysEnvFile = "nkeys.env"

// SeedFile is the name of a role's seed file in the keys directory.
func SeedFile(role string) string { return role + ".nk" }

// GenerateKeys makes sure dir holds an NKey seed per role and the env file
// of their public keys, and returns the public keys. Existing seeds are
// kept, so running it again changes nothing; the roles in rotate get new
// seeds (the broker must then be given the new env file; see SECURITY.md).
//
// The directory is private to its owner (0700). The seed files are 0644
// inside it so that containers, which run as another user and see only
// the bind-mounted file, can read them; nobody else on the host can reach
// them through the directory.
func GenerateKeys(dir string, rotate ...string) (map[string]string, error) {
	for _, r := range rotate {
		if !slices.Contains(pipeline.Roles(), r) {
			return nil, fmt.Errorf("rotate: unknown role %q (roles: %s)", r, strings.Join(pipeline.Roles(), ", "))
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys directory: %w", err)
	}
	keys := map[string]string{}
	for _, role := range pipeline.Roles() {
		path := filepath.Join(dir, SeedFile(role))
		seed, err := os.ReadFile(path)
		switch {
		case err == nil && !slices.Contains(rotate, role):
		case err == nil || errors.Is(err, fs.ErrNotExist):
			kp, err := nkeys.CreateUser()
			if err != nil {
				return nil, fmt.Errorf("create the %s key: %w", role, err)
			}
			if seed, err = kp.Seed(); err != nil {
				return nil, fmt.Errorf("create the %s key: %w", role, err)
			}
			if err := writeAtomic(path, append(seed, '\n'), 0o644); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		pub, err := PublicKey(seed)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		keys[role] = pub
	}
	var env bytes.Buffer
	env.WriteString("# Public NKeys of autotriage's broker users, for the NATS server. Not secret.\n")
	for _, role := range pipeline.Roles() {
		fmt.Fprintf(&env, "%s=%s\n", KeyVar(role), keys[role])
	}
	if err := writeAtomic(filepath.Join(dir, KeysEnvFile), env.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return keys, nil
}

// PublicKey returns the user public key of a seed file's content. Errors
// never include the seed.
func PublicKey(seedFile []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(seedFile))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "SU") {
			continue
		}
		kp, err := nkeys.FromSeed([]byte(line))
		if err != nil {
			return "", errors.New("not a valid NKey user seed")
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return "", errors.New("not a valid NKey user seed")
		}
		return pub, nil
	}
	return "", errors.New("no NKey user seed (a line starting with SU) found")
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
