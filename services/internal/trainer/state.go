package trainer

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// Keys of the trainer in pipeline.BucketPolicy.
const (
	// KeyCursor holds State: the history read so far and what the trainer
	// decided.
	KeyCursor = "trainer.cursor"
	// KeyRequest is written by `autotriage train --request`; every new
	// revision asks for a run.
	KeyRequest = "trainer.request"
)

// examplesData names the kept examples in the model registry.
const examplesData = "trainer-examples"

// maxRetired bounds the remembered rolled-back models.
const maxRetired = 100

// State is the trainer's progress, kept in KV so a restarted trainer (or
// another replica) resumes where the last run stopped.
type State struct {
	// Through is the updated_at of the last ticket version fully read: the
	// next run reads the change feed from there (at or after, so a ticket
	// updated within the same second is not lost; re-reading one is
	// harmless, examples are kept by ticket id).
	Through  time.Time `json:"through,omitzero"`
	Examples int       `json:"examples"`
	// RequestRev is the revision of KeyRequest last acted on.
	RequestRev uint64    `json:"request_rev,omitempty"`
	LastRun    time.Time `json:"last_run,omitzero"`
	LastResult string    `json:"last_result,omitempty"`
	// Retired are models rolled back for live precision: never promoted
	// again by the trainer.
	Retired []string `json:"retired,omitempty"`
	rev     uint64
}

// Request is a request for a training run.
type Request struct {
	At time.Time `json:"at"`
	By string    `json:"by,omitempty"`
}

// RequestRun asks the running trainer for a run now (`autotriage train
// --request`); it returns the request's revision.
func RequestRun(ctx context.Context, conn *pipeline.Conn, by string) (uint64, error) {
	kv, err := conn.KV(ctx, pipeline.BucketPolicy)
	if err != nil {
		return 0, err
	}
	b, _ := json.Marshal(Request{At: time.Now().UTC(), By: by})
	rev, err := kv.Put(ctx, KeyRequest, b)
	if err != nil {
		return 0, fmt.Errorf("request a training run: %w", err)
	}
	return rev, nil
}

// ReadState returns the trainer's state (zero before its first run).
func ReadState(ctx context.Context, kv *pipeline.KV) (State, error) {
	e, err := kv.Get(ctx, KeyCursor)
	if errors.Is(err, pipeline.ErrNotFound) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read the trainer's cursor: %w", err)
	}
	var s State
	if err := json.Unmarshal(e.Value, &s); err != nil {
		return State{}, fmt.Errorf("the trainer's cursor at revision %d is unreadable: %w", e.Revision, err)
	}
	s.rev = e.Revision
	return s, nil
}

// writeState stores s by compare-and-set: a second trainer that wrote in
// between makes this one's write fail rather than both interleave.
func writeState(ctx context.Context, kv *pipeline.KV, s *State) error {
	if len(s.Retired) > maxRetired {
		s.Retired = s.Retired[len(s.Retired)-maxRetired:]
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode the trainer's cursor: %w", err)
	}
	var rev uint64
	if s.rev == 0 {
		rev, err = kv.Create(ctx, KeyCursor, b)
	} else {
		rev, err = kv.Update(ctx, KeyCursor, b, s.rev)
	}
	if err != nil {
		return fmt.Errorf("store the trainer's cursor (another trainer running?): %w", err)
	}
	s.rev = rev
	return nil
}

// encodeExamples writes the examples as gzip-compressed JSON lines.
func encodeExamples(exs []classify.Example) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	enc := json.NewEncoder(zw)
	for i := range exs {
		if err := enc.Encode(&exs[i]); err != nil {
			return nil, fmt.Errorf("encode examples: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("encode examples: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeExamples reads what encodeExamples wrote, at most maxBytes
// uncompressed.
func decodeExamples(b []byte, maxBytes int64) ([]classify.Example, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decode examples: %w", err)
	}
	lr := &io.LimitedReader{R: zr, N: maxBytes + 1}
	dec := json.NewDecoder(lr)
	var exs []classify.Example
	for {
		var ex classify.Example
		err := dec.Decode(&ex)
		if err == io.EOF {
			return exs, nil
		}
		if lr.N <= 0 {
			return nil, fmt.Errorf("decode examples: more than %d bytes uncompressed", maxBytes)
		}
		if err != nil {
			return nil, fmt.Errorf("decode examples: %w", err)
		}
		exs = append(exs, ex)
	}
}

// bound keeps the newest examples within maxN and roughly maxBytes of text,
// sorted oldest first.
func bound(exs []classify.Example, maxN int, maxBytes int64) []classify.Example {
	slices.SortStableFunc(exs, func(a, b classify.Example) int {
		if c := a.UpdatedAt.Compare(b.UpdatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if maxN > 0 && len(exs) > maxN {
		exs = exs[len(exs)-maxN:]
	}
	var size int64
	for i := len(exs) - 1; i >= 0; i-- {
		size += int64(len(exs[i].Subject) + len(exs[i].Body) + 256)
		if maxBytes > 0 && size > maxBytes {
			return exs[i+1:]
		}
	}
	return exs
}
