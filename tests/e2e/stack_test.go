//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// The policy of the tests: group applied when the model is confident (else a
// note), priority always suggested, so every ticket ends with a visible write.
const testPolicy = "group=apply:p95,priority=suggest,type=shadow,tags=shadow"

// historySize is the simulator's generated, labelled history the trainer
// learns from: enough for a useful model, small enough to train in seconds.
const historySize = 800

// stackConfig says what to run. The zero value is the docker-compose
// topology: one NATS node, one replica of every stage.
type stackConfig struct {
	cluster bool // the 3-node JetStream cluster, streams at 3 replicas
	// writers and classifiers are the replicas of those stages (0 means 1).
	// With more than one, replica i is the container aliased "<stage>-<i>".
	writers, classifiers int
	// simTimeScale is FRESHDESK_SIM_TIME_SCALE: simulated seconds per real
	// second (0 means 1). It shortens the simulator's webhook retries
	// (+5, +30, +60 simulated minutes).
	simTimeScale float64
	// stageEnv is added to (and overrides) the environment of every stage.
	stageEnv map[string]string
	// tls runs the single NATS node with mutual TLS (deploy/nats/nats-tls.conf,
	// certificates from `autotriage secrets tls`), as docker-compose.tls.yml does.
	tls bool
}

// stack is one autotriage deployment under test.
type stack struct {
	t       *testing.T
	cfg     stackConfig
	net     *testcontainers.DockerNetwork
	natsURL string // as the stages see it
	nats    map[string]*testcontainers.DockerContainer
	sim     *testcontainers.DockerContainer
	simURL  string // from the host
	// stages holds the replicas of each stage ("fetcher", "classifier",
	// "writer"), in the order of their aliases.
	stages   map[string][]*testcontainers.DockerContainer
	secret   string
	keys     brokerKeys // the NKey of each broker role, as `make up` makes them
	tlsDir   string     // with cfg.tls: the CA and certificates
	replicas int
	nextID   int64 // first ticket id not yet seen (ids are sequential in the simulator)

	mu      sync.Mutex
	ctrs    []*testcontainers.DockerContainer
	aliases map[*testcontainers.DockerContainer]string // network alias of each container
}

