package freshdesk_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
	"github.com/autotriage/autotriage/services/internal/ticketsystem/ticketsystemtest"
)

// startSim runs the simulator over real HTTP and returns a client for it.
// Waits between retries are skipped so fault tests stay fast.
func startSim(t *testing.T, cfg freshdesksim.Config, mutate ...func(*freshdesk.Config)) (*freshdesksim.Sim, *freshdesk.Client) {
	t.Helper()
	sim, err := freshdesksim.New(cfg)
	if err != nil {
		t.Fatalf("freshdesksim.New: %v", err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		srv.Close()
		sim.Close()
	})
	key := cfg.APIKey
	if key == "" {
		key = "sim-admin-key"
	}
	fc := freshdesk.Config{APIKey: freshdesk.Secret(key), BaseURL: srv.URL, HTTPClient: srv.Client(),
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}
	for _, m := range mutate {
		m(&fc)
	}
	c, err := freshdesk.New(fc)
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

func simNeutral(st freshdesksim.Ticket) ticketsystem.Ticket {
	return ticketsystem.Ticket{ID: st.ID, Subject: st.Subject, Description: st.DescriptionText,
		DescriptionHTML: st.Description, Tags: st.Tags, Type: st.Type, GroupID: st.GroupID,
		ResponderID: st.ResponderID, RequesterID: st.RequesterID, Priority: st.Priority, Status: st.Status,
		Source: st.Source, CustomFields: st.CustomFields, CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt,
		Spam: st.Spam, Deleted: st.Deleted}
}

func TestContractSimulator(t *testing.T) {
	ticketsystemtest.Run(t, func(t *testing.T) ticketsystemtest.Harness {
		sim, c := startSim(t, freshdesksim.Config{Seed: 7})
		return ticketsystemtest.Harness{
			Adapter: freshdesk.NewAdapter(c),
			Caps:    ticketsystemtest.Capabilities{Seed: true, Write: true, Search: true, ChangeFeed: true, Catalog: true},
			Seed: func(t *testing.T, s ticketsystemtest.SeedTicket) int64 {
				id, err := sim.AddTicket(freshdesksim.NewTicket{Subject: s.Subject, Description: s.Description,
					Priority: s.Priority, Tags: s.Tags})
				if err != nil {
					t.Fatalf("sim.AddTicket: %v", err)
				}
				if s.Status != 0 {
					if err := sim.AgentUpdate(id, map[string]any{"status": s.Status}); err != nil {
						t.Fatalf("sim.AgentUpdate: %v", err)
					}
				}
				return id
			},
			Inspect: func(t *testing.T, id int64) (ticketsystem.Ticket, bool) {
				st, ok := sim.Ticket(id)
				return simNeutral(st), ok
			},
			MarkGone: func(t *testing.T, id int64) {
				if err := sim.SetSpam(id, true, false); err != nil {
					t.Fatalf("sim.SetSpam: %v", err)
				}
			},
		}
	})
}

func TestSimulatorFaults(t *testing.T) {
	ctx := context.Background()
	t.Run("5xx burst is retried", func(t *testing.T) {
		sim, c := startSim(t, freshdesksim.Config{Seed: 1})
		id, _ := sim.AddTicket(freshdesksim.NewTicket{Subject: "s", Description: "d"})
		sim.SetFault("tickets.view", freshdesksim.Fault{Burst: 2, Status: 503})
		if _, err := c.ViewTicket(ctx, id); err != nil {
			t.Fatalf("ViewTicket after a 2-request 503 burst: %v", err)
		}
	})
	t.Run("reset on note is outcome unknown", func(t *testing.T) {
		sim, c := startSim(t, freshdesksim.Config{Seed: 1})
		id, _ := sim.AddTicket(freshdesksim.NewTicket{Subject: "s", Description: "d"})
		sim.SetFault("tickets.notes", freshdesksim.Fault{ResetRate: 1})
		_, err := c.AddNote(ctx, id, freshdesk.NewNote{Body: "<p>x</p>"})
		if !errors.Is(err, ticketsystem.ErrOutcomeUnknown) {
			t.Fatalf("err = %v; want ErrOutcomeUnknown", err)
		}
	})
	t.Run("5xx on update is retried", func(t *testing.T) {
		sim, c := startSim(t, freshdesksim.Config{Seed: 1})
		id, _ := sim.AddTicket(freshdesksim.NewTicket{Subject: "s", Description: "d"})
		sim.SetFault("tickets.update", freshdesksim.Fault{Burst: 1, Status: 500})
		tk, err := c.UpdateTicket(ctx, id, freshdesk.TicketUpdate{Priority: ptr(4)})
		if err != nil || tk.Priority != 4 {
			t.Fatalf("UpdateTicket = %v, %v", tk, err)
		}
	})
	t.Run("agent key cannot list groups; catalog falls back", func(t *testing.T) {
		_, c := startSim(t, freshdesksim.Config{Seed: 1}, func(c *freshdesk.Config) { c.APIKey = "sim-agent-key" })
		if _, err := c.Groups(ctx); !errors.Is(err, ticketsystem.ErrPermission) {
			t.Fatalf("Groups with agent key: %v; want ErrPermission", err)
		}
		cat, err := freshdesk.NewAdapter(c).Catalog(ctx)
		if err != nil || len(cat.Statuses) == 0 {
			t.Fatalf("Catalog with agent key: %+v, %v", cat, err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		_, c := startSim(t, freshdesksim.Config{Seed: 1}, func(c *freshdesk.Config) { c.APIKey = "nope" })
		if _, err := c.ViewTicket(ctx, 1); !errors.Is(err, ticketsystem.ErrAuth) {
			t.Fatalf("err = %v; want ErrAuth", err)
		}
	})
	t.Run("rate limit headers observed", func(t *testing.T) {
		sim, c := startSim(t, freshdesksim.Config{Seed: 1, Plan: "growth"})
		id, _ := sim.AddTicket(freshdesksim.NewTicket{Subject: "s", Description: "d"})
		if _, err := c.ViewTicket(ctx, id); err != nil {
			t.Fatal(err)
		}
		if rl := c.RateLimit(); !rl.Known || rl.Total != 200 || rl.Remaining >= 200 {
			t.Fatalf("RateLimit() = %+v; want growth plan's 200/min observed", rl)
		}
	})
}
