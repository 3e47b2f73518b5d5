package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesksim/helpdeskgen"
)

// serviceNames are the stage binaries of section 5, in start order.
var serviceNames = []string{"classifier", "writer", "fetcher"}

// runServiceMemory is section 5: the fetcher, classifier and writer binaries,
// built from this module, run as child processes against an embedded server
// and the simulator; their VmRSS is read from /proc/<pid>/status when idle
// (model loaded, nothing to do) and sampled every 100 ms under a burst.
func (h *harness) runServiceMemory(ctx context.Context, rep *Report) error {
	dir := h.o.ModuleDir
	if dir == "" {
		var err error
		if dir, err = moduleDir(); err != nil {
			return err
		}
	}
	bin := filepath.Join(h.tmp, "bin")
	h.logf("memory: building %s", strings.Join(serviceNames, ", "))
	args := []string{"build", "-trimpath", "-o", bin + string(os.PathSeparator)}
	for _, s := range serviceNames {
		args = append(args, "./"+s)
	}
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w: %s", err, out)
	}

	sc := scenario{name: "memory", plan: "unlimited", notes: true, poll: 250 * time.Millisecond}
	e, err := h.start(ctx, sc)
	if err != nil {
		return err
	}
	defer e.stop()
	var procs []*exec.Cmd
	var logs []*bytes.Buffer
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			waitOrKill(p, 10*time.Second)
		}
	}()
	environ := os.Environ()
	for k, v := range e.envMap {
		environ = append(environ, k+"="+v)
	}
	for _, s := range serviceNames {
		cmd := exec.Command(filepath.Join(bin, s))
		cmd.Env = environ
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", s, err)
		}
		procs = append(procs, cmd)
		logs = append(logs, &buf)
	}
	// Idle: started, connected, model loaded, nothing arriving. One ticket
	// proves the chain is live before the idle reading.
	gen := helpdeskgen.New(99)
	warm, err := e.addTickets(ctx, gen, 1, 0)
	if err != nil {
		return err
	}
	if done, err := e.waitOutcomes(ctx, warm, 60*time.Second, nil); err != nil || done != 1 {
		return errors.Join(err, fmt.Errorf("the service binaries did not triage a first ticket within 60s; classifier log: %s", lastLine(logs[0].String())))
	}
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return err
	}
	mems := make([]ServiceMem, len(procs))
	for i, p := range procs {
		m, err := readProcMem(strconv.Itoa(p.Process.Pid))
		if err != nil {
			return fmt.Errorf("%s exited: %w: %s", serviceNames[i], err, lastLine(logs[i].String()))
		}
		mems[i] = ServiceMem{Service: serviceNames[i], IdleRSS: m.RSS}
		if st, err := os.Stat(filepath.Join(bin, serviceNames[i])); err == nil {
			mems[i].BinaryLen = st.Size()
		}
	}
	// Load: a burst of tickets, VmRSS sampled until all are triaged.
	h.logf("memory: %d tickets through the service binaries", h.o.MemTickets)
	sample := func() {
		for i, p := range procs {
			if m, err := readProcMem(strconv.Itoa(p.Process.Pid)); err == nil && m.RSS > mems[i].LoadRSS {
				mems[i].LoadRSS = m.RSS
			}
		}
	}
	// The load arrives at 90 tickets a second rather than all at once: more
	// than a page of tickets in one updated_at second hits the change
	// feed's dense-second issue (see burst). A backlog cannot be used here:
	// the cursor already passed the last hour with the first ticket.
	ids, err := e.addTickets(ctx, gen, h.o.MemTickets, memArrivalRate)
	if err != nil {
		return err
	}
	done, err := e.waitOutcomes(ctx, ids, waitBudget(len(ids)), sample)
	if err != nil {
		return err
	}
	sample()
	for i, p := range procs {
		if m, err := readProcMem(strconv.Itoa(p.Process.Pid)); err == nil {
			mems[i].HWM = m.HWM
		}
	}
	if done < len(ids) {
		rep.Notes = append(rep.Notes, fmt.Sprintf("memory: only %d of %d tickets were triaged by the service binaries before the deadline", done, len(ids)))
	}
	rep.Memory = mems
	return nil
}

// memArrivalRate is the load's arrival rate (tickets per second), below a
// list page per second.
const memArrivalRate = 90.0

func waitOrKill(p *exec.Cmd, d time.Duration) {
	done := make(chan struct{})
	go func() { _ = p.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		_ = p.Process.Kill()
		<-done
	}
}

// moduleDir is the directory of the services module, from `go env GOMOD`.
func moduleDir() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside a Go module: run the bench from the services module (make bench)")
	}
	b, err := os.ReadFile(mod)
	if err != nil || !bytes.Contains(b, []byte("module github.com/autotriage/autotriage/services")) {
		return "", fmt.Errorf("%s is not the services module: run the bench from services/ (make bench)", mod)
	}
	return filepath.Dir(mod), nil
}
