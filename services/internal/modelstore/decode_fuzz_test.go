package modelstore

import (
	"testing"

	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// FuzzDecodePromotion: the promotion pointer is read from the KV bucket,
// which any process with bucket access can write. It either decodes to a
// promotion naming a model, or is an error; never a panic.
func FuzzDecodePromotion(f *testing.F) {
	f.Add([]byte(`{"id":"m-20260101","version":"1","promoted_at":"2026-01-01T00:00:00Z","by":"ops"}`))
	f.Add([]byte(`{"id":""}`))
	f.Add([]byte(`{"id":"x","promoted_at":"not a time"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePromotion(pipeline.Entry{Value: b, Revision: 9})
		if err != nil {
			return
		}
		if p.ID == "" || p.Revision != 9 {
			t.Fatalf("accepted %q as %+v", b, p)
		}
	})
}
