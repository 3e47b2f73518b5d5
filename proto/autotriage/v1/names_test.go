package autotriagev1

import "testing"

func TestShortNamesCoverEveryValue(t *testing.T) {
	seen := map[string]bool{}
	for v := range Decision_name {
		n := Decision(v).Short()
		if seen[n] {
			t.Errorf("decision %d shares the short name %q", v, n)
		}
		seen[n] = true
	}
	seen = map[string]bool{}
	for v := range Action_name {
		n := Action(v).Short()
		if seen[n] {
			t.Errorf("action %d shares the short name %q", v, n)
		}
		seen[n] = true
	}
}
