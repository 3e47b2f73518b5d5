package quality

import (
	"fmt"
	"testing"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
)

// BenchmarkObserve: one verdict into a tracker of 4 fields x 50 classes
// with full windows.
func BenchmarkObserve(b *testing.B) {
	tr := NewTracker(Options{})
	now := time.Now()
	outs := make([]*v1.Outcome, 200)
	for i := range outs {
		outs[i] = feedback(fmt.Sprint("f", i%4), fmt.Sprint("c", i%50), "m1", v1.Verdict(1+i%4), now)
	}
	for i := range 200 * DefaultWindow {
		tr.Observe(outs[i%len(outs)])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		tr.Observe(outs[i%len(outs)])
	}
}

// BenchmarkSnapshot: the scrape of that tracker (200 classes x 200 verdicts).
func BenchmarkSnapshot(b *testing.B) {
	tr := NewTracker(Options{})
	now := time.Now()
	for i := range 200 * DefaultWindow {
		tr.Observe(feedback(fmt.Sprint("f", i%4), fmt.Sprint("c", i%200), "m1", v1.Verdict(1+i%4), now))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if len(tr.Snapshot()) != 200 {
			b.Fatal("classes")
		}
	}
}