// newStack starts NATS (one node, or the 3-node cluster), the simulator
// with a labelled history, the one-shot trainer and the three stages.
func newStack(t *testing.T, cfg stackConfig) *stack {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	cfg.writers, cfg.classifiers = max(cfg.writers, 1), max(cfg.classifiers, 1)
	nw, err := network.New(ctx, network.WithLabels(map[string]string{e2eLabel: "1"}))
	if err != nil {
		t.Fatalf("create network: %v", err)
	}
	s := &stack{t: t, cfg: cfg, net: nw, nats: map[string]*testcontainers.DockerContainer{}, stages: map[string][]*testcontainers.DockerContainer{},
		secret: randomHex(16), replicas: 1, nextID: historySize + 1, keys: newBrokerKeys(t)}
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs()
		}
		s.mu.Lock()
		ctrs := s.ctrs
		s.mu.Unlock()
		for _, c := range ctrs {
			_ = testcontainers.TerminateContainer(c)
		}
		_ = nw.Remove(context.Background())
	})

	if cfg.cluster {
		s.replicas = 3
		var urls []string
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for i := 1; i <= 3; i++ {
			name := fmt.Sprintf("nats-%d", i)
			urls = append(urls, "nats://"+name+":4222")
			conf := filepath.Join(repoRoot, "deploy", "nats", "cluster", name+".conf")
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A node is healthy once the JetStream meta group has a
				// leader, which needs the other nodes: start them together.
				c, err := s.run(ctx, name, image(images["nats"]), s.keys.serverEnv(), []string{"--config", "/etc/nats/cluster.conf"},
					wait.ForHTTP("/healthz").WithPort("8222/tcp").WithStartupTimeout(90*time.Second),
					[]string{"4222/tcp", "8222/tcp"}, false, conf+":/etc/nats/cluster.conf:ro")
				if err != nil {
					errs <- fmt.Errorf("%s: %w", name, err)
					return
				}
				s.mu.Lock()
				s.nats[name] = c
				s.mu.Unlock()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("start NATS cluster: %v", err)
		}
		s.natsURL = strings.Join(urls, ",")
	} else {
		conf, binds, scheme := "/etc/nats/nats.conf", []string(nil), "nats"
		if cfg.tls {
			s.tlsDir = s.makeTLS(ctx)
			conf, scheme = "/etc/nats/nats-tls.conf", "tls"
			for _, f := range []string{"server.pem", "server-key.pem", "ca.pem"} {
				binds = append(binds, filepath.Join(s.tlsDir, f)+":/etc/nats/tls/"+f+":ro")
			}
		}
		c, err := s.run(ctx, "nats", image(images["nats"]), s.keys.serverEnv(), []string{"--config", conf, "-js", "-m", "8222"},
			wait.ForHTTP("/healthz").WithPort("8222/tcp").WithStartupTimeout(60*time.Second),
			[]string{"4222/tcp", "8222/tcp"}, true, binds...)
		if err != nil {
			t.Fatalf("start NATS: %v", err)
		}
		s.nats["nats"] = c
		s.natsURL = scheme + "://nats:4222"
	}

	simEnv := map[string]string{
		"FRESHDESK_SIM_ADDR":           ":8089",
		"FRESHDESK_SIM_HISTORY":        strconv.Itoa(historySize),
		"FRESHDESK_SIM_NEW":            "0",
		"FRESHDESK_SIM_SEED":           "7",
		"FRESHDESK_SIM_WEBHOOK_URL":    "http://fetcher:8080/webhooks/freshdesk",
		"FRESHDESK_SIM_WEBHOOK_HEADER": "X-Autotriage-Token",
		"FRESHDESK_SIM_WEBHOOK_SECRET": s.secret,
	}
	if cfg.simTimeScale > 1 {
		simEnv["FRESHDESK_SIM_TIME_SCALE"] = strconv.FormatFloat(cfg.simTimeScale, 'g', -1, 64)
	}
	sim, err := s.run(ctx, "freshdesk-sim", image(images["freshdesk-sim"]), simEnv, nil, wait.ForHTTP("/_sim/healthz").WithPort("8089/tcp").WithStartupTimeout(60*time.Second), []string{"8089/tcp"}, true, "")
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	s.sim = sim
	if s.simURL, err = sim.PortEndpoint(ctx, "8089/tcp", "http"); err != nil {
		t.Fatalf("simulator endpoint: %v", err)
	}

	// The fetcher first: its readiness means the JetStream topology exists.
	// Then the one-shot trainer, with the writer and the classifier beside
	// it; the classifier is ready once the promoted model is loaded.
	// (The CLI does not retry creating the topology: on a fresh 3-node
	// cluster, where each replicated stream needs a leader election, its
	// first attempt can time out. The compose cluster file orders it the
	// same way.)
	if err := s.startStage(ctx, "fetcher", 1); err != nil {
		t.Fatalf("start fetcher: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var trainErr error
	go func() {
		defer wg.Done()
		trainErr = s.train(ctx)
	}()
	if err := s.startStage(ctx, "writer", cfg.writers); err != nil {
		t.Fatalf("start writer: %v", err)
	}
	wg.Wait()
	if trainErr != nil {
		t.Fatalf("train: %v", trainErr)
	}
	if err := s.startStage(ctx, "classifier", cfg.classifiers); err != nil {
		t.Fatalf("start classifier: %v", err)
	}
	t.Logf("stack up in %s (%d NATS node(s), %d writer(s), %d classifier(s), model trained and promoted)",
		time.Since(start).Round(time.Second), len(s.nats), cfg.writers, cfg.classifiers)
	return s
}

// run starts one container on the stack's network, hardened like the
// compose file (read-only root, no capabilities, no new privileges).
func (s *stack) run(ctx context.Context, alias, img string, env map[string]string, cmd []string, ws wait.Strategy, ports []string, readOnly bool, binds ...string) (*testcontainers.DockerContainer, error) {
	opts := []testcontainers.ContainerCustomizer{
		network.WithNetwork([]string{alias}, s.net),
		testcontainers.WithLabels(map[string]string{e2eLabel: "1"}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.ReadonlyRootfs = readOnly
			hc.CapDrop = []string{"ALL"}
			hc.SecurityOpt = []string{"no-new-privileges:true"}
			hc.Tmpfs = map[string]string{"/tmp": ""}
			for _, b := range binds {
				if b != "" {
					hc.Binds = append(hc.Binds, b)
				}
			}
		}),
	}
	if len(env) > 0 {
		opts = append(opts, testcontainers.WithEnv(env))
	}
	if len(cmd) > 0 {
		opts = append(opts, testcontainers.WithCmd(cmd...))
	}
	if len(ports) > 0 {
		opts = append(opts, testcontainers.WithExposedPorts(ports...))
	}
	if ws != nil {
		opts = append(opts, testcontainers.WithWaitStrategy(ws))
	}
	c, err := testcontainers.Run(ctx, img, opts...)
	if c != nil {
		s.mu.Lock()
		s.ctrs = append(s.ctrs, c)
		if s.aliases == nil {
			s.aliases = map[*testcontainers.DockerContainer]string{}
		}
		s.aliases[c] = alias
		s.mu.Unlock()
	}
	return c, err
}

