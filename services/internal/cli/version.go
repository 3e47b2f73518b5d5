package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/autotriage/autotriage/services/internal/platform"
)

func init() {
	Register("version", "print the version of this binary", runVersion)
}

func runVersion(_ context.Context, args []string, stdout, _ io.Writer) error {
	f := newFlags("version", "[--json]", "Print the version, VCS revision and Go version of this binary.", stdout)
	asJSON := f.Bool("json", false, "print JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.noArgs(pos); err != nil {
		return err
	}
	bi := platform.Build()
	if *asJSON {
		return writeJSON(stdout, bi)
	}
	rev := bi.Revision
	if rev == "" {
		rev = "unknown"
	} else if len(rev) > 12 {
		rev = rev[:12]
	}
	if bi.Modified {
		rev += "+dirty"
	}
	_, err = fmt.Fprintf(stdout, "%s %s (revision %s, %s)\n", Program, bi.Version, rev, bi.GoVersion)
	return err
}
