package allinone

import (
	"context"
	"fmt"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/platform"
)

// Credit costs of reading the history to train on, from Freshdesk's API
// documentation: a list page of freshdesk.MaxPerPage tickets with
// include=description costs 1 + 2 credits; the catalog is one call to
// /ticket_fields and one to /groups; the search that counts is one call.
const (
	creditsPerListPage = 3
	catalogCredits     = 2
)

// HistoryCost estimates what training on the helpdesk's history reads.
type HistoryCost struct {
	Since time.Time
	// Tickets is Freshdesk's search total of tickets updated since Since
	// (the list endpoint has no count); -1 when the search failed.
	Tickets int
	// CountErr is why the count is missing.
	CountErr error
	Pages    int
	Credits  int
}

// EstimateHistory counts the tickets updated since since with one search
// call (its total; search sees no archived tickets and lags writes by
// minutes, so the figure is an estimate) and prices reading them the way
// training does: oldest update first, 100 a page with descriptions. The
// key-paged read re-reads a page now and then, so the real cost can be a
// little higher.
func EstimateHistory(ctx context.Context, c *freshdesk.Client, since time.Time) HistoryCost {
	hc := HistoryCost{Since: since, Tickets: -1}
	sr, err := c.SearchTickets(ctx, freshdesk.Gte("updated_at", since), 1)
	if err != nil {
		hc.CountErr = err
		return hc
	}
	hc.Tickets = sr.Total
	hc.Pages = (sr.Total + freshdesk.MaxPerPage - 1) / freshdesk.MaxPerPage
	hc.Credits = hc.Pages*creditsPerListPage + catalogCredits
	return hc
}

func (hc HistoryCost) String() string {
	day := hc.Since.UTC().Format(time.DateOnly)
	if hc.Tickets < 0 {
		return fmt.Sprintf("every ticket updated since %s, at %d API credits per %d tickets (they could not be counted: %v)", day, creditsPerListPage, freshdesk.MaxPerPage, hc.CountErr)
	}
	return fmt.Sprintf("about %d tickets updated since %s (Freshdesk's search count), %d list pages of %d at %d API credits each plus %d for the catalog: about %d credits, paced within the account's per-minute limit less AUTOTRIAGE_FRESHDESK_RESERVE",
		hc.Tickets, day, hc.Pages, freshdesk.MaxPerPage, creditsPerListPage, catalogCredits, hc.Credits)
}

// TrainingRefused is `autotriage up` against a real account with no model
// promoted and no FlagTrainFromHistory: it stops (exit code 2) rather than
// spend the account's API credits on a year of history unasked.
type TrainingRefused struct{ Cost HistoryCost }

func (e *TrainingRefused) Error() string {
	return "no model is promoted, and training a starter model reads the helpdesk's history: " + e.Cost.String() +
		". Run `autotriage up " + FlagTrainFromHistory + "` to spend them, or promote a model first (`autotriage train --from-helpdesk --since DATE --promote`, or `autotriage models push --promote`)"
}

// Unwrap makes the refusal a configuration error (exit code 2): the
// operator has to choose.
func (e *TrainingRefused) Unwrap() error {
	return &platform.ConfigError{Var: FlagTrainFromHistory, Msg: "not given"}
}
