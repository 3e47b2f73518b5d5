// Package bench is `autotriage bench` (`make bench`): one command that
// measures the classifier (quality beside the scikit-learn baselines, speed,
// memory), the pipeline (throughput and latency against the raw JetStream
// ceiling, with one and two classifier replicas), Freshdesk API efficiency
// (credits per ticket, the Growth plan's budget and 429s) and the resident
// memory of each service binary, and writes one report as Markdown and JSON.
//
// Every figure comes from one run on the machine named in the report's
// header; nothing is asserted here on wall-clock time (the tests only run a
// tiny version of each section). Measurements that need their own process
// (peak memory of training, of a process holding a model, of the service
// binaries) run in child processes: the bench re-executes its own binary
// with AUTOTRIAGE_BENCH_CHILD set (see child.go), or starts the service
// binaries it builds from this module.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// Section names accepted by --only.
const (
	SecQuality   = "quality"
	SecSpeed     = "speed"
	SecPipeline  = "pipeline"
	SecFreshdesk = "freshdesk"
	SecMemory    = "memory"
)

// AllSections in report order.
var AllSections = []string{SecQuality, SecSpeed, SecPipeline, SecFreshdesk, SecMemory}

// Options control a run. The zero value of a size means the default of the
// mode (full or quick).
type Options struct {
	Out      string   `json:"out"`
	Quick    bool     `json:"quick"`
	Only     []string `json:"only,omitempty"`
	Tickets  int      `json:"tickets"`  // section 3: tickets per run (default 2000, quick 300)
	Datasets string   `json:"datasets"` // directory of the shared datasets

	// DatasetLimit caps the rows read from each train and test file (0: all;
	// quick: 3000 train, 1000 test). Tests use a tiny slice.
	DatasetLimit int `json:"dataset_limit,omitempty"`
	// CreditTickets is the number of tickets of each section-4 run (default
	// 600, quick 120).
	CreditTickets int `json:"credit_tickets"`
	// MemTickets is the load of section 5 (default 1000, quick 200).
	MemTickets int `json:"memory_tickets"`
	// History is the simulator's resolved history the pipeline's model is
	// trained on (default 2000, quick 600).
	History int `json:"history"`

	// Exe and ExeArgs start a child measurement process: the binary and the
	// arguments before which AUTOTRIAGE_BENCH_CHILD is honoured. Default:
	// this executable with "bench". Tests point it at the test binary.
	Exe     string   `json:"-"`
	ExeArgs []string `json:"-"`
	// ModuleDir is the services module (for building the service
	// binaries); default: found from the working directory.
	ModuleDir string `json:"-"`
	// Log receives progress lines (stderr for the command).
	Log io.Writer `json:"-"`

	// fastTrain trains the pipeline's model with one loss and one cost
	// instead of the default grid (tests under -race).
	fastTrain bool
}