// stageEnv is the environment of a stage or of the CLI.
func (s *stack) stageEnv() map[string]string {
	env := map[string]string{
		"NATS_URL":                         s.natsURL,
		"AUTOTRIAGE_STREAM_REPLICAS":       strconv.Itoa(s.replicas),
		"AUTOTRIAGE_NATS_CONNECT_WAIT":     "90s",
		"AUTOTRIAGE_LOG_LEVEL":             "info",
		"AUTOTRIAGE_DEBUG_ADDR":            ":9090",
		"FRESHDESK_BASE_URL":               "http://freshdesk-sim:8089",
		"FRESHDESK_API_KEY":                "sim-admin-key",
		"AUTOTRIAGE_WEBHOOK_ADDR":          ":8080",
		"AUTOTRIAGE_WEBHOOK_SECRET":        s.secret,
		"AUTOTRIAGE_FETCHER_POLL_INTERVAL": "2s",
		// As the demo's .env: the simulator's tickets may predate the stack.
		"AUTOTRIAGE_FETCHER_START": "24h",
		"AUTOTRIAGE_POLICY":        testPolicy,
		// Short enough that a message held by a killed classifier comes
		// back within a scenario.
		"AUTOTRIAGE_ACK_WAIT": "15s",
		// The simulator is reached over the container network in plain
		// http, with its own key.
		"AUTOTRIAGE_ALLOW_INSECURE_HTTP": "true",
		// Each container gets its role's seed here (brokerKeys.mount).
		"NATS_NKEY_FILE": seedMount,
	}
	if s.tlsDir != "" {
		env["NATS_CA"] = tlsMount + "/ca.pem"
		env["NATS_CERT"] = tlsMount + "/client.pem"
		env["NATS_KEY"] = tlsMount + "/client-key.pem"
	}
	maps.Copy(env, s.cfg.stageEnv)
	return env
}

// startStage starts n replicas of a stage, one after another, each ready
// (/readyz) before the next. A single replica is aliased by the stage's
// name (the simulator's webhooks go to "fetcher"); replicas of a scaled
// stage are "<stage>-1" ... "<stage>-n".
func (s *stack) startStage(ctx context.Context, stage string, n int) error {
	for i := 1; i <= n; i++ {
		alias := stage
		if n > 1 {
			alias = fmt.Sprintf("%s-%d", stage, i)
		}
		c, err := s.run(ctx, alias, image(images[stage]), s.stageEnv(), nil,
			wait.ForHTTP("/readyz").WithPort("9090/tcp").WithStartupTimeout(2*time.Minute), []string{"9090/tcp"}, true, s.mounts(stage)...)
		if err != nil {
			return fmt.Errorf("%s: %w", alias, err)
		}
		s.mu.Lock()
		s.stages[stage] = append(s.stages[stage], c)
		s.mu.Unlock()
	}
	return nil
}

// train runs `autotriage train --from-helpdesk --promote` in the cli image,
// one-shot, as the compose file's trainer does. It tries up to three times,
// like the trainer's `restart: on-failure` in the cluster compose file: on a
// 3-node cluster the promote step can read the just-stored model back from a
// replica that has not applied it yet ("not found"); each failure is logged.
func (s *stack) train(ctx context.Context) error {
	start := time.Now()
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = s.trainOnce(ctx); err == nil {
			s.t.Logf("trainer: model promoted in %s (attempt %d)", time.Since(start).Round(time.Second), attempt)
			return nil
		}
		s.t.Logf("trainer attempt %d failed: %v", attempt, err)
	}
	return err
}

func (s *stack) trainOnce(ctx context.Context) error {
	c, err := s.run(ctx, "trainer", image(images["cli"]), s.stageEnv(),
		[]string{"train", "--from-helpdesk", "--promote", "--wait", "2m"},
		wait.ForExit().WithExitTimeout(4*time.Minute), nil, true, s.mounts("admin")...)
	if err != nil {
		return err
	}
	st, err := c.State(ctx)
	if err != nil {
		return err
	}
	logs := logsOf(c)
	if st.ExitCode != 0 {
		return fmt.Errorf("trainer exited %d: %s", st.ExitCode, strings.TrimSpace(tail(logs, 1)))
	}
	s.t.Logf("trainer: %s", strings.TrimSpace(lastLineContaining(logs, "promoted")))
	return nil
}

// kill sends SIGKILL, as a crash or the OOM killer would.
func (s *stack) kill(c *testcontainers.DockerContainer) {
	s.t.Helper()
	if out, err := exec.Command("docker", "kill", "--signal", "KILL", c.GetContainerID()).CombinedOutput(); err != nil {
		s.t.Fatalf("docker kill: %v: %s", err, out)
	}
}

// stop is `docker stop` with a grace period.
func (s *stack) stop(c *testcontainers.DockerContainer, grace time.Duration) {
	s.t.Helper()
	if err := c.Stop(context.Background(), &grace); err != nil {
		s.t.Fatalf("stop: %v", err)
	}
}

// start starts a stopped or killed container again and waits for its
// readiness (the container's wait strategy).
func (s *stack) start(c *testcontainers.DockerContainer) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		s.t.Fatalf("start: %v", err)
	}
}

// --- the simulator's admin API ----------------------------------------------

