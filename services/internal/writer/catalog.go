package writer

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// catalogCache keeps the helpdesk's vocabulary for CatalogTTL. A label the
// cached copy does not know refreshes it early (a group created a minute
// ago), but at most once per minRefresh, so a model that keeps predicting a
// label the helpdesk lacks cannot turn every message into catalog calls.
type catalogCache struct {
	src        ticketsystem.CatalogReader
	ttl        time.Duration
	minRefresh time.Duration
	now        func() time.Time

	mu      sync.Mutex // held across the fetch: concurrent misses share one call
	cat     *ticketsystem.Catalog
	fetched time.Time
}

// get returns the catalog, fetching it when there is none or it expired.
// fetched reports a catalog read from the helpdesk just now (for the
// catalog-change bookkeeping, see catalogchange.go).
func (c *catalogCache) get(ctx context.Context) (cat *ticketsystem.Catalog, fetched bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cat != nil && c.now().Sub(c.fetched) < c.ttl {
		return c.cat, false, nil
	}
	cat, err = c.fetchLocked(ctx)
	return cat, err == nil, err
}

// refresh fetches the catalog again unless the cached copy is younger than
// minRefresh. It reports whether the returned catalog is a new one.
func (c *catalogCache) refresh(ctx context.Context) (*ticketsystem.Catalog, bool, error) {
	return c.refreshAfter(ctx, c.minRefresh)
}

// refreshAfter is refresh with another minimum age.
func (c *catalogCache) refreshAfter(ctx context.Context, minAge time.Duration) (*ticketsystem.Catalog, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cat != nil && c.now().Sub(c.fetched) < minAge {
		return c.cat, false, nil
	}
	cat, err := c.fetchLocked(ctx)
	return cat, err == nil, err
}

func (c *catalogCache) fetchLocked(ctx context.Context) (*ticketsystem.Catalog, error) {
	cat, err := c.src.Catalog(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the helpdesk catalog: %w", err)
	}
	c.cat, c.fetched = cat, c.now()
	return cat, nil
}

// target is a label resolved to the helpdesk's value for one field.
type target struct {
	name     string // the helpdesk's own name of the value
	groupID  int64
	typ      string
	priority int
}

// resolve maps a helpdesk name (after the label map) to its value: groups
// and types by name, priorities by name ("High") or by number ("3"). Exact
// matches win; otherwise a case-insensitive match is accepted.
func resolve(cat *ticketsystem.Catalog, field, name string) (target, bool) {
	name = strings.TrimSpace(name)
	if name == "" {
		return target{}, false
	}
	switch field {
	case FieldGroup:
		if g, ok := choiceByName(cat.Groups, name); ok {
			return target{name: g.Name, groupID: g.ID}, true
		}
	case FieldType:
		for _, fold := range []bool{false, true} {
			for _, t := range cat.Types {
				if t == name || (fold && strings.EqualFold(t, name)) {
					return target{name: t, typ: t}, true
				}
			}
		}
	case FieldPriority:
		prios := cat.Priorities
		if len(prios) == 0 {
			prios = defaultPriorities
		}
		if p, ok := choiceByName(prios, name); ok {
			return target{name: p.Name, priority: int(p.ID)}, true
		}
		if n, err := strconv.ParseInt(name, 10, 64); err == nil {
			for _, p := range prios {
				if p.ID == n {
					return target{name: p.Name, priority: int(p.ID)}, true
				}
			}
		}
	}
	return target{}, false
}

// defaultPriorities are Freshdesk's fixed priorities, used only when the
// catalog reports none.
var defaultPriorities = []ticketsystem.Choice{{ID: 1, Name: "Low"}, {ID: 2, Name: "Medium"}, {ID: 3, Name: "High"}, {ID: 4, Name: "Urgent"}}

func choiceByName(cs []ticketsystem.Choice, name string) (ticketsystem.Choice, bool) {
	for _, c := range cs {
		if c.Name == name {
			return c, true
		}
	}
	for _, c := range cs {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return ticketsystem.Choice{}, false
}

// groupName names a group id for outcomes ("" when unassigned).
func groupName(cat *ticketsystem.Catalog, id int64) string {
	if id == 0 {
		return ""
	}
	if cat != nil {
		for _, g := range cat.Groups {
			if g.ID == id {
				return g.Name
			}
		}
	}
	return strconv.FormatInt(id, 10)
}

// priorityName names a priority code for outcomes.
func priorityName(cat *ticketsystem.Catalog, p int) string {
	if p == 0 {
		return ""
	}
	prios := defaultPriorities
	if cat != nil && len(cat.Priorities) > 0 {
		prios = cat.Priorities
	}
	for _, c := range prios {
		if c.ID == int64(p) {
			return c.Name
		}
	}
	return strconv.Itoa(p)
}
