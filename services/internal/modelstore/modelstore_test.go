package modelstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

func open(t *testing.T) *modelstore.Store {
	t.Helper()
	srv := natstest.Start(t)
	c := natstest.Connect(t, srv, pipeline.Topology{})
	s, err := modelstore.Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPromoteRollbackAndWatch(t *testing.T) {
	s := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Promoted(ctx); !errors.Is(err, modelstore.ErrNoModel) {
		t.Fatalf("promoted before any: %v", err)
	}
	if _, err := s.Promote(ctx, "missing", "test"); err == nil {
		t.Fatal("promoted a model that is not stored")
	}
	watch, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"aaa", "bbb"} {
		if _, err := s.Put(ctx, id, "v-"+id, []byte("artifact "+id), map[string]string{"macro_f1": "0.9"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Promote(ctx, "aaa", "test"); err != nil {
		t.Fatal(err)
	}
	if p := <-watch; p.ID != "aaa" || p.Version != "v-aaa" {
		t.Fatalf("watch got %+v", p)
	}
	if _, err := s.Promote(ctx, "bbb", "test"); err != nil {
		t.Fatal(err)
	}
	if p := <-watch; p.ID != "bbb" {
		t.Fatalf("watch got %+v", p)
	}
	p, err := s.Rollback(ctx, "test")
	if err != nil || p.ID != "aaa" {
		t.Fatalf("rollback: %+v %v", p, err)
	}
	cur, err := s.Promoted(ctx)
	if err != nil || cur.ID != "aaa" {
		t.Fatalf("after rollback: %+v %v", cur, err)
	}
	b, info, err := s.Load(ctx, "bbb")
	if err != nil || string(b) != "artifact bbb" || info.Meta["macro_f1"] != "0.9" {
		t.Fatalf("load: %q %+v %v", b, info, err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
}

// Lineage records and the trainer's data sit beside the models without
// being listed as models; a model without lineage says so.
func TestLineageAndDataAreNotModels(t *testing.T) {
	s := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Put(ctx, "aaa", "v1", []byte("artifact"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lineage(ctx, "aaa"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("lineage before any: %v", err)
	}
	if err := s.PutLineage(ctx, "aaa", []byte(`{"parent":""}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutData(ctx, "trainer-examples", []byte("data")); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Lineage(ctx, "aaa"); err != nil || string(b) != `{"parent":""}` {
		t.Fatalf("lineage: %q %v", b, err)
	}
	if _, err := s.Data(ctx, "trainer-examples", 2); err == nil {
		t.Fatal("data over its bound was read")
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != "aaa" {
		t.Fatalf("list: %+v %v", list, err)
	}
}
