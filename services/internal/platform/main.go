package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes shared by every binary.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitConfig = 2
)

// Main is the body of every main function: it runs run with a context that
// is cancelled on SIGINT or SIGTERM, prints a failure as one line on stderr,
// and exits 2 for configuration errors, 1 for any other failure. A second
// signal during the drain exits at once.
func Main(run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // restore default handling: a second Ctrl-C kills the process
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(ExitCode(err, os.Stderr, os.Args[0]))
}

// ExitCode prints err (if any) as one line and returns the exit code for it.
func ExitCode(err error, stderr io.Writer, program string) int {
	if err == nil || errors.Is(err, ErrHelp) {
		return ExitOK
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		fmt.Fprintf(stderr, "%s: %v\n", program, ce)
		return ExitConfig
	}
	fmt.Fprintf(stderr, "%s: %v\n", program, err)
	return ExitFailed
}
