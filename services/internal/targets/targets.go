// Package targets is what a process of the pipeline can run: the fetcher,
// classifier, writer and trainer, each a Target with the part of the one
// configuration type it reads, the broker role it connects as and how it is
// built on a *service.Runtime. The stage binaries run one target each,
// `autotriage trainer` runs the trainer and `autotriage up` any subset
// (`--targets`), so a stage runs the same way alone in a container, beside
// others against an external server, or in the demo process.
//
// Adding a target (the console) is one entry of the registry: its name,
// role, parts, validation and start.
package targets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/autotriage/autotriage/services/internal/classifier"
	"github.com/autotriage/autotriage/services/internal/fetcher"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/service"
	"github.com/autotriage/autotriage/services/internal/trainer"
	"github.com/autotriage/autotriage/services/internal/triage"
	"github.com/autotriage/autotriage/services/internal/writer"
)

// Config is the configuration of every target. A process reads only the
// parts of the targets it runs (Parts), validates only those (Validate) and
// lists only those in --help; every part keeps its variables' names and
// defaults wherever it is read.
type Config struct {
	platform.Common
	// NATS is the connection to an external server (the stage binaries,
	// `up --nats`); an embedded server's process reads only its Topology.
	NATS       pipeline.Config
	Identities Identities
	Freshdesk  freshdesk.Settings
	Fetcher    fetcher.Config
	Classifier classifier.Config
	Triage     triage.Config
	Writer     writer.Config
	Trainer    trainer.Config
	Live       trainer.LiveConfig
	TrainerTag TrainerTag
}

// Identities are the broker identities of a process that runs targets
// against an authenticated server (`up --nats`): one seed per role.
type Identities struct {
	NKeyDir string `env:"AUTOTRIAGE_NATS_NKEY_DIR" help:"directory of one NKey seed per broker role (<role>.nk, as autotriage secrets nats writes them) for up --nats: each target connects as its own role with its seed; NATS_NKEY_FILE (one identity) serves a single target only"`
}

// TrainerTag is the trainer's own setting: the tag autotriage writes, which
// it never learns as a label (the writer reads the same variable).
type TrainerTag struct {
	Tag string `env:"AUTOTRIAGE_TAG" envDefault:"autotriage" help:"autotriage's own tag, never learnt as a label"`
}

// Account is the name of the helpdesk account in subjects and keys.
func (c *Config) Account() string {
	if c.Fetcher.Account != "" {
		return c.Fetcher.Account
	}
	return c.Freshdesk.AccountName()
}

// Target is one part of the pipeline a process can run.
type Target struct {
	Name string
	// Role is the broker role it connects as with a connection of its own.
	Role string
	// Helpdesk says it talks to Freshdesk: the process reads and validates
	// the FRESHDESK_* settings (or, in `up`, may start the simulator).
	Helpdesk bool
	// Parts are the configuration it reads beyond the process's own
	// (Common, the connection), in --help order; the Freshdesk settings
	// among them when Helpdesk.
	Parts func(*Config) []any
	// Validate checks its parts but the Freshdesk settings (see Helpdesk).
	Validate func(*Config) error
	// Start builds it on rt and starts its watchers and listeners, which
	// live until ctx ends; nothing of it runs yet.
	Start func(ctx context.Context, rt *service.Runtime, cfg *Config, h Hooks) (*Unit, error)
}

// Unit is a started target.
type Unit struct {
	// Run does its work until ctx ends; nil when it has nothing to run.
	Run func(ctx context.Context) error
	// Stop ends what it serves or watches (webhook listener, live
	// precision) once Run has returned, before the connection drains,
	// within the shutdown budget.
	Stop func() error
}

// Hooks are what a process lends the targets beyond the runtime.
type Hooks struct {
	// Webhooks, when set, serves the fetcher's webhook handler on a
	// listener the process bound and stops (`up` binds it before the
	// simulator, which needs its address); otherwise the fetcher target
	// listens on AUTOTRIAGE_WEBHOOK_ADDR itself.
	Webhooks func(http.Handler)
	// Starter, when set, runs once the trainer is open and before any other
	// target is built (`up`: train a starter model when none is promoted);
	// continuous says whether the trainer then keeps running.
	Starter func(ctx context.Context, rt *service.Runtime, tr *trainer.Trainer, store *modelstore.Store, live *trainer.Live) (continuous bool, err error)
}

