package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// The DLQ is bounded by bytes by default, so bodies posted at the webhook
// to be dead-lettered cannot fill the store: the oldest go first.
func TestDLQIsBoundedByBytes(t *testing.T) {
	if pipeline.DefaultTopology().DLQMaxBytes <= 0 {
		t.Fatal("the DLQ has no byte cap by default")
	}
	top := pipeline.DefaultTopology()
	top.DLQMaxBytes = 512 << 10
	c := connect(t, natstest.Start(t), top)
	ctx := context.Background()
	junk := bytes.Repeat([]byte("x"), 64<<10)
	for i := range 40 {
		if err := c.DeadLetterRaw(ctx, "fetcher", "acme", fmt.Sprintf("junk-%d", i), junk, "webhook unreadable", nil); err != nil {
			t.Fatal(err)
		}
	}
	stats, err := c.StreamStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		if s.Name != pipeline.StreamDLQ {
			continue
		}
		if s.Bytes > uint64(top.DLQMaxBytes) || s.Messages == 0 || s.Messages >= 40 {
			t.Fatalf("DLQ holds %d messages, %d bytes; cap %d", s.Messages, s.Bytes, top.DLQMaxBytes)
		}
		return
	}
	t.Fatal("no DLQ stats")
}
