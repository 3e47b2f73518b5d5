package ledger

import (
	"slices"
	"time"
)

// Decided is one value autotriage applied to, or suggested for, one field
// of a ticket, kept in the ticket's record so the fetcher can later tell
// what people made of it (live precision per model class). Tags are one
// entry per tag: each tag is a class of its own.
type Decided struct {
	Field string `json:"field"`
	// Label is the model's label (the class precision is counted for).
	Label string `json:"label"`
	// Value is the label as the helpdesk names it (after the label map).
	Value string `json:"value"`
	// Target is the value in the helpdesk's terms: only Field's part is set
	// (Tags: the one tag).
	Target Fields `json:"target"`
	// From is the field's value in the newest version the writer knew when
	// it suggested (suggestions only): a person "sets" the field when it
	// holds anything else later. A change made before the suggestion was
	// written is no reaction to it.
	From         Fields `json:"from,omitzero"`
	ModelID      string `json:"model_id,omitempty"`
	ModelVersion string `json:"model_version,omitempty"`
	// SourceUpdatedAt is the ticket version the prediction was made from;
	// it names the decision in feedback message ids (once per version).
	SourceUpdatedAt time.Time `json:"source_updated_at"`
	At              time.Time `json:"at"`
}

// Key names the value within a record: the field, or "tags:<tag>".
func (d Decided) Key() string {
	if d.Field == "tags" && len(d.Target.Tags) > 0 {
		return "tags:" + d.Target.Tags[0]
	}
	return d.Field
}

// MaxDecided bounds Applied.Decided and Applied.Suggested (a model that
// predicts many tags cannot grow a record without end); the oldest entries
// go first.
const MaxDecided = 32

// PutDecided replaces the entry with d's key in list (or appends d) and
// returns a new slice (the input is never written into, so copies of a
// record taken earlier stay as they were).
func PutDecided(list []Decided, d Decided) []Decided {
	out := make([]Decided, 0, len(list)+1)
	for _, o := range list {
		if o.Key() != d.Key() {
			out = append(out, o)
		}
	}
	out = append(out, d)
	return out[max(len(out)-MaxDecided, 0):]
}

// DropDecided returns list without the entry of key (a new slice).
func DropDecided(list []Decided, key string) []Decided {
	if !slices.ContainsFunc(list, func(d Decided) bool { return d.Key() == key }) {
		return list
	}
	out := make([]Decided, 0, len(list))
	for _, o := range list {
		if o.Key() != key {
			out = append(out, o)
		}
	}
	return out
}

// FindDecided returns the entry of key in list.
func FindDecided(list []Decided, key string) (Decided, bool) {
	for _, d := range list {
		if d.Key() == key {
			return d, true
		}
	}
	return Decided{}, false
}