func (o *Options) defaults() {
	if o.Tickets == 0 {
		o.Tickets = 2000
		if o.Quick {
			o.Tickets = 300
		}
	}
	if o.DatasetLimit == 0 && o.Quick {
		o.DatasetLimit = 3000
	}
	if o.CreditTickets == 0 {
		o.CreditTickets = 600
		if o.Quick {
			o.CreditTickets = 120
		}
	}
	if o.MemTickets == 0 {
		o.MemTickets = 1000
		if o.Quick {
			o.MemTickets = 200
		}
	}
	if o.History == 0 {
		o.History = 2000
		if o.Quick {
			o.History = 600
		}
	}
	if o.Datasets == "" {
		o.Datasets = datasetsDir()
	}
	if len(o.Only) == 0 {
		o.Only = slices.Clone(AllSections)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// datasetsDir is AUTOTRIAGE_DATASETS, else AUTOTRIAGE_SHARED/datasets, else
// ../shared/datasets next to the repository.
func datasetsDir() string {
	if d := os.Getenv("AUTOTRIAGE_DATASETS"); d != "" {
		return d
	}
	if s := os.Getenv("AUTOTRIAGE_SHARED"); s != "" {
		return filepath.Join(s, "datasets")
	}
	if dir, err := moduleDir(); err == nil {
		return filepath.Join(dir, "..", "..", "shared", "datasets")
	}
	return filepath.Join("..", "..", "shared", "datasets")
}

func (o *Options) want(sec string) bool { return slices.Contains(o.Only, sec) }

// Run is the `autotriage bench` subcommand.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if isChild() {
		return runChild(ctx, stdout)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o Options
	var only string
	fs.StringVar(&o.Out, "out", "bench-out", "directory of report.md and report.json")
	fs.BoolVar(&o.Quick, "quick", false, "a fast subset: smaller dataset slices and fewer tickets")
	fs.StringVar(&only, "only", "", "comma-separated sections to run: "+strings.Join(AllSections, ","))
	fs.IntVar(&o.Tickets, "tickets", 0, "tickets per pipeline run (default 2000, --quick 300)")
	fs.StringVar(&o.Datasets, "datasets", "", "directory of the labelled datasets (default $AUTOTRIAGE_DATASETS)")
	var cpuProfile string
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the bench process (every in-process stage, NATS and the simulator) to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, "Usage: autotriage bench [--out DIR] [--quick] [--only SECTION[,SECTION]] [--tickets N]\n\n"+
				"Measures classifier quality and speed, pipeline throughput and latency, Freshdesk API\n"+
				"credits and service memory on this machine; writes DIR/report.md and DIR/report.json\n"+
				"and prints the Markdown. See BENCHMARKS.md.\n\nFlags:\n")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return flag.ErrHelp
		}
		return fmt.Errorf("bench: %w (see autotriage bench --help)", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	if only != "" {
		for s := range strings.SplitSeq(only, ",") {
			s = strings.TrimSpace(s)
			if !slices.Contains(AllSections, s) {
				return fmt.Errorf("bench: unknown section %q (want %s)", s, strings.Join(AllSections, ", "))
			}
			o.Only = append(o.Only, s)
		}
	}
	if o.Tickets < 0 {
		return errors.New("bench: --tickets must be positive")
	}
	o.Log = stderr
	if cpuProfile != "" {
		stop, perr := startCPUProfile(cpuProfile)
		if perr != nil {
			return fmt.Errorf("bench: %w", perr)
		}
		defer stop()
	}
	rep, err := Execute(ctx, o)
	if rep == nil {
		return err
	}
	md := rep.Markdown()
	fmt.Fprint(stdout, md)
	if werr := rep.Write(o.Out); werr != nil {
		return errors.Join(err, werr)
	}
	fmt.Fprintf(stderr, "bench: wrote %s and %s\n", filepath.Join(o.Out, "report.md"), filepath.Join(o.Out, "report.json"))
	return err
}

// Execute runs the selected sections and returns the report. A failing
// section is recorded in Notes and the others still run; the error joins
// the failures.
func Execute(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	rep := &Report{Started: time.Now().UTC(), Machine: machineInfo(ctx), Options: o}
	logf := func(format string, args ...any) {
		fmt.Fprintf(o.Log, "bench: "+format+"\n", args...)
	}
	var errs []error
	fail := func(sec string, err error) {
		logf("%s: %v", sec, err)
		rep.Notes = append(rep.Notes, fmt.Sprintf("section %s failed: %v", sec, err))
		errs = append(errs, fmt.Errorf("%s: %w", sec, err))
	}
	if o.want(SecQuality) || o.want(SecSpeed) {
		if o.want(SecQuality) {
			rep.Sections = append(rep.Sections, SecQuality)
		}
		if o.want(SecSpeed) {
			rep.Sections = append(rep.Sections, SecSpeed)
		}
		if err := runClassifier(ctx, &o, rep, logf); err != nil {
			fail("classifier", err)
		}
	}
	if ctx.Err() == nil && (o.want(SecPipeline) || o.want(SecFreshdesk) || o.want(SecMemory)) {
		h, err := newHarness(ctx, &o, logf)
		if err != nil {
			fail("pipeline", err)
		} else {
			defer h.close()
			if o.want(SecPipeline) && ctx.Err() == nil {
				rep.Sections = append(rep.Sections, SecPipeline)
				if err := h.runThroughput(ctx, rep); err != nil {
					fail(SecPipeline, err)
				}
			}
			if o.want(SecFreshdesk) && ctx.Err() == nil {
				rep.Sections = append(rep.Sections, SecFreshdesk)
				if err := h.runCredits(ctx, rep); err != nil {
					fail(SecFreshdesk, err)
				}
			}
			if o.want(SecMemory) && ctx.Err() == nil {
				rep.Sections = append(rep.Sections, SecMemory)
				if err := h.runServiceMemory(ctx, rep); err != nil {
					fail(SecMemory, err)
				}
			}
		}
	}
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	rep.Machine.LoadEnd = loadAvg()
	rep.Duration = time.Since(rep.Started).Round(time.Second).String()
	rep.Targets = rep.checkTargets()
	return rep, errors.Join(errs...)
}

// Write stores report.md and report.json in dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown()), 0o644)
}

// startCPUProfile profiles this process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func gomaxprocs() int { return runtime.GOMAXPROCS(0) }
