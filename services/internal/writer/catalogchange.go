package writer

// The helpdesk's catalog changes under a running writer: an admin deletes a
// group, removes a ticket type choice, creates a new group. This file holds
// the writer's side of it:
//
//   - at start, every label map entry must name a value the helpdesk has
//     (CheckCatalog): a typo or a stale entry is a config error then, not a
//     skipped field hours later;
//   - every catalog the writer reads from the helpdesk (on expiry, on an
//     unknown label, on a rejected write, and at least every CatalogTTL/2
//     while running, traffic or not) is compared with the last one recorded
//     in the writer's bucket; each value that left or appeared is published
//     once as an OUTCOME_KIND_CATALOG_CHANGE outcome (removed: the trainer
//     retrains; added: reported, and never predicted until the history has
//     examples, since a model predicts only labels it was trained on);
//   - a prediction whose label the helpdesk no longer has is skipped, never
//     written, and reported removed once per (field, label).
//
// The writer does not read the model registry (least privilege: its broker
// role has no access to it). Comparing the catalog with the promoted
// model's labels is done by the operator's CLI (CompareCatalog, used by
// `autotriage status`), which runs as admin.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// Catalog changes, as CatalogChange.change names them.
const (
	CatalogAdded   = "added"
	CatalogRemoved = "removed"
)

// catalogFields are the fields whose values come from the catalog (tags are
// free-form).
var catalogFields = []string{FieldGroup, FieldType, FieldPriority}

