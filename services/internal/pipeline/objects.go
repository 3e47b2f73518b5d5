package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Objects is a JetStream object store.
type Objects struct {
	name string
	os   jetstream.ObjectStore
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Name     string
	Size     uint64
	Modified time.Time
	Digest   string
	Headers  map[string]string
}

// Objects opens an object store created by EnsureTopology.
func (s *Stores) Objects(ctx context.Context, bucket string) (*Objects, error) {
	os, err := s.js.ObjectStore(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", bucket, err)
	}
	return &Objects{name: bucket, os: os}, nil
}

// Put stores data under name, replacing an older object of that name.
func (o *Objects) Put(ctx context.Context, name string, data []byte, meta map[string]string) (ObjectInfo, error) {
	om := jetstream.ObjectMeta{Name: name, Metadata: meta}
	info, err := o.os.Put(ctx, om, bytes.NewReader(data))
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s/%s: %w", o.name, name, err)
	}
	return objectInfo(info), nil
}

// Get reads a whole object, refusing one larger than maxBytes.
func (o *Objects) Get(ctx context.Context, name string, maxBytes int64) ([]byte, ObjectInfo, error) {
	r, err := o.os.Get(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, ObjectInfo{}, fmt.Errorf("get %s/%s: %w", o.name, name, ErrNotFound)
	}
	if err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("get %s/%s: %w", o.name, name, err)
	}
	defer r.Close()
	info, err := r.Info()
	if err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("get %s/%s: %w", o.name, name, err)
	}
	if int64(info.Size) > maxBytes {
		return nil, ObjectInfo{}, fmt.Errorf("get %s/%s: object is %d bytes, more than the %d allowed", o.name, name, info.Size, maxBytes)
	}
	b, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("read %s/%s: %w", o.name, name, err)
	}
	return b, objectInfo(info), nil
}

// List describes every object in the store.
func (o *Objects) List(ctx context.Context) ([]ObjectInfo, error) {
	infos, err := o.os.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", o.name, err)
	}
	out := make([]ObjectInfo, 0, len(infos))
	for _, i := range infos {
		out = append(out, objectInfo(i))
	}
	return out, nil
}

// Delete removes an object.
func (o *Objects) Delete(ctx context.Context, name string) error {
	if err := o.os.Delete(ctx, name); err != nil {
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("delete %s/%s: %w", o.name, name, ErrNotFound)
		}
		return fmt.Errorf("delete %s/%s: %w", o.name, name, err)
	}
	return nil
}

func objectInfo(i *jetstream.ObjectInfo) ObjectInfo {
	return ObjectInfo{Name: i.Name, Size: i.Size, Modified: i.ModTime, Digest: i.Digest, Headers: i.Metadata}
}
