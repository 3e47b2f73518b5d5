package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/quality"
)

// livePrecision is the live-precision section of `status` and of reports:
// per field and class, from the verdicts in OUTCOMES (package quality).
type livePrecision struct {
	Since   time.Time            `json:"since"`
	Window  int                  `json:"window"`
	Classes []quality.ClassStats `json:"classes"`
	Models  []quality.ModelStats `json:"models,omitempty"`
	// Read is the number of OUTCOMES messages read.
	Read  int    `json:"outcomes_read"`
	Error string `json:"error,omitempty"`
}

// readLivePrecision reads OUTCOMES stored since since into a tracker with
// the default count window (so the figures are the ones the services
// export) and no age bound beyond since.
func readLivePrecision(ctx context.Context, conn *pipeline.Conn, since time.Time) livePrecision {
	tr := quality.NewTracker(quality.Options{MaxAge: -1})
	lp := livePrecision{Since: since.UTC(), Window: tr.Options().Window}
	n, err := quality.Load(ctx, conn, tr, since, nil)
	lp.Read = n
	if err != nil {
		lp.Error = err.Error()
	}
	lp.Classes, lp.Models = tr.Snapshot(), tr.ModelSnapshot()
	return lp
}

// print writes the table: one row per field and class with verdicts, the
// Wilson 95% interval, then one line per model and field.
func (lp livePrecision) print(w io.Writer, title string) {
	fmt.Fprintf(w, "\n%s (verdicts in OUTCOMES since %s, latest %d per class):\n", title, lp.Since.Format(time.RFC3339), lp.Window)
	if lp.Error != "" {
		fmt.Fprintf(w, "  unavailable: %s\n", lp.Error)
		return
	}
	if len(lp.Classes) == 0 {
		fmt.Fprintln(w, "  no verdicts yet (an applied value kept at resolution, changed by a person, or a suggestion set by one)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  FIELD\tCLASS\tVERDICTS\tCORRECT\tPRECISION\tLOWER 95%\tUPPER 95%")
	for _, c := range lp.Classes {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%.1f%%\t%.1f%%\t%.1f%%\n", c.Field, c.Label, c.N, c.Correct, 100*c.Precision, 100*c.Lower, 100*c.Upper)
	}
	tw.Flush()
	for _, m := range lp.Models {
		fmt.Fprintf(w, "  model %s on %s: %d of %d correct (%.1f%%, lower bound %.1f%%)\n",
			shortID(m.ModelID), m.Field, m.Correct, m.N, 100*m.Precision, 100*m.Lower)
	}
}
