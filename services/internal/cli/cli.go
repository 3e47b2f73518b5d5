// Package cli is the operator command line `autotriage`: one binary, one
// subcommand per job, like the `nats` CLI. Every subcommand has its own flag
// set and --help; results go to stdout (as JSON with --json, for scripts),
// progress and the one-line error to stderr. Exit codes: 0 success, 1
// failure (an unreachable server included), 2 a usage or configuration
// mistake.
//
// Subcommands written elsewhere (`up`, `bench`) join with Register from an
// init function in a file of package main (services/autotriage), so adding
// one never touches this package.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/autotriage/autotriage/services/internal/platform"
)

// Program is the name the binary answers to in messages.
const Program = "autotriage"

// Command runs one subcommand. args are the arguments after its name.
type Command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

type entry struct {
	summary string
	fn      Command
}

var (
	regMu    sync.RWMutex
	registry = map[string]entry{}
)

// Register adds a subcommand. It panics on a duplicate name: two commands
// with one name is a programming error found at start.
func Register(name, summary string, fn Command) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("cli: subcommand " + name + " registered twice")
	}
	registry[name] = entry{summary: summary, fn: fn}
}

func lookup(name string) (entry, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	e, ok := registry[name]
	return e, ok
}

// UsageError is a mistake in the command line. It exits with code 2.
type UsageError struct {
	Cmd string
	Msg string
}

func (e *UsageError) Error() string {
	hint := Program + " --help"
	if e.Cmd != "" {
		hint = Program + " " + e.Cmd + " --help"
	}
	return e.Msg + " (see " + hint + ")"
}

func usagef(cmd, format string, args ...any) error {
	return &UsageError{Cmd: cmd, Msg: fmt.Sprintf(format, args...)}
}

// Run dispatches args (without the program name) to a subcommand.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printUsage(stderr)
		return usagef("", "no subcommand given")
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if e, ok := lookup(args[1]); ok {
				return e.fn(ctx, []string{"--help"}, stdout, stderr)
			}
		}
		printUsage(stdout)
		return nil
	case "-v", "--version":
		name = "version"
	}
	e, ok := lookup(name)
	if !ok {
		if strings.HasPrefix(name, "-") {
			return usagef("", "flags go after the subcommand: %s", name)
		}
		return usagef("", "unknown subcommand %q", name)
	}
	return e.fn(ctx, args[1:], stdout, stderr)
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "%s: the autotriage operator tool.\n\nUsage: %s <subcommand> [flags] [arguments]\n\nSubcommands:\n", Program, Program)
	regMu.RLock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, n := range names {
		fmt.Fprintf(tw, "  %s\t%s\n", n, registry[n].summary)
	}
	regMu.RUnlock()
	tw.Flush()
	fmt.Fprintf(w, "\nConnection settings come from the environment and may be overridden by flags:\n"+
		"  NATS_URL (--nats), NATS_CREDS (--creds), AUTOTRIAGE_NATS_CONNECT_WAIT (--connect-wait, default 3s here),\n"+
		"  FRESHDESK_DOMAIN, FRESHDESK_API_KEY (or FRESHDESK_API_KEY_FILE), FRESHDESK_BASE_URL\n"+
		"  (http:// only to loopback unless AUTOTRIAGE_ALLOW_INSECURE_HTTP=true).\n"+
		"Exit codes: 0 ok, 1 failure, 2 usage or configuration error.\n"+
		"Run '%s <subcommand> --help' for the flags of a subcommand.\n", Program)
}

// ExitCode prints err (if any) as one line on stderr and returns the exit
// code for it.
func ExitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) || errors.Is(err, platform.ErrHelp) {
		return platform.ExitOK
	}
	line := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	fmt.Fprintf(stderr, "%s: %s\n", Program, line)
	var ue *UsageError
	var ce *platform.ConfigError
	if errors.As(err, &ue) || errors.As(err, &ce) {
		return platform.ExitConfig
	}
	return platform.ExitFailed
}

// Main runs the CLI as a process: signals cancel the context, and the exit
// code follows ExitCode. It is all that main.go calls.
func Main() {
	ctx, stop := signalContext()
	err := Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(ExitCode(err, os.Stderr))
}

// flags is a subcommand's flag set with the conventions of this CLI:
// interleaved flags and arguments, --help to stdout, errors as one line.
type flags struct {
	*flag.FlagSet
	cmd     string
	usage   string // argument synopsis
	summary string
	stdout  io.Writer
}

func newFlags(cmd, usage, summary string, stdout io.Writer) *flags {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flags{FlagSet: fs, cmd: cmd, usage: usage, summary: summary, stdout: stdout}
}

func (f *flags) printHelp() {
	fmt.Fprintf(f.stdout, "Usage: %s %s %s\n\n%s\n", Program, f.cmd, f.usage, f.summary)
	hasFlags := false
	f.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(f.stdout, "\nFlags:")
		f.SetOutput(f.stdout)
		f.PrintDefaults()
		f.SetOutput(io.Discard)
	}
}

// parse parses args, allowing flags after positional arguments ("--" ends
// flag parsing), and returns the positional arguments. --help prints the
// help and returns flag.ErrHelp (exit 0).
func (f *flags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printHelp()
				return nil, flag.ErrHelp
			}
			return nil, &UsageError{Cmd: f.cmd, Msg: f.cmd + ": " + err.Error()}
		}
		rest := f.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// noArgs rejects positional arguments.
func (f *flags) noArgs(pos []string) error {
	if len(pos) > 0 {
		return usagef(f.cmd, "%s: unexpected argument %q", f.cmd, pos[0])
	}
	return nil
}
