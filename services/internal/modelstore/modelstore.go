// Package modelstore keeps trained model artifacts in the JetStream object
// store and records which one is promoted in a KV bucket, so every classifier
// replica serves the same model and swaps to a newly promoted one by itself.
package modelstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// MaxArtifactBytes bounds what a classifier will load (the largest model of
// the benchmark datasets is far below it).
const MaxArtifactBytes = 256 << 20

const promotedKey = "promoted"

// ErrNoModel means no model has been promoted yet.
var ErrNoModel = errors.New("no model promoted")

// Info describes a stored artifact.
type Info struct {
	ID        string            `json:"id"` // content hash of the artifact
	Version   string            `json:"version"`
	Size      uint64            `json:"size"`
	CreatedAt time.Time         `json:"created_at"`
	Meta      map[string]string `json:"meta,omitempty"`
}

// Promotion records that a model became the one in use.
type Promotion struct {
	ID         string    `json:"id"`
	Version    string    `json:"version"`
	PromotedAt time.Time `json:"promoted_at"`
	By         string    `json:"by,omitempty"`
	Revision   uint64    `json:"-"`
}

// Store is the model registry.
type Store struct {
	kv   *pipeline.KV
	objs *pipeline.Objects
}

// Open binds the registry to the bucket and object store that
// pipeline.EnsureTopology created.
func Open(ctx context.Context, conn *pipeline.Conn) (*Store, error) {
	kv, err := conn.KV(ctx, pipeline.BucketModels)
	if err != nil {
		return nil, err
	}
	objs, err := conn.Objects(ctx, pipeline.ObjectModels)
	if err != nil {
		return nil, err
	}
	return &Store{kv: kv, objs: objs}, nil
}

const modelPrefix = "model-"

func objectName(id string) string { return modelPrefix + id }

// lineageName and dataPrefix name the registry's other objects: a model's
// lineage record beside its artifact, and named data sets of the trainer.
func lineageName(id string) string { return "lineage-" + id }

const dataPrefix = "data-"

// Put stores an artifact under its id. Storing the same id again replaces
// identical bytes, so it is safe to repeat.
func (s *Store) Put(ctx context.Context, id, version string, artifact []byte, meta map[string]string) (Info, error) {
	if id == "" {
		return Info{}, errors.New("modelstore: empty model id")
	}
	if len(artifact) > MaxArtifactBytes {
		return Info{}, fmt.Errorf("modelstore: artifact of %d bytes exceeds %d", len(artifact), MaxArtifactBytes)
	}
	h := map[string]string{"id": id, "version": version, "created_at": time.Now().UTC().Format(time.RFC3339)}
	for k, v := range meta {
		h[k] = v
	}
	oi, err := s.objs.Put(ctx, objectName(id), artifact, h)
	if err != nil {
		return Info{}, fmt.Errorf("modelstore: store %s: %w", id, err)
	}
	return infoOf(oi), nil
}

func infoOf(oi pipeline.ObjectInfo) Info {
	in := Info{ID: oi.Headers["id"], Version: oi.Headers["version"], Size: oi.Size, Meta: map[string]string{}}
	if t, err := time.Parse(time.RFC3339, oi.Headers["created_at"]); err == nil {
		in.CreatedAt = t
	} else {
		in.CreatedAt = oi.Modified
	}
	for k, v := range oi.Headers {
		switch k {
		case "id", "version", "created_at":
		default:
			in.Meta[k] = v
		}
	}
	return in
}

// Load returns the artifact bytes of a stored model.
func (s *Store) Load(ctx context.Context, id string) ([]byte, Info, error) {
	b, oi, err := s.objs.Get(ctx, objectName(id), MaxArtifactBytes)
	if err != nil {
		return nil, Info{}, fmt.Errorf("modelstore: load %s: %w", id, err)
	}
	return b, infoOf(oi), nil
}

