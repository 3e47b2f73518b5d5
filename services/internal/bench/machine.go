package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where a report was measured.
type Machine struct {
	CPU         string `json:"cpu"`
	Cores       int    `json:"cores"`      // logical CPUs online
	GOMAXPROCS  int    `json:"gomaxprocs"` // what Go uses
	MemoryBytes int64  `json:"memory_bytes"`
	GoVersion   string `json:"go_version"`
	OS          string `json:"os"`
	Revision    string `json:"revision"` // git revision, "-dirty" with uncommitted changes
	LoadStart   string `json:"load_start"`
	LoadEnd     string `json:"load_end"`
}

func machineInfo(ctx context.Context) Machine {
	m := Machine{
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
		LoadStart:  loadAvg(),
		CPU:        "unknown",
		Revision:   "unknown",
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				m.MemoryBytes = kb << 10
			}
		}
	}
	m.Revision = gitRevision(ctx)
	return m
}

// gitRevision reads the revision with read-only git commands.
func gitRevision(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown (no git)"
	}
	rev := strings.TrimSpace(string(out))
	st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
	if err == nil && len(bytes.TrimSpace(st)) > 0 {
		rev += "-dirty"
	}
	return rev
}

// loadAvg is the 1, 5 and 15-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// ProcMem is what /proc/<pid>/status says about a process's memory.
type ProcMem struct {
	RSS int64 `json:"rss_bytes"` // VmRSS: resident now
	HWM int64 `json:"hwm_bytes"` // VmHWM: peak resident
}

// readProcMem reads VmRSS and VmHWM of pid ("self" for this process).
func readProcMem(pid string) (ProcMem, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return ProcMem{}, err
	}
	var m ProcMem
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.RSS = kb << 10
		case "VmHWM:":
			m.HWM = kb << 10
		}
	}
	if m.RSS == 0 && m.HWM == 0 {
		return m, fmt.Errorf("/proc/%s/status: no VmRSS", pid)
	}
	return m, nil
}
