package freshdesksim

import (
	"math/rand/v2"
	"sync"
	"time"
)

// People is how the simulated helpdesk's agents answer the writes made
// through the API (autotriage's note and update): some time after the first
// such write to a ticket a person looks at it once and
//
//   - if the API changed its group, moves it to another group with the
//     probability OverrideRate gives for that group (to the ticket's true
//     group when that differs, else to the first other group): an override;
//     otherwise resolves it (status 4) with the group left in place: a
//     confirmation;
//   - if the ticket is still without a group (autotriage only suggested
//     one, in a note), sets the ticket's true group and resolves it: the
//     suggestion is accepted when it named that group, rejected otherwise;
//   - if the ticket had a group before, resolves it.
//
// With it, tests drive the feedback autotriage measures live precision from
// at a chosen rate per class, and change the rate while the pipeline runs.
type People struct {
	// OverrideRate is the probability, by group name, that a group set by
	// the API is changed by a person.
	OverrideRate map[string]float64
	// Delay is how long (real time) after the update the person acts, so
	// that the writer has recorded its write first, as with real people
	// (default 500 ms).
	Delay time.Duration
}

// PeopleStats counts what the simulated people did.
type PeopleStats struct {
	Overridden int // groups changed after an API update set them
	Confirmed  int // tickets resolved with the API-set group in place
	Suggested  int // ungrouped tickets given their true group, then resolved
	Resolved   int // tickets that already had a group, resolved
	Errors     int // updates the simulator refused (logged nowhere; a test bug)
}

// peopleMaxQueue bounds the updates waiting for a person; beyond it updates
// are ignored (and counted as errors) rather than growing without limit.
const peopleMaxQueue = 100000

type people struct {
	mu    sync.Mutex
	cfg   *People
	rng   *rand.Rand
	acted map[int64]bool
	// first is each ticket's group before its first API write, recorded
	// (under the simulator's lock) while people are set.
	first map[int64]int64
	queue chan peopleItem
	once  sync.Once
	stats PeopleStats
}

type peopleItem struct {
	id        int64
	due       time.Time
	prevGroup int64
}

// SetPeople makes the simulated people answer API updates as p says, from
// the next update on; nil stops them. It may be called at any time, e.g. to
// stop overriding a class mid-run.
func (s *Sim) SetPeople(p *People) {
	s.people.mu.Lock()
	defer s.people.mu.Unlock()
	if p != nil {
		c := *p
		if c.Delay <= 0 {
			c.Delay = 500 * time.Millisecond
		}
		p = &c
	}
	s.people.cfg = p
	if s.people.rng == nil {
		s.people.rng = rand.New(rand.NewPCG(uint64(s.cfg.Seed), 0x9e0b1e))
		s.people.acted = map[int64]bool{}
		s.people.first = map[int64]int64{}
	}
	if p != nil {
		s.people.once.Do(func() {
			s.people.queue = make(chan peopleItem, peopleMaxQueue)
			s.wg.Add(1)
			go s.runPeople()
		})
	}
}

// PeopleStats returns what the simulated people did so far.
func (s *Sim) PeopleStats() PeopleStats {
	s.people.mu.Lock()
	defer s.people.mu.Unlock()
	return s.people.stats
}

// before records a ticket's group before an API write, the first time.
func (p *people) before(id, group int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg == nil || p.acted[id] {
		return
	}
	if _, ok := p.first[id]; !ok {
		p.first[id] = group
	}
}

// afterAPIWrite queues ticket id for a person after its first API write
// while people are set.
func (s *Sim) afterAPIWrite(id int64) {
	s.people.mu.Lock()
	defer s.people.mu.Unlock()
	prev, seen := s.people.first[id]
	if s.people.cfg == nil || s.people.acted[id] || s.people.queue == nil || !seen {
		return
	}
	s.people.acted[id] = true
	delete(s.people.first, id)
	select {
	case s.people.queue <- peopleItem{id: id, due: time.Now().Add(s.people.cfg.Delay), prevGroup: prev}:
	default:
		s.people.stats.Errors++
	}
}

func (s *Sim) runPeople() {
	defer s.wg.Done()
	for {
		var it peopleItem
		select {
		case <-s.ctx.Done():
			return
		case it = <-s.people.queue:
		}
		if d := time.Until(it.due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		s.act(it)
	}
}

// act is one person's look at a ticket after an API update.
func (s *Sim) act(it peopleItem) {
	s.people.mu.Lock()
	cfg := s.people.cfg
	var dice float64
	if s.people.rng != nil {
		dice = s.people.rng.Float64()
	}
	s.people.mu.Unlock()
	if cfg == nil {
		return
	}
	truth, _ := s.TrueLabels(it.id)
	s.mu.Lock()
	var group int64
	if tk := s.tickets[it.id]; tk != nil {
		group = tk.t.GroupID
	}
	var setName string
	var otherID, trueID int64
	if g := s.groupByID(group); g != nil {
		setName = g.name
	}
	for _, g := range s.groups {
		if g.id != group && otherID == 0 {
			otherID = g.id
		}
	}
	if g := s.groupByName(truth.Group); g != nil {
		trueID = g.id
	}
	s.mu.Unlock()

	var fields map[string]any
	var count *int
	switch {
	case group != 0 && group != it.prevGroup:
		if dice < cfg.OverrideRate[setName] {
			to := otherID
			if trueID != 0 && trueID != group {
				to = trueID
			}
			fields = map[string]any{"group_id": to}
			count = &s.people.stats.Overridden
		} else {
			fields = map[string]any{"status": 4}
			count = &s.people.stats.Confirmed
		}
	case group == 0:
		fields = map[string]any{"status": 4}
		if trueID != 0 {
			fields["group_id"] = trueID
		}
		count = &s.people.stats.Suggested
	default:
		fields = map[string]any{"status": 4}
		count = &s.people.stats.Resolved
	}
	err := s.AgentUpdate(it.id, fields)
	s.people.mu.Lock()
	if err != nil {
		s.people.stats.Errors++
	} else {
		*count++
	}
	s.people.mu.Unlock()
}
