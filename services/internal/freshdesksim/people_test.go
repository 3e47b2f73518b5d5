package freshdesksim

import (
	"fmt"
	"testing"
	"time"
)

// TestPeopleAnswerAPIWrites: after an API update a simulated person
// overrides the group it set at the configured rate (1 here), confirms it
// at rate 0 by resolving, gives an ungrouped ticket its true group, and
// acts once per ticket.
func TestPeopleAnswerAPIWrites(t *testing.T) {
	e := newEnv(t, Config{})
	if err := e.sim.Generate(GenerateOptions{}); err != nil { // groups only
		t.Fatal(err)
	}
	e.sim.mu.Lock()
	if len(e.sim.groups) < 2 {
		e.sim.mu.Unlock()
		t.Fatal("want at least two groups")
	}
	a, b := e.sim.groups[0], e.sim.groups[1]
	e.sim.mu.Unlock()
	add := func(truth string) int64 {
		id, err := e.sim.AddTicket(NewTicket{Subject: "s", Description: "d", Labels: &Labels{Group: truth}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	overridden, confirmed, suggested := add(a.name), add(a.name), add(b.name)
	e.sim.SetPeople(&People{OverrideRate: map[string]float64{a.name: 1}, Delay: time.Millisecond})
	put := func(id int64, body string) {
		if r := e.do("PUT", fmt.Sprintf("/api/v2/tickets/%d", id), adminKey, body); r.status != 200 {
			t.Fatalf("PUT %d: %d %s", id, r.status, r.body)
		}
	}
	// The override goes to the first other group (the truth is the group set).
	put(overridden, fmt.Sprintf(`{"group_id":%d}`, a.id))
	waitFor(t, func() bool { return e.sim.PeopleStats().Overridden == 1 })
	if tk, _ := e.sim.Ticket(overridden); tk.GroupID == a.id || tk.GroupID == 0 || tk.Status == 4 {
		t.Errorf("overridden ticket: group %d status %d; want another group than %d, not resolved", tk.GroupID, tk.Status, a.id)
	}
	e.sim.SetPeople(&People{OverrideRate: map[string]float64{a.name: 0}, Delay: time.Millisecond})
	put(confirmed, fmt.Sprintf(`{"group_id":%d}`, a.id))
	put(suggested, `{"tags":["autotriage"]}`)
	waitFor(t, func() bool { s := e.sim.PeopleStats(); return s.Confirmed == 1 && s.Suggested == 1 })
	if tk, _ := e.sim.Ticket(confirmed); tk.GroupID != a.id || tk.Status != 4 {
		t.Errorf("confirmed ticket: group %d status %d; want group %d resolved", tk.GroupID, tk.Status, a.id)
	}
	if tk, _ := e.sim.Ticket(suggested); tk.GroupID != b.id || tk.Status != 4 {
		t.Errorf("suggested ticket: group %d status %d; want its true group %d, resolved", tk.GroupID, tk.Status, b.id)
	}
	// Once per ticket: a second API write is not answered. People act in
	// order, so once a later ticket's answer is in, an answer to the second
	// write would be too.
	put(confirmed, `{"priority":3}`)
	sentinel := add(b.name)
	put(sentinel, `{"tags":["x"]}`)
	waitFor(t, func() bool { return e.sim.PeopleStats().Suggested == 2 })
	if s := e.sim.PeopleStats(); s.Errors != 0 || s.Overridden != 1 || s.Confirmed != 1 || s.Resolved != 0 {
		t.Errorf("stats %+v; want one override, one confirmation, two suggestions, no errors", s)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
