package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KV errors callers test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("revision conflict")
)

// KV is a JetStream key-value bucket.
type KV struct {
	name string
	kv   jetstream.KeyValue
}

// Entry is one value of a KV bucket.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
	Created  time.Time
	Deleted  bool
}

// Stores opens the KV buckets and object stores EnsureTopology created.
type Stores struct{ *link }

// KV opens a bucket created by EnsureTopology.
func (s *Stores) KV(ctx context.Context, bucket string) (*KV, error) {
	kv, err := s.js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", bucket, err)
	}
	return &KV{name: bucket, kv: kv}, nil
}

func (k *KV) wrap(op, key string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return fmt.Errorf("%s %s/%s: %w", op, k.name, key, ErrNotFound)
	case errors.Is(err, jetstream.ErrKeyExists) && op == "update":
		// The server reports a stale revision as "wrong last sequence".
		return fmt.Errorf("%s %s/%s: %w", op, k.name, key, ErrConflict)
	case errors.Is(err, jetstream.ErrKeyExists):
		return fmt.Errorf("%s %s/%s: %w", op, k.name, key, ErrExists)
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return fmt.Errorf("%s %s/%s: %w", op, k.name, key, ErrConflict)
	}
	return fmt.Errorf("%s %s/%s: %w", op, k.name, key, err)
}

// Get returns the current value of key, or ErrNotFound.
func (k *KV) Get(ctx context.Context, key string) (Entry, error) {
	e, err := k.kv.Get(ctx, key)
	if err != nil {
		return Entry{}, k.wrap("get", key, err)
	}
	return Entry{Key: e.Key(), Value: e.Value(), Revision: e.Revision(), Created: e.Created()}, nil
}

// Put sets key unconditionally and returns the new revision.
func (k *KV) Put(ctx context.Context, key string, val []byte) (uint64, error) {
	rev, err := k.kv.Put(ctx, key, val)
	if err != nil {
		return 0, k.wrap("put", key, err)
	}
	return rev, nil
}

// Create sets key only if it does not exist (ErrExists otherwise).
func (k *KV) Create(ctx context.Context, key string, val []byte) (uint64, error) {
	rev, err := k.kv.Create(ctx, key, val)
	if err != nil {
		return 0, k.wrap("create", key, err)
	}
	return rev, nil
}

// Update sets key only if its revision is still rev (ErrConflict otherwise):
// the compare-and-set behind leases and cursors.
func (k *KV) Update(ctx context.Context, key string, val []byte, rev uint64) (uint64, error) {
	nrev, err := k.kv.Update(ctx, key, val, rev)
	if err != nil {
		return 0, k.wrap("update", key, err)
	}
	return nrev, nil
}

// Delete removes key.
func (k *KV) Delete(ctx context.Context, key string) error {
	if err := k.kv.Delete(ctx, key); err != nil {
		return k.wrap("delete", key, err)
	}
	return nil
}

// Keys lists the keys of the bucket.
func (k *KV) Keys(ctx context.Context) ([]string, error) {
	keys, err := k.kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list keys of %s: %w", k.name, err)
	}
	return keys, nil
}

// Watch sends the current value of key (if any) and every later change until
// ctx ends. The channel is closed then.
func (k *KV) Watch(ctx context.Context, key string) (<-chan Entry, error) {
	w, err := k.kv.Watch(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("watch %s/%s: %w", k.name, key, err)
	}
	out := make(chan Entry, 1)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil { // end of the initial values
					continue
				}
				ent := Entry{Key: e.Key(), Value: e.Value(), Revision: e.Revision(), Created: e.Created(),
					Deleted: e.Operation() != jetstream.KeyValuePut}
				select {
				case out <- ent:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// History returns the stored revisions of key, oldest first.
func (k *KV) History(ctx context.Context, key string) ([]Entry, error) {
	hs, err := k.kv.History(ctx, key)
	if err != nil {
		return nil, k.wrap("history", key, err)
	}
	out := make([]Entry, 0, len(hs))
	for _, e := range hs {
		out = append(out, Entry{Key: e.Key(), Value: e.Value(), Revision: e.Revision(), Created: e.Created(),
			Deleted: e.Operation() != jetstream.KeyValuePut})
	}
	return out, nil
}
