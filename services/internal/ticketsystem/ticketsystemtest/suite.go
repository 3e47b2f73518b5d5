// Package ticketsystemtest is the contract test suite for
// ticketsystem.Adapter implementations. An implementation's test calls Run
// with a constructor for a Harness: the adapter under test, hooks that reach
// the backing system directly (to seed and inspect tickets without going
// through the adapter), and the capabilities it claims. Parts of the
// contract an implementation does not claim are skipped, not failed.
package ticketsystemtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// Capabilities declares which parts of the contract an implementation
// supports.
type Capabilities struct {
	// Seed: Harness.Seed creates tickets, so tests can use their own data.
	Seed bool
	// Write: UpdateTicket and AddNote change the backing system, and
	// Harness.Inspect reads it back.
	Write bool
	// Search: FindTickets honours Status, Priority and Tags. Requires Seed.
	Search bool
	// ChangeFeed: ChangedSince is supported.
	ChangeFeed bool
	// Catalog: Catalog is supported.
	Catalog bool
}

// SeedTicket is a ticket to create in the backing system.
type SeedTicket struct {
	Subject     string
	Description string
	Status      int // 0: the system's default for new tickets
	Priority    int // 0: the system's default
	Tags        []string
}

// Harness is what Run needs from an implementation.
type Harness struct {
	Adapter ticketsystem.Adapter
	Caps    Capabilities
	// Seed creates a ticket directly in the backing system and returns its
	// id. Required with Caps.Seed.
	Seed func(t *testing.T, s SeedTicket) int64
	// Inspect reads a ticket directly from the backing system. Required with
	// Caps.Write.
	Inspect func(t *testing.T, id int64) (ticketsystem.Ticket, bool)
	// MarkGone makes a ticket spam or deleted in the backing system.
	// Optional; enables the ErrGone test.
	MarkGone func(t *testing.T, id int64)
	// Known are ids of existing tickets, used when Caps.Seed is false.
	Known []int64
	// InFeed are ids ChangedSince(epoch) must deliver when Caps.Seed is
	// false; default Known.
	InFeed []int64
	// Missing is an id that does not exist; default 1<<40.
	Missing int64
}

var uniq atomic.Int64

// unique returns a tag no other test uses.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e9, uniq.Add(1))
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Run runs the contract suite. newHarness is called once per subtest so
// subtests do not share state.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"GetTicket/Existing", testGetExisting},
		{"GetTicket/Missing", testGetMissing},
		{"GetTicket/CanceledContext", testCanceled},
		{"FindFirstTicket/NoMatch", testFindFirstNoMatch},
		{"FindTickets/Filters", testFindFilters},
		{"ChangedSince/Ordered", testChangedSince},
		{"ChangedSince/CallbackError", testChangedSinceCallbackError},
		{"UpdateTicket/OnlyChangedFields", testUpdatePriority},
		{"UpdateTicket/AddTagsMerges", testAddTags},
		{"UpdateTicket/SetTagsReplaces", testSetTags},
		{"UpdateTicket/NoOp", testUpdateNoOp},
		{"UpdateTicket/Missing", testUpdateMissing},
		{"UpdateTicket/Validation", testUpdateValidation},
		{"UpdateTicket/Gone", testUpdateGone},
		{"AddNote/PrivateByDefault", testAddNote},
		{"Catalog/Vocabulary", testCatalog},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newHarness(t))
		})
	}
}

func require(t *testing.T, ok bool, what string) {
	t.Helper()
	if !ok {
		t.Skipf("implementation does not claim %s", what)
	}
}

// existing returns a ticket id: seeded when possible, else a known one.
func existing(t *testing.T, h Harness, s SeedTicket) int64 {
	t.Helper()
	if h.Caps.Seed {
		return h.Seed(t, s)
	}
	if len(h.Known) == 0 {
		t.Skip("no Seed capability and no Known tickets")
	}
	return h.Known[0]
}

func missing(h Harness) int64 {
	if h.Missing != 0 {
		return h.Missing
	}
	return 1 << 40
}

func wantKind(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error = %v; want one matching %v", err, kind)
	}
	var te *ticketsystem.Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v is not a *ticketsystem.Error", err)
	}
}

