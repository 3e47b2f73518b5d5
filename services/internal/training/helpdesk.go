// Package training turns a helpdesk's own history into training examples:
// resolved and closed tickets whose group, type, priority or tags a person
// settled. The operator CLI (`autotriage train --from-helpdesk`) and the
// all-in-one mode's starter model both use it.
package training

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// Freshdesk's fixed statuses of finished work.
const (
	statusResolved = 4
	statusClosed   = 5
)

// Progress reports how far a history read has come.
type Progress struct {
	Pages int
	Seen  int // tickets read
	// Unreadable counts versions the helpdesk could not deliver within the
	// client's response limit (ticketsystem.Ticket.Unreadable); they are
	// not learnt from.
	Unreadable int
	Labelled   int       // examples kept
	Through    time.Time // updated_at of the last ticket read
	Fraction   float64   // of the span from since to the start of the read, 0..1
}

// Options configure FromHelpdesk.
type Options struct {
	// Since bounds the history read (updated at or after).
	Since time.Time
	// IgnoreTag is autotriage's own tag, which must not be learnt.
	IgnoreTag string
	// Progress, when set, is called after every page.
	Progress func(Progress)
}

// FromHelpdesk reads finished tickets from the change feed and returns one
// example per ticket with at least one label. Versions the helpdesk could
// not deliver whole (Ticket.Unreadable) are skipped and counted in
// Progress.Unreadable: their text is unknown. Group ids and priority codes
// become the catalog's names, the names the writer maps back to ids.
func FromHelpdesk(ctx context.Context, feed ticketsystem.ChangeFeed, cat *ticketsystem.Catalog, o Options) ([]classify.Example, error) {
	groups, prios := LabelNames(cat)
	now := time.Now()
	var pr Progress
	var out []classify.Example
	err := feed.ChangedSince(ctx, o.Since, func(page []ticketsystem.Ticket) error {
		pr.Pages++
		for i := range page {
			t := &page[i]
			pr.Seen++
			pr.Through = t.UpdatedAt
			if t.Unreadable != "" {
				pr.Unreadable++
				continue
			}
			if ex, ok := ExampleOf(t, groups, prios, o.IgnoreTag); ok {
				out = append(out, ex)
			}
		}
		pr.Labelled = len(out)
		if span := now.Sub(o.Since); span > 0 && !pr.Through.IsZero() {
			pr.Fraction = min(1, max(0, float64(pr.Through.Sub(o.Since))/float64(span)))
		}
		if o.Progress != nil {
			o.Progress(pr)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the helpdesk history: %w", err)
	}
	return out, nil
}

// LabelNames maps the catalog's group ids and priority codes to the names
// examples carry (the names the writer maps back).
func LabelNames(cat *ticketsystem.Catalog) (groups map[int64]string, prios map[int]string) {
	groups = map[int64]string{}
	for _, g := range cat.Groups {
		groups[g.ID] = g.Name
	}
	prios = map[int]string{1: "Low", 2: "Medium", 3: "High", 4: "Urgent"}
	for _, p := range cat.Priorities {
		prios[int(p.ID)] = p.Name
	}
	return groups, prios
}

// ExampleOf makes a training example of a finished ticket with at least one
// field set by a person; ok is false otherwise.
func ExampleOf(t *ticketsystem.Ticket, groups map[int64]string, prios map[int]string, ignoreTag string) (classify.Example, bool) {
	if (t.Status != statusResolved && t.Status != statusClosed) || t.Spam || t.Deleted {
		return classify.Example{}, false
	}
	// The body is cut to what the classifier reads (a multi-megabyte
	// e-mail would otherwise be held whole for every example).
	body, _ := classify.CutRaw(t.Description)
	ex := classify.Example{ID: strconv.FormatInt(t.ID, 10), Subject: t.Subject, Body: body, Type: t.Type, UpdatedAt: t.UpdatedAt}
	if t.GroupID != 0 {
		ex.Group = groups[t.GroupID]
	}
	ex.Priority = prios[t.Priority]
	ex.Tags = []string{} // a finished ticket's tag set is settled, even when empty
	for _, tag := range t.Tags {
		if tag != ignoreTag && !slices.Contains(ex.Tags, tag) {
			ex.Tags = append(ex.Tags, tag)
		}
	}
	if ex.Group == "" && ex.Type == "" && len(ex.Tags) == 0 {
		return classify.Example{}, false
	}
	if ex.Subject == "" && ex.Body == "" {
		return classify.Example{}, false
	}
	return ex, true
}
