package fetcher

import (
	"context"
	"fmt"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/service"
)

// Build makes a fetcher on a process runtime, talking to Freshdesk with fd.
// The fetcher binary and `autotriage up` both start the stage through it.
func Build(ctx context.Context, rt *service.Runtime, cfg Config, fd freshdesk.Settings) (*Fetcher, error) {
	client, err := fd.NewClient(rt.Registerer, rt.Log, nil)
	if err != nil {
		return nil, err
	}
	adapter := freshdesk.NewAdapter(client)
	state, err := rt.Conn.KV(ctx, pipeline.BucketFetcher)
	if err != nil {
		return nil, err
	}
	writerKV, err := rt.Conn.KV(ctx, pipeline.BucketWriter)
	if err != nil {
		return nil, err
	}
	account := cfg.Account
	if account == "" {
		account = fd.AccountName()
	}
	f, err := New(cfg, Deps{
		System: "freshdesk", Account: account,
		Source: adapter, Catalog: adapter,
		Bus: rt.Conn, State: state, Ledger: ledger.New(writerKV),
		Log: rt.Log, Registerer: rt.Registerer, PipelineMetrics: rt.Metrics,
		StopContext: rt.Shutdown.Context,
	})
	if err != nil {
		return nil, err
	}
	// The triage start is fixed now, at the process start, rather than
	// when the first ticket version arrives.
	if _, err := f.Origin(ctx); err != nil {
		return nil, fmt.Errorf("fetcher: %w", err)
	}
	return f, nil
}