// CheckLabelMap reports the label map entries whose helpdesk name the
// catalog lacks, as a config error naming each entry; nil when every entry
// resolves. Tags are free-form and always resolve.
func CheckLabelMap(cat *ticketsystem.Catalog, lm LabelMap) error {
	var bad []string
	for _, field := range catalogFields {
		for label, name := range lm[field] {
			if _, ok := resolve(cat, field, name); !ok {
				bad = append(bad, fmt.Sprintf("%s:%s=%s (the helpdesk has no %s %q; it has %s)",
					field, label, name, field, name, strings.Join(limitList(CatalogLabels(cat)[field], 12), ", ")))
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return &platform.ConfigError{Var: "AUTOTRIAGE_LABEL_MAP",
		Msg: "entries point to nothing in the helpdesk: " + strings.Join(bad, "; ")}
}

func limitList(xs []string, n int) []string {
	if len(xs) <= n {
		return xs
	}
	return append(slices.Clone(xs[:n]), fmt.Sprintf("... %d more", len(xs)-n))
}

// CatalogLabels lists the catalog's values per field (group, type,
// priority) by the helpdesk's names, sorted.
func CatalogLabels(cat *ticketsystem.Catalog) map[string][]string {
	out := map[string][]string{}
	if cat == nil {
		return out
	}
	for _, g := range cat.Groups {
		out[FieldGroup] = append(out[FieldGroup], g.Name)
	}
	out[FieldType] = append(out[FieldType], cat.Types...)
	prios := cat.Priorities
	if len(prios) == 0 {
		prios = defaultPriorities
	}
	for _, p := range prios {
		out[FieldPriority] = append(out[FieldPriority], p.Name)
	}
	for f, ls := range out {
		sort.Strings(ls)
		out[f] = slices.Compact(ls)
	}
	return out
}

// CatalogComparison is the catalog set against a model's labels.
type CatalogComparison struct {
	// Untrained lists, per field, the helpdesk values no model label maps
	// to: added in the helpdesk after the training data, they have no
	// examples and are never predicted until a model is trained with them.
	Untrained map[string][]string `json:"untrained,omitempty"`
	// Missing lists, per field, the model labels the helpdesk no longer has
	// (after the label map): never written, a retraining drops them.
	Missing map[string][]string `json:"missing,omitempty"`
}

// CompareCatalog compares the helpdesk catalog with the labels a model
// predicts (per field, as the model names them), through the label map.
// Fields the model does not predict are left out.
func CompareCatalog(cat *ticketsystem.Catalog, lm LabelMap, modelLabels map[string][]string) CatalogComparison {
	cmp := CatalogComparison{Untrained: map[string][]string{}, Missing: map[string][]string{}}
	have := CatalogLabels(cat)
	for _, field := range catalogFields {
		labels, ok := modelLabels[field]
		if !ok {
			continue
		}
		covered := map[string]bool{}
		for _, l := range labels {
			t, ok := resolve(cat, field, lm.Name(field, l))
			if !ok {
				cmp.Missing[field] = append(cmp.Missing[field], l)
				continue
			}
			covered[t.name] = true
		}
		for _, v := range have[field] {
			if !covered[v] {
				cmp.Untrained[field] = append(cmp.Untrained[field], v)
			}
		}
		sort.Strings(cmp.Missing[field])
	}
	for f, ls := range cmp.Untrained {
		if len(ls) == 0 {
			delete(cmp.Untrained, f)
		}
	}
	for f, ls := range cmp.Missing {
		if len(ls) == 0 {
			delete(cmp.Missing, f)
		}
	}
	return cmp
}

// CheckCatalog reads the helpdesk catalog and checks the label map against
// it (CheckLabelMap). It is the writer's start-up check: Build calls it,
// and Run when Build did not. A helpdesk that cannot be reached is retried
// (with a log line, at most every 5 s) until ctx ends: without the catalog
// nothing can be written anyway. A key the helpdesk refuses (401) is a
// config error at once; so is a missing permission.
func (s *Stage) CheckCatalog(ctx context.Context) error {
	if s.checked.Load() {
		return nil
	}
	delay := 500 * time.Millisecond
	for {
		cat, fetched, err := s.catalog.get(ctx)
		if err == nil {
			if err := CheckLabelMap(cat, s.labelMap); err != nil {
				s.log.Error("the label map names values the helpdesk does not have", "err", err)
				return err
			}
			s.checked.Store(true)
			if fetched {
				s.catalogFetched(ctx, cat)
			}
			return nil
		}
		if errors.Is(err, ticketsystem.ErrAuth) {
			return &platform.ConfigError{Var: "FRESHDESK_API_KEY", Msg: "the helpdesk refused the key reading its catalog: " + err.Error()}
		}
		if errors.Is(err, ticketsystem.ErrPermission) {
			return fmt.Errorf("writer start: %w", err)
		}
		s.log.Warn("cannot read the helpdesk catalog at start; retrying", "in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("writer start: %w", errors.Join(ctx.Err(), err))
		case <-t.C:
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// watchCatalog reads the catalog again whenever the cached copy expired,
// checking every CatalogTTL/2, so a removal or an addition is noticed
// within 1.5×CatalogTTL even when no prediction names the value.
func (s *Stage) watchCatalog(ctx context.Context) {
	t := time.NewTicker(max(s.cfg.CatalogTTL/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cat, fetched, err := s.catalog.get(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("cannot refresh the helpdesk catalog", "err", err)
			}
			continue
		}
		if fetched {
			s.catalogFetched(ctx, cat)
		}
	}
}

// catalogState is the writer's record of the catalog (key catalogKey in
// its bucket), shared by its replicas and kept across restarts.
type catalogState struct {
	// Labels is the catalog as last recorded, per field, helpdesk names.
	Labels map[string][]string `json:"labels"`
	// Removed lists, per field, the model labels reported removed, so each
	// is reported once (until the helpdesk has it again).
	Removed map[string][]string `json:"removed,omitempty"`
	At      time.Time           `json:"at"`
}

func catalogKey(system, account string) string {
	return "catalog." + pipeline.Token(system) + "." + pipeline.Token(account)
}

// catalogChange is one change to publish.
type catalogChange struct{ field, label, change string }

// account names the helpdesk account the writer works for: the one it was
// built for, else the one its first prediction named.
type account struct {
	mu              sync.Mutex
	system, account string
}

func (a *account) get() (string, string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.system, a.account, a.account != ""
}

func (a *account) learn(system, acct string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.account == "" {
		a.system, a.account = system, acct
	}
}

// catalogFetched compares a catalog just read from the helpdesk with the
// recorded one and publishes what changed. A failure is logged; the next
// fetch compares again against the record, which only moves once its
// changes are published.
func (s *Stage) catalogFetched(ctx context.Context, cat *ticketsystem.Catalog) {
	if err := s.updateCatalogState(ctx, func(st *catalogState, found bool) []catalogChange {
		now := CatalogLabels(cat)
		var changes []catalogChange
		if found {
			for _, field := range catalogFields {
				for _, v := range now[field] {
					if !slices.Contains(st.Labels[field], v) {
						changes = append(changes, catalogChange{field, s.modelLabel(field, v), CatalogAdded})
					}
				}
				for _, v := range st.Labels[field] {
					if !slices.Contains(now[field], v) {
						l := s.modelLabel(field, v)
						if !slices.Contains(st.Removed[field], l) {
							changes = append(changes, catalogChange{field, l, CatalogRemoved})
						}
					}
				}
			}
		}
		// A label the helpdesk has again may be reported removed again.
		for field, ls := range st.Removed {
			st.Removed[field] = slices.DeleteFunc(ls, func(l string) bool {
				_, ok := resolve(cat, field, s.labelMap.Name(field, l))
				if ok {
					s.forgetReported(field, l)
				}
				return ok
			})
		}
		st.Labels = now
		return changes
	}); err != nil {
	}
}

// labelRemoved reports a predicted label the helpdesk does not have
// (after a refresh) as removed, once per (field, label): the model learned
// it from the history, so it was there once. It reports whether the label
// was known to the writer's catalog record (removed since the writer saw
// it) for the outcome's reason.
func (s *Stage) labelRemoved(ctx context.Context, field, label string) (known bool) {
	key := field + "\x00" + label
	s.reportedMu.Lock()
	known, done := s.reported[key]
	s.reportedMu.Unlock()
	if done {
		return known
	}
	err := s.updateCatalogState(ctx, func(st *catalogState, _ bool) []catalogChange {
		name := s.labelMap.Name(field, label)
		known = slices.Contains(st.Removed[field], label)
		if known {
			return nil
		}
		// Seen in the record, but gone now (the record may still list it
		// when this replica's refresh came first).
		known = slices.Contains(st.Labels[field], name)
		return []catalogChange{{field, label, CatalogRemoved}}
	})
	if err != nil {
		s.log.Warn("cannot report a label the helpdesk no longer has", "field", field, "label", label, "err", err)
		return known
	}
	s.reportedMu.Lock()
	s.reported[key] = known
	s.reportedMu.Unlock()
	return known
}

func (s *Stage) forgetReported(field, label string) {
	s.reportedMu.Lock()
	delete(s.reported, field+"\x00"+label)
	s.reportedMu.Unlock()
}

// modelLabel names a helpdesk value as the model does: the label the label
// map renames to it, else the value itself.
func (s *Stage) modelLabel(field, name string) string {
	var from []string
	for l, n := range s.labelMap[field] {
		if n == name {
			from = append(from, l)
		}
	}
	if len(from) == 0 {
		return name
	}
	sort.Strings(from)
	return from[0]
}

// updateCatalogState applies change to the recorded catalog state,
// publishes the changes it returns (message ids derived from the record's
// revision, so replicas diffing the same record publish each change once)
// and stores the state with a compare-and-set, retrying on a conflict.
func (s *Stage) updateCatalogState(ctx context.Context, change func(st *catalogState, found bool) []catalogChange) error {
	system, acct, ok := s.account.get()
	if !ok {
		return nil // no prediction yet names the account: nothing to record against
	}
	key := catalogKey(system, acct)
	for range 8 {
		var st catalogState
		var rev uint64
		e, err := s.kv.Get(ctx, key)
		found := err == nil
		switch {
		case found:
			rev = e.Revision
			if jerr := json.Unmarshal(e.Value, &st); jerr != nil {
				s.log.Warn("unreadable catalog record; starting it again", "key", key, "err", jerr)
				st, found = catalogState{}, false
			}
		case !errors.Is(err, pipeline.ErrNotFound):
			return fmt.Errorf("read the catalog record: %w", err)
		}
		if st.Labels == nil {
			st.Labels = map[string][]string{}
		}
		if st.Removed == nil {
			st.Removed = map[string][]string{}
		}
		changes := change(&st, found)
		for _, c := range changes {
			if err := s.publishCatalogChange(ctx, system, acct, rev, c); err != nil {
				return err
			}
			if c.change == CatalogRemoved && !slices.Contains(st.Removed[c.field], c.label) {
				st.Removed[c.field] = append(st.Removed[c.field], c.label)
				sort.Strings(st.Removed[c.field])
			}
		}
		for f, ls := range st.Removed {
			if len(ls) == 0 {
				delete(st.Removed, f)
			}
		}
		st.At = s.now().UTC()
		b, err := json.Marshal(st)
		if err != nil {
			return err
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, b)
		} else {
			_, err = s.kv.Update(ctx, key, b, rev)
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, pipeline.ErrConflict) || errors.Is(err, pipeline.ErrExists):
			continue // another replica moved the record: diff again
		default:
			return fmt.Errorf("store the catalog record: %w", err)
		}
	}
	return errors.New("store the catalog record: too many concurrent changes")
}

// publishCatalogChange publishes one CATALOG_CHANGE outcome, on the
// account's outcome subject for ticket 0 (it is about no ticket).
func (s *Stage) publishCatalogChange(ctx context.Context, system, acct string, rev uint64, c catalogChange) error {
	out := &v1.Outcome{
		System: system, Account: acct, Kind: v1.OutcomeKind_OUTCOME_KIND_CATALOG_CHANGE, At: timestamppb.New(s.now()),
		CatalogChange: &v1.CatalogChange{Field: c.field, Label: c.label, Change: c.change},
	}
	data, err := proto.Marshal(out)
	if err != nil {
		return fmt.Errorf("encode catalog change: %w", err)
	}
	ack, err := s.pub.Publish(ctx, pipeline.OutMsg{
		Subject: pipeline.OutcomeSubject(system, acct, 0),
		ID:      CatalogChangeID(system, acct, c.field, c.label, c.change, rev),
		Data:    data,
		Header:  map[string]string{pipeline.HeaderContentType: pipeline.ContentTypeProtobuf},
	})
	if err != nil {
		return fmt.Errorf("publish catalog change %s %s %q: %w", c.change, c.field, c.label, err)
	}
	if !ack.Duplicate {
		s.metrics.catalogChanges.WithLabelValues(c.field, c.change).Inc()
		s.log.Info("helpdesk catalog changed", "field", c.field, "label", c.label, "change", c.change)
	}
	return nil
}

// CatalogChangeID is the message id of a catalog change: the account, the
// change and the revision of the catalog record it was found against, so
// replicas (and retries) finding the same change publish it once.
func CatalogChangeID(system, account, field, label, change string, rev uint64) string {
	return "catalog:" + pipeline.Token(system) + ":" + pipeline.Token(account) + ":" + field + ":" + change + ":" +
		strconv.FormatUint(rev, 10) + ":" + label
}