func testGetExisting(t *testing.T, h Harness) {
	seed := SeedTicket{Subject: "contract get " + unique("s"), Description: "printer on fire", Tags: []string{unique("get")}}
	id := existing(t, h, seed)
	got, err := h.Adapter.GetTicket(ctxFor(t), id)
	if err != nil {
		t.Fatalf("GetTicket(%d): %v", id, err)
	}
	if got.ID != id {
		t.Fatalf("GetTicket(%d).ID = %d", id, got.ID)
	}
	if got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() || got.UpdatedAt.Before(got.CreatedAt) {
		t.Errorf("timestamps created=%v updated=%v", got.CreatedAt, got.UpdatedAt)
	}
	if got.Tags == nil {
		t.Errorf("Tags is nil; want an empty or filled slice")
	}
	if h.Caps.Seed {
		if got.Subject != seed.Subject {
			t.Errorf("Subject = %q; want %q", got.Subject, seed.Subject)
		}
		if !slices.Equal(got.Tags, seed.Tags) {
			t.Errorf("Tags = %q; want %q", got.Tags, seed.Tags)
		}
		if got.Description == "" || got.DescriptionHTML == "" {
			t.Errorf("description text %q / html %q; want both", got.Description, got.DescriptionHTML)
		}
	}
}

func testGetMissing(t *testing.T, h Harness) {
	got, err := h.Adapter.GetTicket(ctxFor(t), missing(h))
	if got != nil {
		t.Errorf("GetTicket(missing) returned a ticket: %+v", got)
	}
	wantKind(t, err, ticketsystem.ErrNotFound)
}