// registry is every target in the pipeline's order, the order of --help. A
// process builds them the other way round, downstream first: the trainer
// before the classifier (the policy document and a promoted model exist
// before it reads them), the fetcher, which feeds the others, last.
var registry = []*Target{fetcherTarget, classifierTarget, writerTarget, trainerTarget}

// Names lists the targets in the pipeline's order.
func Names() []string {
	out := make([]string, len(registry))
	for i, t := range registry {
		out[i] = t.Name
	}
	return out
}

// Lookup returns the target of a name.
func Lookup(name string) (*Target, bool) {
	for _, t := range registry {
		if t.Name == name {
			return t, true
		}
	}
	return nil, false
}

// Of returns the targets of names, in the pipeline's order. A name that is no
// target is a programming error: Of panics.
func Of(names ...string) []*Target {
	ts, err := Parse(strings.Join(names, ","), "targets")
	if err != nil {
		panic(err)
	}
	return ts
}

// Parse turns a comma-separated list of names into targets in the
// pipeline's order, each once. flag names the setting in the error of a bad list.
func Parse(list, flag string) ([]*Target, error) {
	var want []string
	for _, n := range strings.Split(list, ",") {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" {
			continue
		}
		if _, ok := Lookup(n); !ok {
			return nil, &platform.ConfigError{Var: flag, Msg: fmt.Sprintf("unknown target %q; the targets are %s", n, strings.Join(Names(), ", "))}
		}
		want = append(want, n)
	}
	if len(want) == 0 {
		return nil, &platform.ConfigError{Var: flag, Msg: "names no target; the targets are " + strings.Join(Names(), ", ")}
	}
	var out []*Target
	for _, t := range registry {
		if slices.Contains(want, t.Name) {
			out = append(out, t)
		}
	}
	return out, nil
}

// All is every target in the pipeline's order.
func All() []*Target { return slices.Clone(registry) }

// NamesOf lists the names of ts.
func NamesOf(ts []*Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

// NeedHelpdesk says whether any of ts talks to Freshdesk.
func NeedHelpdesk(ts []*Target) bool {
	return slices.ContainsFunc(ts, func(t *Target) bool { return t.Helpdesk })
}

// Parts is the configuration a process reads: its own parts first, then
// each target's, each part once, in that order (the order of --help).
func Parts(cfg *Config, ts []*Target, process ...any) []any {
	out := slices.Clone(process)
	add := func(ps ...any) {
		for _, p := range ps {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	for _, t := range ts {
		add(t.Parts(cfg)...)
	}
	return out
}

// Validate checks the parts of ts; helpdesk says whether the Freshdesk
// settings are the operator's (not `up`'s simulator, which sets them).
func Validate(cfg *Config, ts []*Target, helpdesk bool) error {
	checks := []error{cfg.Common.Validate(), cfg.NATS.Topology.Validate()}
	for _, t := range ts {
		if t.Helpdesk && helpdesk {
			checks = append(checks, cfg.Freshdesk.Validate())
			helpdesk = false // once
		}
		checks = append(checks, t.Validate(cfg))
	}
	if err := platform.FirstError(checks...); err != nil {
		return asConfigError(err)
	}
	return nil
}

// Load fills parts (pointers to structs, as Parts returns them) from the
// environment as platform.LoadConfig fills one struct: --help lists the
// variables of these parts only, and nothing is validated yet. env nil
// means the process's environment.
func Load(parts []any, args []string, program, summary string, w io.Writer, env map[string]string) error {
	fields := make([]reflect.StructField, len(parts))
	for i, p := range parts {
		t := reflect.TypeOf(p)
		if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
			return fmt.Errorf("targets: part %d is a %s, not a pointer to a struct", i, t)
		}
		fields[i] = reflect.StructField{Name: fmt.Sprintf("Part%d", i), Type: t.Elem()}
	}
	v := reflect.New(reflect.StructOf(fields))
	var err error
	if env == nil {
		err = platform.LoadConfig(v.Interface(), args, program, summary, w)
	} else {
		err = platform.LoadConfigFrom(v.Interface(), args, program, summary, w, env)
	}
	if err != nil {
		return err
	}
	for i, p := range parts {
		reflect.ValueOf(p).Elem().Set(v.Elem().Field(i))
	}
	return nil
}

func asConfigError(err error) error {
	var ce *platform.ConfigError
	if errors.As(err, &ce) {
		return ce
	}
	return &platform.ConfigError{Var: "config", Msg: err.Error()}
}
