package pipelinetest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesksim"
)

// killPhase is where, in one writer process's write to Freshdesk, the
// process is killed with SIGKILL.
type killPhase struct {
	name  string
	path  *regexp.Regexp // the request that triggers it
	after bool           // after Freshdesk answered (the write landed), before the writer sees it
	delay time.Duration  // after the answer reached the writer: its ledger record or outcome
}

var (
	notePath = regexp.MustCompile(`^/api/v2/tickets/\d+/notes$`)
	putPath  = regexp.MustCompile(`^/api/v2/tickets/\d+$`)
)

// killPhases covers every phase of a write: intent recorded but nothing
// written; note written; note and PUT written but neither recorded; and
// shortly after the PUT's answer, which lands in the ledger record or the
// outcome publish.
var killPhases = []killPhase{
	{name: "after the intent, before the note", path: notePath},
	{name: "after the note", path: notePath, after: true},
	{name: "after the note, before the PUT", path: putPath},
	{name: "after the PUT", path: putPath, after: true},
	{name: "while recording", path: putPath, delay: 2 * time.Millisecond},
	{name: "while publishing the outcome", path: putPath, delay: 15 * time.Millisecond},
}

// killProxy stands between one writer process and the simulator and kills
// that process (SIGKILL) at its phase on the nth matching request.
type killProxy struct {
	srv   *httptest.Server
	phase killPhase
	nth   int64
	seen  atomic.Int64
	proc  atomic.Pointer[proc]
	fired chan struct{}
	once  sync.Once
}

func newKillProxy(t *testing.T, target string, phase killPhase, nth int64) *killProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	k := &killProxy{phase: phase, nth: nth, fired: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trigger := k.phase.path.MatchString(r.URL.Path) && (r.Method == http.MethodPost || r.Method == http.MethodPut) &&
			k.seen.Add(1) == k.nth
		if !trigger {
			rp.ServeHTTP(w, r)
			return
		}
		switch {
		case !k.phase.after && k.phase.delay == 0:
			k.kill()
			http.Error(w, "killed", http.StatusBadGateway)
		case k.phase.after:
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r) // the write lands in Freshdesk
			k.kill()             // and the writer never hears of it
			w.WriteHeader(http.StatusBadGateway)
		default:
			rp.ServeHTTP(w, r)
			go func() { time.Sleep(k.phase.delay); k.kill() }()
		}
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *killProxy) kill() {
	k.once.Do(func() {
		if p := k.proc.Load(); p != nil {
			p.kill()
		}
		close(k.fired)
	})
}

// TestWriterProcessesKilledAtEveryPhase runs two to three writer processes
// on the one durable consumer while tickets flow, and kills one with
// SIGKILL at each phase of a write in turn (intent, note, PUT, record,
// outcome), starting its replacement first (a rolling update whose old pod
// dies): every ticket ends with one outcome per prediction, at most one
// note, and exactly the fields its outcome says were applied.
func TestWriterProcessesKilledAtEveryPhase(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.sim.SetFault("tickets.update", freshdesksim.Fault{Latency: 20 * time.Millisecond})
	e.sim.SetFault("tickets.notes", freshdesksim.Fault{Latency: 20 * time.Millisecond})
	e.startStage("fetcher")
	e.startStage("classifier")
	log := e.outcomes()

	var n int
	startWriter := func(phase *killPhase) (*proc, *killProxy) {
		n++
		vars := map[string]string{}
		for k, v := range e.baseEnv {
			vars[k] = v
		}
		vars["AUTOTRIAGE_WRITER_LEASE"] = "5s"
		vars["NATS_NKEY_FILE"] = e.nats.SeedFile("writer")
		var kp *killProxy
		if phase != nil {
			kp = newKillProxy(t, e.simURL, *phase, 3)
			vars["FRESHDESK_BASE_URL"] = kp.srv.URL
		}
		// After the proxy's listener: a port freeAddr just released is
		// the next one the kernel hands out.
		vars["AUTOTRIAGE_DEBUG_ADDR"] = freeAddr(t)
		p := startProc(t, fmt.Sprintf("writer-%d", n), filepath.Join(binDir, "writer"), vars, e.logDir)
		if kp != nil {
			kp.proc.Store(p)
		}
		t.Cleanup(p.kill)
		if kp == nil {
			// A writer to be killed may be killed before its readiness is
			// seen: the caller waits for the kill instead.
			p.waitReady(t, 30*time.Second)
		}
		return p, kp
	}

	startWriter(nil) // one writer is never killed
	wait := e.arriveAsync(60*len(killPhases), 40)
	var kills int
	for i := range killPhases {
		ph := killPhases[i]
		_, kp := startWriter(&ph)
		select {
		case <-kp.fired:
			kills++
			t.Logf("writer killed %s", ph.name)
		case <-time.After(90 * time.Second):
			t.Fatalf("the writer to be killed %s never got there (alive %v: %v)", ph.name, kp.proc.Load().alive(), kp.proc.Load().exitErr)
		}
	}
	ids := wait()
	startWriter(nil) // the replacement of the last one killed
	d := log.waitAll(t, ids, 3*time.Minute)
	t.Log(verifyTickets(t, e, ids, d, verifyOptions{Notes: true}))
	if kills != len(killPhases) {
		t.Errorf("%d kills, want %d", kills, len(killPhases))
	}
}
