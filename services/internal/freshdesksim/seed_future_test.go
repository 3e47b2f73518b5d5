package freshdesksim

import (
	"testing"
	"time"
)

// A client's updated_since cursor follows the newest updated_at it saw, so
// generated history must never be stamped after the simulator's now.
func TestGeneratedHistoryIsNeverInTheFuture(t *testing.T) {
	s, err := New(Config{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Generate(GenerateOptions{History: 500, HistoryDays: 2}); err != nil {
		t.Fatal(err)
	}
	now := s.now()
	for _, id := range s.TicketIDs() {
		tk, _ := s.Ticket(id)
		if tk.UpdatedAt.After(now) || tk.CreatedAt.After(tk.UpdatedAt) {
			t.Fatalf("ticket %d: created %s, updated %s, now %s", id, tk.CreatedAt, tk.UpdatedAt, now.Format(time.RFC3339))
		}
	}
}
