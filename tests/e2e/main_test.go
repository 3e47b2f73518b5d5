//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// e2eLabel marks every container and network the tests create, so a run
// that was interrupted (no Ryuk to reap it) is cleaned up by the next one.
const e2eLabel = "io.autotriage.e2e"

// images are the repositories the tests run, by role.
var images = map[string]string{
	"nats":          "nats",
	"fetcher":       "fetcher",
	"classifier":    "classifier",
	"writer":        "writer",
	"freshdesk-sim": "freshdesk-sim",
	"cli":           "cli",
}

var (
	imageTag    string          // tag of the images under test
	imagePrefix string          // repository prefix, "autotriage"
	haveImage   map[string]bool // role -> image present
	repoRoot    string
)

func TestMain(m *testing.M) {
	// testcontainers' reaper is an image pulled from Docker Hub; there is no
	// registry here. The tests terminate what they start (t.Cleanup) and
	// remove leftovers of interrupted runs by label (see cleanLeftovers).
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	// The published ports are reached on loopback. Without this, a test
	// process that runs inside a container itself (a /.dockerenv file, as in
	// some CI sandboxes) would aim at the default gateway instead.
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	if err := exec.Command("docker", "info").Run(); err != nil {
		fmt.Println("e2e: no Docker engine (docker info failed); skipping every test")
		haveImage = map[string]bool{}
		return m.Run()
	}
	cleanLeftovers()

	imagePrefix = envOr("IMAGE_PREFIX", "autotriage")
	imageTag = os.Getenv("AUTOTRIAGE_E2E_TAG")
	if imageTag == "" {
		// Run on its own (not from `make e2e`): build the images with the
		// same script, tagged "e2e", skipping stages that do not build yet.
		imageTag = "e2e"
		if os.Getenv("AUTOTRIAGE_E2E_NO_BUILD") == "" {
			fmt.Println("e2e: building images with deploy/docker/build-images.sh (set AUTOTRIAGE_E2E_TAG to use prebuilt ones)")
			cmd := exec.Command(filepath.Join(repoRoot, "deploy", "docker", "build-images.sh"))
			cmd.Env = append(os.Environ(), "VERSION="+imageTag, "SKIP_MISSING=1", "IMAGE_PREFIX="+imagePrefix)
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Printf("e2e: building images failed: %v\n", err)
				return 1
			}
		}
	}
	haveImage = map[string]bool{}
	for role, repo := range images {
		err := exec.Command("docker", "image", "inspect", image(repo)).Run()
		haveImage[role] = err == nil
		if err != nil {
			fmt.Printf("e2e: image %s not found: tests that need it are skipped\n", image(repo))
		}
	}
	code := m.Run()
	cleanLeftovers()
	return code
}

func image(repo string) string { return imagePrefix + "/" + repo + ":" + imageTag }

// requireImages skips the test, with the reason, when an image is missing:
// a stage whose main package is not written yet cannot run.
func requireImages(t *testing.T, roles ...string) {
	t.Helper()
	var missing []string
	for _, r := range roles {
		if !haveImage[r] {
			missing = append(missing, image(images[r]))
		}
	}
	if len(missing) > 0 {
		t.Skipf("images not built (their main package is missing or does not compile; run `make images`): %s", strings.Join(missing, ", "))
	}
}

// cleanLeftovers removes containers and networks of earlier, interrupted
// runs. Without Ryuk nothing else would.
func cleanLeftovers() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "docker", "ps", "-aq", "--filter", "label="+e2eLabel).Output()
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		_ = exec.CommandContext(ctx, "docker", append([]string{"rm", "-f", "-v"}, ids...)...).Run()
	}
	out, _ = exec.CommandContext(ctx, "docker", "network", "ls", "-q", "--filter", "label="+e2eLabel).Output()
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		_ = exec.CommandContext(ctx, "docker", append([]string{"network", "rm"}, ids...)...).Run()
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
