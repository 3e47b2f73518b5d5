package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/autotriage/autotriage/services/internal/classify"
)

// Child measurement processes. The parent re-executes a binary (this one by
// default) with these variables set; the child does one job, prints one JSON
// object on stdout and exits. Peak memory (VmHWM) is per process, so this is
// the only way to measure training and a loaded model on their own.
const (
	envChild = "AUTOTRIAGE_BENCH_CHILD" // "train" or "hold"
	envDir   = "AUTOTRIAGE_BENCH_DIR"   // train: dataset directory
	envLimit = "AUTOTRIAGE_BENCH_LIMIT" // train: row cap
	envModel = "AUTOTRIAGE_BENCH_MODEL" // train: where to save; hold: what to load
)

func isChild() bool { return os.Getenv(envChild) != "" }

// ChildMain runs the child job when this process is a bench child, and then
// exits; otherwise it returns. A test binary calls it from TestMain.
func ChildMain() {
	if !isChild() {
		return
	}
	if err := runChild(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// childResult is what a child prints.
type childResult struct {
	TrainSeconds float64 `json:"train_seconds,omitempty"`
	// OneFitSeconds is one fit of the linear SVM at its default cost, no
	// model selection or calibration: the work of one scikit-learn fit.
	OneFitSeconds float64 `json:"one_fit_seconds,omitempty"`
	Examples      int     `json:"examples,omitempty"`
	ModelBytes    int64   `json:"model_bytes,omitempty"`
	ModelID       string  `json:"model_id,omitempty"`
	Fields        string  `json:"fields,omitempty"`
	Workers       int     `json:"workers,omitempty"`
	BaselineRSS   int64   `json:"baseline_rss,omitempty"`
	RSS           int64   `json:"rss"`
	HWM           int64   `json:"hwm"`
}

func runChild(ctx context.Context, stdout io.Writer) error {
	var res childResult
	switch mode := os.Getenv(envChild); mode {
	case "train":
		limit, _ := strconv.Atoi(os.Getenv(envLimit))
		train, err := loadSample(filepath.Join(os.Getenv(envDir), "train.jsonl"), limit)
		if err != nil {
			return err
		}
		runtime.GC()
		start := time.Now()
		m, err := classify.Train(ctx, train, classify.TrainOptions{Seed: 1})
		if err != nil {
			return err
		}
		res.TrainSeconds = time.Since(start).Seconds()
		res.Examples = len(train)
		res.Workers = runtime.GOMAXPROCS(0)
		var buf bytes.Buffer
		if err := m.Save(&buf); err != nil {
			return err
		}
		res.ModelBytes = int64(buf.Len())
		res.ModelID = m.ID()
		res.Fields = strings.Join(m.FieldNames(), ",")
		if err := os.WriteFile(os.Getenv(envModel), buf.Bytes(), 0o600); err != nil {
			return err
		}
		// The peak of the default training is read before the one fit (the
		// model and its bytes are dead by then, free for the GC).
		pm, err := readProcMem("self")
		if err != nil {
			return err
		}
		res.RSS, res.HWM = pm.RSS, pm.HWM
		runtime.GC()
		start = time.Now()
		if _, err := classify.Train(ctx, train, oneFitOptions()); err != nil {
			return fmt.Errorf("one fit: %w", err)
		}
		res.OneFitSeconds = time.Since(start).Seconds()
		return json.NewEncoder(stdout).Encode(res)
	case "hold":
		runtime.GC()
		base, err := readProcMem("self")
		if err != nil {
			return err
		}
		res.BaselineRSS = base.RSS
		f, err := os.Open(os.Getenv(envModel))
		if err != nil {
			return err
		}
		m, err := classify.Load(f)
		f.Close()
		if err != nil {
			return err
		}
		for i := range 1000 {
			m.Predict("cannot log in", "my card payment "+strconv.Itoa(i)+" was declined twice, please help")
		}
		runtime.GC()
		debug.FreeOSMemory()
		runtime.KeepAlive(m)
	default:
		return fmt.Errorf("unknown %s=%q", envChild, mode)
	}
	pm, err := readProcMem("self")
	if err != nil {
		return err
	}
	res.RSS, res.HWM = pm.RSS, pm.HWM
	return json.NewEncoder(stdout).Encode(res)
}

// runChildProc starts a child with extra environment and decodes its result.
func runChildProc(ctx context.Context, o *Options, env ...string) (childResult, error) {
	exe, args := o.Exe, o.ExeArgs
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return childResult{}, err
		}
		args = []string{"bench"}
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return childResult{}, fmt.Errorf("child %v: %w: %s", env, err, lastLine(errb.String()))
	}
	var res childResult
	if err := json.Unmarshal(lastJSON(out.Bytes()), &res); err != nil {
		return childResult{}, fmt.Errorf("child %v: unreadable result %q: %w", env, out.String(), err)
	}
	return res, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// lastJSON is the last line starting with '{' (a test binary may print more).
func lastJSON(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if bytes.HasPrefix(lines[i], []byte("{")) {
			return lines[i]
		}
	}
	return b
}

// loadSample reads a dataset file; with limit > 0 it keeps an evenly spaced
// sample of limit rows (files may be ordered by label, so no prefix).
func loadSample(path string, limit int) ([]classify.Example, error) {
	ex, err := classify.LoadJSONL(path)
	if err != nil {
		return nil, err
	}
	if len(ex) == 0 {
		return nil, errors.New(path + ": no examples")
	}
	return sample(ex, limit), nil
}

func sample[T any](xs []T, limit int) []T {
	if limit <= 0 || limit >= len(xs) {
		return xs
	}
	out := make([]T, 0, limit)
	for i := range limit {
		out = append(out, xs[i*len(xs)/limit])
	}
	return out
}

// oneFitOptions train one linear SVM per field at the first default cost,
// without cross-validation or calibration: the same amount of work as one
// scikit-learn fit (LinearSVC), for a like-for-like training time. The
// default training fits 2 losses × 2 costs × 3 folds, then the chosen
// configuration and its calibration.
func oneFitOptions() classify.TrainOptions {
	return classify.TrainOptions{Seed: 1, Folds: 1, Loss: classify.LossSquaredHinge, NoSimilar: true}
}