// arrive makes n generated, untriaged tickets arrive at rate per second and
// returns their ids once they all exist.
func (s *stack) arrive(n int, rate float64) []int64 {
	s.t.Helper()
	first := s.nextID
	body := fmt.Sprintf(`{"arrival_rate":%g,"arrivals":%d}`, rate, n)
	resp, err := http.Post(s.simURL+"/_sim/generate", "application/json", strings.NewReader(body))
	if err != nil {
		s.t.Fatalf("simulator generate: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("simulator generate: %s: %s", resp.Status, b)
	}
	s.nextID += int64(n)
	ids := make([]int64, 0, n)
	for id := first; id < s.nextID; id++ {
		ids = append(ids, id)
	}
	return ids
}

// waitArrived waits until the last of ids exists in the simulator.
func (s *stack) waitArrived(ids []int64, within time.Duration) {
	s.t.Helper()
	last := ids[len(ids)-1]
	deadline := time.Now().Add(within)
	for {
		if _, err := s.simTicket(last); err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("ticket %d did not arrive in the simulator within %s", last, within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

type simTicket struct {
	Ticket struct {
		ID        int64    `json:"id"`
		GroupID   *int64   `json:"group_id"`
		Tags      []string `json:"tags"`
		Status    int      `json:"status"`
		UpdatedAt string   `json:"updated_at"`
	} `json:"ticket"`
	// Labels are the simulator's true labels (what a perfect triage sets).
	Labels *struct {
		GroupID int64 `json:"group_id"`
	} `json:"labels"`
	Notes []simNote `json:"notes"`
}

// simNote is a note (a conversation) of a ticket in the simulator.
type simNote struct {
	ID        int64  `json:"id"`
	Body      string `json:"body"`
	BodyText  string `json:"body_text"`
	CreatedAt string `json:"created_at"`
}

// markerRe finds the marker every autotriage note carries
// (writer.Marker: "autotriage decision <DecisionHash>").
var markerRe = regexp.MustCompile(`autotriage decision ([0-9a-f]+)`)

// decision is the DecisionHash in the note's marker ("" if it has none).
func (n simNote) decision() string {
	for _, text := range []string{n.Body, n.BodyText} {
		if m := markerRe.FindStringSubmatch(text); m != nil {
			return m[1]
		}
	}
	return ""
}

func (s *stack) simTicket(id int64) (*simTicket, error) {
	resp, err := http.Get(fmt.Sprintf("%s/_sim/tickets/%d", s.simURL, id))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ticket %d: %s", id, resp.Status)
	}
	var st simTicket
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// setLatency adds latency to every Freshdesk API call of the simulator
// (PUT /_sim/faults/*), as a real account answers in a few hundred ms.
func (s *stack) setLatency(d time.Duration) {
	s.t.Helper()
	body := fmt.Sprintf(`{"latency":%q}`, d.String())
	req, err := http.NewRequest(http.MethodPut, s.simURL+"/_sim/faults/*", strings.NewReader(body))
	if err != nil {
		s.t.Fatalf("set latency: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("set latency: %v", err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		s.t.Fatalf("set latency: %s: %s", resp.Status, b)
	}
}

// simGroup is a group of the helpdesk.
type simGroup struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// groups lists the helpdesk's groups through the Freshdesk API, as an
// agent's browser would see them.
func (s *stack) groups() []simGroup {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.simURL+"/api/v2/groups?per_page=100", nil)
	if err != nil {
		s.t.Fatalf("groups: %v", err)
	}
	req.SetBasicAuth("sim-admin-key", "X")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("groups: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		s.t.Fatalf("groups: %s: %s", resp.Status, b)
	}
	var gs []simGroup
	if err := json.NewDecoder(resp.Body).Decode(&gs); err != nil {
		s.t.Fatalf("groups: %v", err)
	}
	if len(gs) < 3 {
		s.t.Fatalf("groups: the helpdesk has %d groups, want at least 3", len(gs))
	}
	return gs
}

// agentUpdate is a person's edit of a ticket in the helpdesk's UI
// (POST /_sim/tickets/{id}/agent_update): like Freshdesk, the simulator
// fires no webhook for it unless status or priority change, so only the
// fetcher's polling learns of it. It returns the ticket's new updated_at.
func (s *stack) agentUpdate(id int64, fields map[string]any) (string, error) {
	body, err := json.Marshal(fields)
	if err != nil {
		return "", err
	}
	resp, err := http.Post(fmt.Sprintf("%s/_sim/tickets/%d/agent_update", s.simURL, id), "application/json", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("agent update of ticket %d: %w", id, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("agent update of ticket %d: %s: %s", id, resp.Status, b)
	}
	var out struct {
		UpdatedAt string `json:"updated_at"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", fmt.Errorf("agent update of ticket %d: %w", id, err)
	}
	return out.UpdatedAt, nil
}

// --- JetStream state --------------------------------------------------------

type consumerState struct {
	Pending, AckPending uint64
	AckFloor            uint64
	Delivered           uint64
}

type pipelineState struct {
	outcomes    map[int64]uint64 // ticket id -> outcome messages
	streamMsgs  map[string]uint64
	consumers   map[string]consumerState // "classifier", "writer"
	dlqMessages uint64
}

// state reads the streams and consumers through a running NATS node.
func (s *stack) state(ctx context.Context) (*pipelineState, error) {
	var lastErr error
	for name, c := range s.nats {
		if !c.IsRunning() {
			continue
		}
		ep, err := c.PortEndpoint(ctx, "4222/tcp", "nats")
		if err != nil {
			lastErr = err
			continue
		}
		st, err := readState(ctx, ep, s.adminAuth())
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", name, err)
			continue
		}
		return st, nil
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no NATS node running")
	}
	return nil, lastErr
}

func readState(ctx context.Context, url string, auth nats.Option) (*pipelineState, error) {
	nc, err := nats.Connect(url, auth, nats.IgnoreDiscoveredServers(), nats.Timeout(3*time.Second), nats.MaxReconnects(0))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st := &pipelineState{outcomes: map[int64]uint64{}, streamMsgs: map[string]uint64{}, consumers: map[string]consumerState{}}
	for _, name := range []string{"TICKETS", "PREDICTIONS", "OUTCOMES", "DLQ"} {
		str, err := js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		var opts []jetstream.StreamInfoOpt
		if name == "OUTCOMES" {
			opts = append(opts, jetstream.WithSubjectFilter("outcomes.>"))
		}
		info, err := str.Info(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("stream %s info: %w", name, err)
		}
		st.streamMsgs[name] = info.State.Msgs
		if name == "OUTCOMES" {
			for subj, n := range info.State.Subjects {
				i := strings.LastIndexByte(subj, '.')
				id, err := strconv.ParseInt(subj[i+1:], 10, 64)
				if err == nil {
					st.outcomes[id] += n
				}
			}
		}
		if name == "DLQ" {
			st.dlqMessages = info.State.Msgs
		}
	}
	for stream, durable := range map[string]string{"TICKETS": "classifier", "PREDICTIONS": "writer"} {
		c, err := js.Consumer(ctx, stream, durable)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", durable, err)
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("consumer %s info: %w", durable, err)
		}
		st.consumers[durable] = consumerState{Pending: ci.NumPending, AckPending: uint64(ci.NumAckPending), AckFloor: ci.AckFloor.Stream, Delivered: ci.Delivered.Stream}
	}
	return st, nil
}

// waitOutcomes waits until every ticket of ids has an outcome from the
// writer, every prediction of theirs has one, and both durable consumers are
// drained (nothing pending, nothing unacknowledged, ack floor at the end of
// the stream). Then it checks what the writer promises: exactly one outcome
// per prediction (a second one fails the test, with the message ids of every
// copy), nothing dead-lettered, and in the helpdesk (the simulator) every
// ticket written to (its group set or a note) and no decision noted twice.
// A ticket may have more than one prediction (a person's edit made a new
// version); then it has one outcome per prediction, which is logged, not
// failed. It returns what OUTCOMES and PREDICTIONS hold per ticket.
func (s *stack) waitOutcomes(ids []int64, within time.Duration) map[int64]*ticketRecord {
	s.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(within)
	start := time.Now()
	var st *pipelineState
	var recs map[int64]*ticketRecord
	var err error
	for {
		st, err = s.state(ctx)
		if err == nil && s.done(st, ids) {
			// The per-subject counts include the fetcher's override outcomes:
			// read the messages to tell the writer's apart.
			if recs, err = s.records(ctx); err == nil && len(unsettled(recs, ids)) == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			switch {
			case st == nil:
				s.t.Fatalf("after %s: cannot read JetStream state: %v", within, err)
			case recs == nil:
				s.t.Fatalf("after %s: not every ticket reached an outcome: missing %v; consumers %+v; streams %v (last error: %v)",
					within, missing(st, ids), st.consumers, st.streamMsgs, err)
			default:
				s.t.Fatalf("after %s: tickets without a writer outcome, or with a prediction that has none: %v; consumers %+v; streams %v\n%s",
					within, unsettled(recs, ids), st.consumers, st.streamMsgs, s.describeTickets(unsettled(recs, ids)))
			}
		}
		time.Sleep(time.Second)
	}
	s.t.Logf("%d tickets reached an outcome %s after the last arrival; streams %v; consumers %+v",
		len(ids), time.Since(start).Round(100*time.Millisecond), st.streamMsgs, st.consumers)

	// One outcome per prediction: the writer's outcome id names the
	// prediction, so JetStream's deduplication must have dropped every
	// repeat. Per ticket, more than one is information: one per prediction.
	var dupTickets []int64
	var dups []string
	var multi []string
	for _, id := range ids {
		r := recs[id]
		dupHere := false
		n := 0
		for key, msgs := range r.outcomes {
			n += len(msgs)
			if len(msgs) > 1 {
				dupHere = true
				var b strings.Builder
				fmt.Fprintf(&b, "ticket %d prediction %s has %d outcomes:", id, key, len(msgs))
				for _, m := range msgs {
					fmt.Fprintf(&b, "\n    OUTCOMES seq %d at %s msg-id %q", m.seq, m.at.Format(time.RFC3339Nano), m.id)
				}
				dups = append(dups, b.String())
			}
		}
		if dupHere {
			dupTickets = append(dupTickets, id)
		}
		if n > 1 {
			multi = append(multi, fmt.Sprintf("%d:%d/%d", id, n, len(r.predictions)))
		}
	}
	if len(multi) > 0 {
		s.t.Logf("tickets with more than one writer outcome (ticket:outcomes/predictions; one per prediction is expected): %v", multi)
	}
	if len(dups) > 0 {
		slices.Sort(dups)
		s.t.Errorf("want exactly one outcome per prediction; %d duplicate(s):\n  %s\n%s",
			len(dups), strings.Join(dups, "\n  "), s.describeTickets(dupTickets))
	}
	var overrides, feedback int
	var unknown []string
	for _, id := range ids {
		overrides += len(recs[id].overrides)
		feedback += len(recs[id].feedback)
		for _, m := range recs[id].other {
			unknown = append(unknown, fmt.Sprintf("seq %d %q", m.seq, m.id))
		}
	}
	if len(unknown) > 0 {
		s.t.Errorf("OUTCOMES messages whose id is neither a writer outcome's nor an override's: %v", unknown)
	}
	if overrides > 0 {
		s.t.Logf("override outcomes (a person changed a field autotriage had set): %d", overrides)
	}
	if feedback > 0 {
		s.t.Logf("feedback outcomes (people's verdicts on values autotriage applied or suggested): %d", feedback)
	}
	if st.dlqMessages != 0 {
		s.t.Errorf("DLQ holds %d messages, want 0", st.dlqMessages)
	}
	// What Freshdesk (the simulator) shows: the group applied, or a note;
	// at most one note per decision (DecisionHash, in the note's marker).
	var untouched []int64
	var twice, unmarked, decisions, tooMany []string
	applied, noted := 0, 0
	for _, id := range ids {
		tk, err := s.simTicket(id)
		if err != nil {
			s.t.Errorf("read ticket %d: %v", id, err)
			continue
		}
		if tk.Ticket.GroupID != nil {
			applied++
		}
		if len(tk.Notes) > 0 {
			noted++
		}
		if tk.Ticket.GroupID == nil && len(tk.Notes) == 0 {
			untouched = append(untouched, id)
		}
		perDecision := map[string]int{}
		for _, n := range tk.Notes {
			h := n.decision()
			if h == "" {
				unmarked = append(unmarked, fmt.Sprintf("%d (note %d)", id, n.ID))
				continue
			}
			perDecision[h]++
		}
		for h, n := range perDecision {
			if n > 1 {
				twice = append(twice, fmt.Sprintf("%d (decision %s: %d notes)", id, h, n))
			}
		}
		if len(perDecision) > 1 {
			// Two decisions need two predictions (two ticket versions).
			d := fmt.Sprintf("%d:%d/%d", id, len(perDecision), len(recs[id].predictions))
			decisions = append(decisions, d)
			if len(recs[id].predictions) < len(perDecision) {
				tooMany = append(tooMany, d)
			}
		}
	}
	if len(twice) > 0 {
		s.t.Errorf("tickets with two notes of one decision (the writer must write a decision's note once): %v", twice)
	}
	if len(unmarked) > 0 {
		s.t.Errorf("notes without the autotriage decision marker (no one else writes notes here): %v", unmarked)
	}
	if len(decisions) > 0 {
		s.t.Logf("tickets with notes of more than one decision (ticket:decisions/predictions): %v", decisions)
	}
	if len(tooMany) > 0 {
		s.t.Errorf("tickets with notes of more decisions than they have predictions (ticket:decisions/predictions): %v", tooMany)
	}
	if len(untouched) > 0 {
		s.t.Errorf("tickets with an outcome but neither a group nor a note in the helpdesk: %v", untouched)
	}
	s.t.Logf("helpdesk: %d/%d tickets have a group, %d/%d a private note", applied, len(ids), noted, len(ids))
	return recs
}

// storedMsg is one message of a stream, as the checks read it.
type storedMsg struct {
	seq     uint64
	at      time.Time
	subject string
	id      string // Nats-Msg-Id
}

// ticketRecord is what PREDICTIONS and OUTCOMES hold about one ticket.
type ticketRecord struct {
	// predictions: ticket version ("<system>:<account>:<id>:<updated_at>")
	// -> the PREDICTIONS messages made from it (one model in these tests).
	predictions map[string][]storedMsg
	// outcomes: prediction key (writer.OutcomeID without "outcome:" and the
	// attempt of an operator's retry or replay) -> the writer's outcomes.
	outcomes map[string][]storedMsg
	// overrides are the fetcher's override outcomes ("override:..." ids).
	overrides []storedMsg
	// feedback are the fetcher's verdicts on applied and suggested values
	// ("feedback:..." ids: confirmed at resolution, suggestion accepted or
	// rejected).
	feedback []storedMsg
	other    []storedMsg // OUTCOMES messages with an id of neither form
}

func (r *ticketRecord) outcomeCount() int {
	n := 0
	for _, m := range r.outcomes {
		n += len(m)
	}
	return n
}

// unsettled lists the tickets of ids that have no outcome from the writer,
// or a prediction that has none.
func unsettled(recs map[int64]*ticketRecord, ids []int64) []int64 {
	var out []int64
	for _, id := range ids {
		r := recs[id]
		if r == nil || r.outcomeCount() == 0 {
			out = append(out, id)
			continue
		}
		answered := map[string]bool{}
		for key := range r.outcomes {
			if v, _, ok := parseVersion(key); ok {
				answered[v] = true
			}
		}
		for v := range r.predictions {
			if !answered[v] {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

// parseVersion reads the ticket version and id at the start of a
// prediction's message id or key: "<system>:<account>:<id>:<updated_at
// RFC 3339, UTC>:<model>..." (classifier.PredictionID, v1.PredictionKey).
func parseVersion(s string) (version string, ticket int64, ok bool) {
	parts := strings.SplitN(s, ":", 4)
	if len(parts) < 4 {
		return "", 0, false
	}
	id, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", 0, false
	}
	i := strings.Index(parts[3], "Z:")
	if i < 0 {
		return "", 0, false
	}
	return strings.Join(parts[:3], ":") + ":" + parts[3][:i+1], id, true
}

// predictionKey is the prediction key in a writer outcome's message id,
// "outcome:<key>[:<attempt>]" (writer.OutcomeID); the attempt of an
// operator's run is "dlq-retry:<run>" or "replay:<run>".
func predictionKey(outcomeID string) (string, bool) {
	key, ok := strings.CutPrefix(outcomeID, "outcome:")
	if !ok {
		return "", false
	}
	for _, a := range []string{":dlq-retry:", ":replay:"} {
		if i := strings.Index(key, a); i >= 0 {
			key = key[:i]
		}
	}
	return key, true
}

// records reads every message of PREDICTIONS and OUTCOMES, with its
// Nats-Msg-Id, through a running NATS node, grouped by ticket.
func (s *stack) records(ctx context.Context) (map[int64]*ticketRecord, error) {
	var lastErr error
	for name, c := range s.nats {
		if !c.IsRunning() {
			continue
		}
		ep, err := c.PortEndpoint(ctx, "4222/tcp", "nats")
		if err != nil {
			lastErr = err
			continue
		}
		recs, err := readRecords(ctx, ep, s.adminAuth())
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", name, err)
			continue
		}
		return recs, nil
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no NATS node running")
	}
	return nil, lastErr
}

func readRecords(ctx context.Context, url string, auth nats.Option) (map[int64]*ticketRecord, error) {
	nc, err := nats.Connect(url, auth, nats.IgnoreDiscoveredServers(), nats.Timeout(3*time.Second), nats.MaxReconnects(0))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	recs := map[int64]*ticketRecord{}
	rec := func(id int64) *ticketRecord {
		r := recs[id]
		if r == nil {
			r = &ticketRecord{predictions: map[string][]storedMsg{}, outcomes: map[string][]storedMsg{}}
			recs[id] = r
		}
		return r
	}
	preds, err := readStream(ctx, js, "PREDICTIONS")
	if err != nil {
		return nil, err
	}
	for _, m := range preds {
		v, id, ok := parseVersion(m.id)
		if !ok {
			return nil, fmt.Errorf("PREDICTIONS seq %d: message id %q is not <system>:<account>:<id>:<updated_at>:<model>", m.seq, m.id)
		}
		rec(id).predictions[v] = append(rec(id).predictions[v], m)
	}
	outs, err := readStream(ctx, js, "OUTCOMES")
	if err != nil {
		return nil, err
	}
	for _, m := range outs {
		i := strings.LastIndexByte(m.subject, '.')
		id, err := strconv.ParseInt(m.subject[i+1:], 10, 64)
		if err != nil {
			continue // not a ticket's outcome
		}
		r := rec(id)
		if key, ok := predictionKey(m.id); ok {
			r.outcomes[key] = append(r.outcomes[key], m)
		} else if strings.HasPrefix(m.id, "override:") {
			r.overrides = append(r.overrides, m)
		} else if strings.HasPrefix(m.id, "feedback:") {
			r.feedback = append(r.feedback, m)
		} else {
			r.other = append(r.other, m)
		}
	}
	return recs, nil
}

// readStream reads every message of a stream with an ordered consumer.
func readStream(ctx context.Context, js jetstream.JetStream, stream string) ([]storedMsg, error) {
	str, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", stream, err)
	}
	want := info.State.Msgs
	if want == 0 {
		return nil, nil
	}
	oc, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("stream %s: ordered consumer: %w", stream, err)
	}
	out := make([]storedMsg, 0, want)
	for {
		batch, err := oc.Fetch(500, jetstream.FetchMaxWait(3*time.Second))
		if err != nil {
			return nil, fmt.Errorf("stream %s: fetch: %w", stream, err)
		}
		n, pending := 0, uint64(1)
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("stream %s: metadata: %w", stream, err)
			}
			out = append(out, storedMsg{seq: md.Sequence.Stream, at: md.Timestamp, subject: m.Subject(), id: m.Headers().Get("Nats-Msg-Id")})
			n, pending = n+1, md.NumPending
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("stream %s: fetch: %w", stream, err)
		}
		if pending == 0 || n == 0 {
			break
		}
	}
	if uint64(len(out)) < want {
		return nil, fmt.Errorf("stream %s: read %d of its %d messages", stream, len(out), want)
	}
	return out, nil
}

// describeTickets lists the TICKETS, PREDICTIONS and OUTCOMES messages of
// each ticket with their Nats-Msg-Id.
func (s *stack) describeTickets(ids []int64) string {
	var b strings.Builder
	for name, c := range s.nats {
		if !c.IsRunning() {
			continue
		}
		ep, err := c.PortEndpoint(context.Background(), "4222/tcp", "nats")
		if err != nil {
			continue
		}
		nc, err := nats.Connect(ep, nats.IgnoreDiscoveredServers(), nats.Timeout(3*time.Second), nats.MaxReconnects(0))
		if err != nil {
			continue
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		fmt.Fprintf(&b, "messages per ticket (read through %s):\n", name)
		for _, id := range ids {
			for _, stream := range []string{"TICKETS", "PREDICTIONS", "OUTCOMES"} {
				prefix := strings.ToLower(stream)
				oc, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{fmt.Sprintf("%s.*.*.%d", prefix, id)}})
				if err != nil {
					fmt.Fprintf(&b, "  %s %d: %v\n", stream, id, err)
					continue
				}
				batch, err := oc.FetchNoWait(20)
				if err != nil {
					continue
				}
				for m := range batch.Messages() {
					md, _ := m.Metadata()
					var seq uint64
					var ts time.Time
					if md != nil {
						seq, ts = md.Sequence.Stream, md.Timestamp
					}
					fmt.Fprintf(&b, "  %s seq %d at %s subject %s msg-id %q\n", stream, seq, ts.Format(time.RFC3339Nano), m.Subject(), m.Headers().Get("Nats-Msg-Id"))
				}
			}
		}
		break
	}
	return b.String()
}

func (s *stack) done(st *pipelineState, ids []int64) bool {
	if len(missing(st, ids)) > 0 {
		return false
	}
	for _, c := range st.consumers {
		if c.Pending != 0 || c.AckPending != 0 {
			return false
		}
	}
	// Every message of TICKETS and PREDICTIONS acknowledged.
	return st.consumers["classifier"].AckFloor >= st.consumers["classifier"].Delivered &&
		st.consumers["writer"].AckFloor >= st.consumers["writer"].Delivered
}

func missing(st *pipelineState, ids []int64) []int64 {
	var out []int64
	for _, id := range ids {
		if st.outcomes[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// waitPending waits until the writer's consumer has at least n messages
// waiting: the classifier went on while the writer was away.
func (s *stack) waitPending(durable string, n uint64, within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := s.state(context.Background())
		if err == nil && st.consumers[durable].Pending >= n {
			s.t.Logf("%s backlog: %d messages pending", durable, st.consumers[durable].Pending)
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s backlog did not reach %d within %s (state %+v, err %v)", durable, n, within, st, err)
		}
		time.Sleep(time.Second)
	}
}

// streamLeader asks a running node's monitoring endpoint which node leads
// a stream's RAFT group.
func (s *stack) streamLeader(stream string) string {
	s.t.Helper()
	for _, c := range s.nats {
		ep, err := c.PortEndpoint(context.Background(), "8222/tcp", "http")
		if err != nil {
			continue
		}
		resp, err := http.Get(ep + "/jsz?streams=true")
		if err != nil {
			continue
		}
		var jsz struct {
			Accounts []struct {
				Streams []struct {
					Name    string `json:"name"`
					Cluster struct {
						Leader string `json:"leader"`
					} `json:"cluster"`
				} `json:"stream_detail"`
			} `json:"account_details"`
		}
		err = json.NewDecoder(resp.Body).Decode(&jsz)
		resp.Body.Close()
		if err != nil {
			continue
		}
		for _, a := range jsz.Accounts {
			for _, st := range a.Streams {
				if st.Name == stream && st.Cluster.Leader != "" {
					return st.Cluster.Leader
				}
			}
		}
	}
	return ""
}

// --- logs -------------------------------------------------------------------

func (s *stack) dumpLogs() {
	s.mu.Lock()
	ctrs := append([]*testcontainers.DockerContainer(nil), s.ctrs...)
	s.mu.Unlock()
	for _, c := range ctrs {
		s.t.Logf("--- logs of %s (last 40 lines) ---\n%s", s.nameOf(c), tail(logsOf(c), 40))
	}
}

// nameOf is a container's network alias and its Docker name.
func (s *stack) nameOf(c *testcontainers.DockerContainer) string {
	s.mu.Lock()
	name := s.aliases[c]
	s.mu.Unlock()
	if info, err := c.Inspect(context.Background()); err == nil {
		name += " (" + strings.TrimPrefix(info.Name, "/") + ")"
	}
	return name
}

// logSummary counts a container's log lines (every run of it: Docker keeps
// them across restarts) by level, and its warnings and errors by message.
func logSummary(c *testcontainers.DockerContainer) string {
	levels := map[string]int{}
	msgs := map[string]int{}
	for line := range strings.SplitSeq(logsOf(c), "\n") {
		i := strings.IndexByte(line, '{')
		if i < 0 {
			continue
		}
		var l struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal([]byte(line[i:]), &l) != nil || l.Level == "" {
			continue
		}
		levels[l.Level]++
		if l.Level == "WARN" || l.Level == "ERROR" {
			msgs[l.Level+" "+l.Msg]++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v", levels)
	for _, k := range slices.Sorted(maps.Keys(msgs)) {
		fmt.Fprintf(&b, "\n      %4d× %s", msgs[k], k)
	}
	return b.String()
}

func logsOf(c *testcontainers.DockerContainer) string {
	rc, err := c.Logs(context.Background())
	if err != nil {
		return "(no logs: " + err.Error() + ")"
	}
	defer rc.Close()
	var b bytes.Buffer
	_, _ = io.Copy(&b, rc)
	return b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func lastLineContaining(s, sub string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return lines[i]
		}
	}
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