// List returns the stored models, newest first.
func (s *Store) List(ctx context.Context) ([]Info, error) {
	objs, err := s.objs.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("modelstore: list: %w", err)
	}
	out := make([]Info, 0, len(objs))
	for _, o := range objs {
		if !strings.HasPrefix(o.Name, modelPrefix) {
			continue // lineage records and trainer data are not models
		}
		out = append(out, infoOf(o))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

// Promote makes a stored model the one every classifier serves.
func (s *Store) Promote(ctx context.Context, id, by string) (Promotion, error) {
	// On a cluster the object just stored may not have reached the replica
	// that answers yet; a missing object is retried briefly before it counts.
	var info pipeline.ObjectInfo
	var err error
	for attempt := 0; ; attempt++ {
		_, info, err = s.objs.Get(ctx, objectName(id), MaxArtifactBytes)
		if err == nil || !errors.Is(err, pipeline.ErrNotFound) || attempt >= 8 {
			break
		}
		select {
		case <-ctx.Done():
			return Promotion{}, fmt.Errorf("modelstore: promote %s: %w", id, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err != nil {
		return Promotion{}, fmt.Errorf("modelstore: promote %s: %w", id, err)
	}
	p := Promotion{ID: id, Version: info.Headers["version"], PromotedAt: time.Now().UTC(), By: by}
	b, _ := json.Marshal(p)
	rev, err := s.kv.Put(ctx, promotedKey, b)
	if err != nil {
		return Promotion{}, fmt.Errorf("modelstore: promote %s: %w", id, err)
	}
	p.Revision = rev
	return p, nil
}

// Promoted returns the model in use, or ErrNoModel.
func (s *Store) Promoted(ctx context.Context) (Promotion, error) {
	e, err := s.kv.Get(ctx, promotedKey)
	if errors.Is(err, pipeline.ErrNotFound) {
		return Promotion{}, ErrNoModel
	}
	if err != nil {
		return Promotion{}, fmt.Errorf("modelstore: read promotion: %w", err)
	}
	return decodePromotion(e)
}

func decodePromotion(e pipeline.Entry) (Promotion, error) {
	var p Promotion
	if err := json.Unmarshal(e.Value, &p); err != nil || p.ID == "" {
		return Promotion{}, fmt.Errorf("modelstore: promotion record at revision %d is unreadable", e.Revision)
	}
	p.Revision = e.Revision
	return p, nil
}

// History returns past promotions, oldest first.
func (s *Store) History(ctx context.Context) ([]Promotion, error) {
	es, err := s.kv.History(ctx, promotedKey)
	if errors.Is(err, pipeline.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("modelstore: history: %w", err)
	}
	var out []Promotion
	for _, e := range es {
		if e.Deleted {
			continue
		}
		if p, err := decodePromotion(e); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// Rollback promotes the model that was in use before the current one.
func (s *Store) Rollback(ctx context.Context, by string) (Promotion, error) {
	hist, err := s.History(ctx)
	if err != nil {
		return Promotion{}, err
	}
	if len(hist) == 0 {
		return Promotion{}, ErrNoModel
	}
	cur := hist[len(hist)-1].ID
	for i := len(hist) - 2; i >= 0; i-- {
		if hist[i].ID != cur {
			return s.Promote(ctx, hist[i].ID, by)
		}
	}
	return Promotion{}, errors.New("modelstore: no earlier model to roll back to")
}

// Watch sends the current promotion (if any) and every later one until ctx
// ends.
func (s *Store) Watch(ctx context.Context) (<-chan Promotion, error) {
	entries, err := s.kv.Watch(ctx, promotedKey)
	if err != nil {
		return nil, fmt.Errorf("modelstore: watch: %w", err)
	}
	out := make(chan Promotion, 1)
	go func() {
		defer close(out)
		for e := range entries {
			if e.Deleted {
				continue
			}
			p, err := decodePromotion(e)
			if err != nil {
				continue
			}
			select {
			case out <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// VersionFromTime makes a sortable human version for a new model.
func VersionFromTime(t time.Time) string {
	return t.UTC().Format("20060102-150405") + "-" + strconv.Itoa(t.Nanosecond()/1e6)
}

// MaxLineageBytes bounds a lineage record read back.
const MaxLineageBytes = 4 << 20

// PutLineage stores (or replaces) the lineage record of model id: a JSON
// document of the trainer's (data window, metrics, parent, gate result)
// that may change after the model is stored, e.g. when it is rolled back.
func (s *Store) PutLineage(ctx context.Context, id string, record []byte) error {
	if id == "" {
		return errors.New("modelstore: empty model id")
	}
	if len(record) > MaxLineageBytes {
		return fmt.Errorf("modelstore: lineage of %s is %d bytes, more than %d", id, len(record), MaxLineageBytes)
	}
	if _, err := s.objs.Put(ctx, lineageName(id), record, map[string]string{"id": id}); err != nil {
		return fmt.Errorf("modelstore: store lineage of %s: %w", id, err)
	}
	return nil
}

// Lineage returns the lineage record of model id; the error wraps
// pipeline.ErrNotFound when the model has none (pushed or trained by hand).
func (s *Store) Lineage(ctx context.Context, id string) ([]byte, error) {
	b, _, err := s.objs.Get(ctx, lineageName(id), MaxLineageBytes)
	if err != nil {
		return nil, fmt.Errorf("modelstore: lineage of %s: %w", id, err)
	}
	return b, nil
}

// PutData stores a named data set beside the models (the trainer's kept
// examples); it is not listed as a model.
func (s *Store) PutData(ctx context.Context, name string, data []byte) error {
	if _, err := s.objs.Put(ctx, dataPrefix+name, data, nil); err != nil {
		return fmt.Errorf("modelstore: store data %s: %w", name, err)
	}
	return nil
}

// Data returns a named data set of at most maxBytes; the error wraps
// pipeline.ErrNotFound when it was never stored.
func (s *Store) Data(ctx context.Context, name string, maxBytes int64) ([]byte, error) {
	b, _, err := s.objs.Get(ctx, dataPrefix+name, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("modelstore: data %s: %w", name, err)
	}
	return b, nil
}
