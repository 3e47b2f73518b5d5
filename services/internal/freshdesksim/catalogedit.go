package freshdesksim

import (
	"fmt"
	"slices"
	"strings"
)

// The helpdesk's catalog changes under autotriage: an admin creates or
// deletes a group, adds or removes a ticket type choice. These methods are
// those admin actions, for tests. The API then serves the new catalog
// (GET /groups, /ticket_fields) and validates updates against it (an update
// to a deleted group or a removed type is a 400).
//
// Unverified against Freshdesk: what happens to tickets of a deleted group
// or with a removed type; the simulator leaves them as they are.

// AddGroup creates a group (with three agents) and returns its id; an
// existing group of that name is returned as is.
func (s *Sim) AddGroup(name string) (int64, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return 0, fmt.Errorf("freshdesksim: add group: empty name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ensureGroup(name, name+" team"), nil
}

// DeleteGroup deletes the group named name, and removes its agents from it.
func (s *Sim) DeleteGroup(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupByName(name)
	if g == nil {
		return fmt.Errorf("freshdesksim: delete group %q: no such group", name)
	}
	s.groups = slices.DeleteFunc(slices.Clone(s.groups), func(x *group) bool { return x == g })
	for _, a := range s.agents {
		a.groupIDs = slices.DeleteFunc(a.groupIDs, func(id int64) bool { return id == g.id })
	}
	return nil
}

// AddType adds a choice to the ticket type field.
func (s *Sim) AddType(name string) error {
	name = strings.TrimSpace(name)
	if name == "" {
		return fmt.Errorf("freshdesksim: add type: empty name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.fields.types, name) {
		s.fields.types = append(slices.Clone(s.fields.types), name)
	}
	return nil
}

// RemoveType removes a choice from the ticket type field.
func (s *Sim) RemoveType(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.fields.types, name) {
		return fmt.Errorf("freshdesksim: remove type %q: no such type", name)
	}
	s.fields.types = slices.DeleteFunc(slices.Clone(s.fields.types), func(t string) bool { return t == name })
	return nil
}

// Types lists the ticket type choices.
func (s *Sim) Types() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.fields.types)
}
