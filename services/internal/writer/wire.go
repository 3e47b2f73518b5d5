package writer

import (
	"context"
	"strings"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/service"
)

// Build makes a writer on a process runtime, writing to Freshdesk with fd.
// The writer binary and `autotriage up` both start the stage through it.
func Build(ctx context.Context, rt *service.Runtime, cfg Config, fd freshdesk.Settings) (*Stage, error) {
	// The metering transport attributes credits to each prediction.
	client, err := fd.NewClient(rt.Registerer, rt.Log, MeterCredits(freshdesk.NewTransport()))
	if err != nil {
		return nil, err
	}
	kv, err := rt.Conn.KV(ctx, pipeline.BucketWriter)
	if err != nil {
		return nil, err
	}
	if cfg.TicketURL == "" {
		cfg.TicketURL = strings.TrimRight(client.BaseURL(), "/") + "/a/tickets/{id}"
	}
	rt.Log.Info("writing predictions", "freshdesk", client.BaseURL(), "notes", cfg.Notes, "tag", cfg.Tag)
	s, err := New(cfg, Deps{
		Tickets:         freshdesk.NewAdapter(client),
		KV:              kv,
		Publisher:       rt.Conn,
		Log:             rt.Log,
		Registerer:      rt.Registerer,
		PipelineMetrics: rt.Metrics,
		System:          "freshdesk",
		Account:         fd.AccountName(),
	})
	if err != nil {
		return nil, err
	}
	// A label map entry naming a value the helpdesk lacks stops the start.
	if err := s.CheckCatalog(ctx); err != nil {
		return nil, err
	}
	return s, nil
}
