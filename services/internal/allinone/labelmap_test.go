package allinone_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/allinone"
	"github.com/autotriage/autotriage/services/internal/platform"
)

// TestUpRefusesALabelMapPointingNowhere: a label map entry naming a group
// the helpdesk does not have stops `autotriage up` before any stage runs,
// with a configuration error (exit code 2) naming the entry.
func TestUpRefusesALabelMapPointingNowhere(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a starter model")
	}
	cfg := config(t)
	cfg.Sim.History = 150
	cfg.Writer.LabelMap = "group:Billing Dept=Billing,group:Old Team=Nowhere Team"
	r := startUp(t, cfg, allinone.Options{})
	var err error
	select {
	case err = <-r.done:
		r.done <- err
	case a := <-r.ready:
		t.Fatalf("up started with a label map pointing nowhere (addresses %v)", a)
	case <-time.After(2 * time.Minute):
		t.Fatalf("up neither refused nor started:\n%s", r.out.String())
	}
	var ce *platform.ConfigError
	if !errors.As(err, &ce) || ce.Var != "AUTOTRIAGE_LABEL_MAP" {
		t.Fatalf("up returned %v, want a configuration error naming AUTOTRIAGE_LABEL_MAP", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "group:Old Team=Nowhere Team") || strings.Contains(msg, "Billing Dept=") {
		t.Errorf("the error does not name exactly the bad entry: %s", msg)
	}
}