func testCanceled(t *testing.T, h Harness) {
	id := existing(t, h, SeedTicket{Subject: "contract cancel", Description: "x"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Adapter.GetTicket(ctx, id); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetTicket with canceled context: err = %v; want context.Canceled", err)
	}
}

func testFindFirstNoMatch(t *testing.T, h Harness) {
	q := ticketsystem.Query{UpdatedSince: time.Now().AddDate(50, 0, 0)}
	got, err := h.Adapter.FindFirstTicket(ctxFor(t), q)
	if got != nil {
		t.Errorf("FindFirstTicket returned %+v; want nil", got)
	}
	wantKind(t, err, ticketsystem.ErrNotFound)
	all, err := h.Adapter.FindTickets(ctxFor(t), q)
	if err != nil || len(all) != 0 {
		t.Errorf("FindTickets(no match) = %d tickets, %v; want 0, nil", len(all), err)
	}
}

func testFindFilters(t *testing.T, h Harness) {
	require(t, h.Caps.Search && h.Caps.Seed, "Search with Seed")
	tag := unique("find")
	open := h.Seed(t, SeedTicket{Subject: "find open", Description: "a", Status: 2, Priority: 1, Tags: []string{tag}})
	pending := h.Seed(t, SeedTicket{Subject: "find pending", Description: "b", Status: 3, Priority: 4, Tags: []string{tag, "other"}})
	h.Seed(t, SeedTicket{Subject: "find unrelated", Description: "c", Status: 3, Priority: 4, Tags: []string{unique("x")}})
	ctx := ctxFor(t)

	all, err := h.Adapter.FindTickets(ctx, ticketsystem.Query{Tags: []string{tag}})
	if err != nil {
		t.Fatalf("FindTickets(tag): %v", err)
	}
	if got := ids(all); !sameSet(got, []int64{open, pending}) {
		t.Fatalf("FindTickets(tag) = %v; want %v", got, []int64{open, pending})
	}
	some, err := h.Adapter.FindTickets(ctx, ticketsystem.Query{Tags: []string{tag}, Status: []int{3}})
	if err != nil {
		t.Fatalf("FindTickets(tag,status): %v", err)
	}
	if got := ids(some); !sameSet(got, []int64{pending}) {
		t.Fatalf("FindTickets(tag, status 3) = %v; want [%d]", got, pending)
	}
	some, err = h.Adapter.FindTickets(ctx, ticketsystem.Query{Tags: []string{tag}, Priority: []int{1}})
	if err != nil || !sameSet(ids(some), []int64{open}) {
		t.Fatalf("FindTickets(tag, priority 1) = %v, %v; want [%d]", ids(some), err, open)
	}
	first, err := h.Adapter.FindFirstTicket(ctx, ticketsystem.Query{Tags: []string{tag}})
	if err != nil {
		t.Fatalf("FindFirstTicket(tag): %v", err)
	}
	if first.ID != open && first.ID != pending {
		t.Fatalf("FindFirstTicket(tag).ID = %d; want %d or %d", first.ID, open, pending)
	}
	limited, err := h.Adapter.FindTickets(ctx, ticketsystem.Query{Tags: []string{tag}, Limit: 1})
	if err != nil || len(limited) != 1 {
		t.Fatalf("FindTickets(Limit 1) = %d tickets, %v", len(limited), err)
	}
}

func testChangedSince(t *testing.T, h Harness) {
	require(t, h.Caps.ChangeFeed, "ChangeFeed")
	var want []int64
	since := time.Unix(0, 0)
	if h.Caps.Seed {
		since = time.Now().Add(-time.Hour)
		for i := range 3 {
			want = append(want, h.Seed(t, SeedTicket{Subject: fmt.Sprintf("feed %d", i), Description: "d"}))
		}
	} else if want = h.InFeed; want == nil {
		want = h.Known
	}
	type version struct {
		id int64
		at time.Time
	}
	seen := map[version]bool{}
	var got []int64
	var last time.Time
	pages := 0
	err := h.Adapter.ChangedSince(ctxFor(t), since, func(page []ticketsystem.Ticket) error {
		pages++
		if len(page) == 0 {
			t.Errorf("page %d is empty; empty pages must not be delivered", pages)
		}
		for _, tk := range page {
			if tk.UpdatedAt.Before(last) {
				t.Errorf("ticket %d updated %v after one updated %v: not ascending", tk.ID, tk.UpdatedAt, last)
			}
			last = tk.UpdatedAt
			if tk.UpdatedAt.Before(since) {
				t.Errorf("ticket %d updated %v, before since %v", tk.ID, tk.UpdatedAt, since)
			}
			v := version{tk.ID, tk.UpdatedAt}
			if seen[v] {
				t.Errorf("ticket %d version %v delivered twice", tk.ID, tk.UpdatedAt)
			}
			seen[v] = true
			got = append(got, tk.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ChangedSince: %v", err)
	}
	for _, id := range want {
		if !slices.Contains(got, id) {
			t.Errorf("ChangedSince did not deliver ticket %d", id)
		}
	}
}

func testChangedSinceCallbackError(t *testing.T, h Harness) {
	require(t, h.Caps.ChangeFeed, "ChangeFeed")
	if h.Caps.Seed {
		h.Seed(t, SeedTicket{Subject: "feed stop", Description: "d"})
	}
	stop := errors.New("stop here")
	calls := 0
	err := h.Adapter.ChangedSince(ctxFor(t), time.Unix(0, 0), func([]ticketsystem.Ticket) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("ChangedSince with failing callback: err=%v calls=%d; want the callback's error after 1 call", err, calls)
	}
}

func writable(t *testing.T, h Harness) {
	t.Helper()
	require(t, h.Caps.Write && h.Caps.Seed, "Write with Seed")
}

func inspect(t *testing.T, h Harness, id int64) ticketsystem.Ticket {
	t.Helper()
	tk, ok := h.Inspect(t, id)
	if !ok {
		t.Fatalf("Inspect(%d): ticket not in backing system", id)
	}
	return tk
}

func testUpdatePriority(t *testing.T, h Harness) {
	writable(t, h)
	id := h.Seed(t, SeedTicket{Subject: "update prio", Description: "d", Priority: 1, Status: 2, Tags: []string{"keep"}})
	before := inspect(t, h, id)
	prio := 3
	got, err := h.Adapter.UpdateTicket(ctxFor(t), id, ticketsystem.Update{Priority: &prio})
	if err != nil {
		t.Fatalf("UpdateTicket: %v", err)
	}
	if got.ID != id || got.Priority != 3 {
		t.Fatalf("UpdateTicket returned id=%d priority=%d; want %d, 3", got.ID, got.Priority, id)
	}
	after := inspect(t, h, id)
	if after.Priority != 3 {
		t.Fatalf("backing priority = %d; want 3", after.Priority)
	}
	if after.Status != before.Status || after.Subject != before.Subject || !slices.Equal(after.Tags, before.Tags) ||
		after.GroupID != before.GroupID || after.Type != before.Type {
		t.Fatalf("fields not in the update changed:\nbefore %+v\nafter  %+v", before, after)
	}
}

func testAddTags(t *testing.T, h Harness) {
	writable(t, h)
	id := h.Seed(t, SeedTicket{Subject: "add tags", Description: "d", Tags: []string{"a", "b"}})
	got, err := h.Adapter.UpdateTicket(ctxFor(t), id, ticketsystem.Update{AddTags: []string{"c", "a"}})
	if err != nil {
		t.Fatalf("UpdateTicket(AddTags): %v", err)
	}
	want := []string{"a", "b", "c"}
	if !sameSet(got.Tags, want) {
		t.Errorf("returned tags %q; want %q", got.Tags, want)
	}
	if after := inspect(t, h, id); !sameSet(after.Tags, want) || len(after.Tags) != 3 {
		t.Errorf("backing tags %q; want %q", after.Tags, want)
	}
}

func testSetTags(t *testing.T, h Harness) {
	writable(t, h)
	id := h.Seed(t, SeedTicket{Subject: "set tags", Description: "d", Tags: []string{"a", "b"}})
	if _, err := h.Adapter.UpdateTicket(ctxFor(t), id, ticketsystem.Update{SetTags: []string{"z"}}); err != nil {
		t.Fatalf("UpdateTicket(SetTags): %v", err)
	}
	if after := inspect(t, h, id); !slices.Equal(after.Tags, []string{"z"}) {
		t.Errorf("backing tags %q; want [z]", after.Tags)
	}
	if _, err := h.Adapter.UpdateTicket(ctxFor(t), id, ticketsystem.Update{SetTags: []string{}}); err != nil {
		t.Fatalf("UpdateTicket(SetTags empty): %v", err)
	}
	if after := inspect(t, h, id); len(after.Tags) != 0 {
		t.Errorf("backing tags %q after clearing; want none", after.Tags)
	}
}

func testUpdateNoOp(t *testing.T, h Harness) {
	writable(t, h)
	id := h.Seed(t, SeedTicket{Subject: "noop", Description: "d", Tags: []string{"a"}})
	before := inspect(t, h, id)
	for _, u := range []ticketsystem.Update{{}, {AddTags: []string{"a"}}} {
		got, err := h.Adapter.UpdateTicket(ctxFor(t), id, u)
		if err != nil {
			t.Fatalf("UpdateTicket(%+v): %v", u, err)
		}
		if got.ID != id || !slices.Equal(got.Tags, []string{"a"}) {
			t.Errorf("UpdateTicket(%+v) = id %d tags %q", u, got.ID, got.Tags)
		}
	}
	if after := inspect(t, h, id); !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("no-op update changed updated_at from %v to %v", before.UpdatedAt, after.UpdatedAt)
	}
}

func testUpdateMissing(t *testing.T, h Harness) {
	require(t, h.Caps.Write, "Write")
	prio := 2
	_, err := h.Adapter.UpdateTicket(ctxFor(t), missing(h), ticketsystem.Update{Priority: &prio})
	wantKind(t, err, ticketsystem.ErrNotFound)
	_, err = h.Adapter.AddNote(ctxFor(t), missing(h), ticketsystem.Note{BodyHTML: "<p>x</p>"})
	wantKind(t, err, ticketsystem.ErrNotFound)
}

func testUpdateValidation(t *testing.T, h Harness) {
	writable(t, h)
	id := h.Seed(t, SeedTicket{Subject: "invalid", Description: "d", Priority: 1})
	prio := 99
	_, err := h.Adapter.UpdateTicket(ctxFor(t), id, ticketsystem.Update{Priority: &prio})
	wantKind(t, err, ticketsystem.ErrValidation)
	var te *ticketsystem.Error
	errors.As(err, &te)
	if len(te.Fields) == 0 || te.Fields[0].Field == "" || te.Fields[0].Code == "" {
		t.Errorf("validation error without field details: %+v", te)
	}
	if ticketsystem.IsRetryable(err) {
		t.Errorf("validation error reported as retryable")
	}
	if after := inspect(t, h, id); after.Priority != 1 {
		t.Errorf("rejected update changed priority to %d", after.Priority)
	}
}

func testUpdateGone(t *testing.T, h Harness) {
	writable(t, h)
	require(t, h.MarkGone != nil, "MarkGone")
	id := h.Seed(t, SeedTicket{Subject: "gone", Description: "d"})
	h.MarkGone(t, id)
	prio := 4
	_, err := h.Adapter.UpdateTicket(ctxFor(t), id, ticketsystem.Update{Priority: &prio})
	wantKind(t, err, ticketsystem.ErrGone)
}

func testAddNote(t *testing.T, h Harness) {
	writable(t, h)
	id := h.Seed(t, SeedTicket{Subject: "note", Description: "d"})
	marker := unique("note")
	ctx := ctxFor(t)
	c, err := h.Adapter.AddNote(ctx, id, ticketsystem.Note{BodyHTML: "<p>" + marker + "</p>"})
	if err != nil {
		t.Fatalf("AddNote: %v", err)
	}
	if !c.Private || !c.IsNote || c.ID == 0 {
		t.Errorf("AddNote returned %+v; want a private note with an id", c)
	}
	convs, err := h.Adapter.Conversations(ctx, id)
	if err != nil {
		t.Fatalf("Conversations: %v", err)
	}
	found := 0
	for _, cv := range convs {
		if cv.ID == c.ID {
			found++
			if !cv.Private || !cv.IsNote || cv.TicketID != id {
				t.Errorf("listed note %+v; want private note of ticket %d", cv, id)
			}
			if !strings.Contains(cv.BodyHTML, marker) && !strings.Contains(cv.BodyText, marker) {
				t.Errorf("listed note body %q lacks %q", cv.BodyHTML, marker)
			}
		}
	}
	if found != 1 {
		t.Fatalf("note %d listed %d times; want once", c.ID, found)
	}
	pub, err := h.Adapter.AddNote(ctx, id, ticketsystem.Note{BodyHTML: "<p>public</p>", Public: true})
	if err != nil || pub.Private {
		t.Fatalf("AddNote(Public) = %+v, %v; want a public note", pub, err)
	}
}

func testCatalog(t *testing.T, h Harness) {
	require(t, h.Caps.Catalog, "Catalog")
	cat, err := h.Adapter.Catalog(ctxFor(t))
	if err != nil {
		t.Fatalf("Catalog: %v", err)
	}
	if len(cat.Statuses) == 0 || len(cat.Priorities) == 0 || len(cat.Types) == 0 {
		t.Fatalf("catalog lacks statuses, priorities or types: %+v", cat)
	}
	for _, c := range cat.Priorities {
		if c.ID == 0 || c.Name == "" {
			t.Errorf("priority %+v lacks id or name", c)
		}
	}
	for _, s := range cat.Statuses {
		if s.ID == 0 || s.AgentLabel == "" {
			t.Errorf("status %+v lacks id or label", s)
		}
	}
	for _, g := range cat.Groups {
		if got, ok := cat.GroupByName(g.Name); !ok || got.ID != g.ID {
			t.Errorf("GroupByName(%q) = %+v, %v", g.Name, got, ok)
		}
	}
	if h.Caps.Seed {
		id := h.Seed(t, SeedTicket{Subject: "catalog", Description: "d"})
		tk, err := h.Adapter.GetTicket(ctxFor(t), id)
		if err != nil {
			t.Fatalf("GetTicket: %v", err)
		}
		if _, ok := cat.StatusByID(int64(tk.Status)); !ok {
			t.Errorf("ticket status %d not in catalog %+v", tk.Status, cat.Statuses)
		}
	}
}

func ids(ts []ticketsystem.Ticket) []int64 {
	out := make([]int64, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

func sameSet[T comparable](a, b []T) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}
