package writer

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// FuzzParseLabelMap: AUTOTRIAGE_LABEL_MAP is operator input. Accepted maps
// hold only known fields and trimmed, non-empty labels and names, and
// rendering them back in the documented syntax parses to the same map.
func FuzzParseLabelMap(f *testing.F) {
	for _, s := range []string{"", "group:Billing Dept=Billing,type:Bug=Incident", " tags : a = b , ,priority:1=Low",
		"group:a=b,group:a=c", "group:a=b=c", "colour:a=b", "group:=b", "group:a="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseLabelMap(s)
		if err != nil {
			return
		}
		var parts []string
		for field, names := range m {
			switch field {
			case FieldGroup, FieldType, FieldPriority, FieldTags:
			default:
				t.Fatalf("%q: unknown field %q accepted", s, field)
			}
			for label, name := range names {
				if label == "" || name == "" || label != strings.TrimSpace(label) || name != strings.TrimSpace(name) ||
					strings.ContainsAny(name, "=,") || strings.Contains(label, ",") {
					t.Fatalf("%q: bad entry %q -> %q", s, label, name)
				}
				if m.Name(field, label) != name {
					t.Fatalf("%q: Name(%q, %q) = %q, want %q", s, field, label, m.Name(field, label), name)
				}
				parts = append(parts, field+":"+label+"="+name)
			}
		}
		again, err := ParseLabelMap(strings.Join(parts, ","))
		if err != nil || len(again) != len(m) {
			t.Fatalf("%q: re-parse of %q = %v, %v", s, parts, again, err)
		}
		for field, names := range m {
			for label, name := range names {
				if again[field][label] != name {
					t.Fatalf("%q: re-parse lost %s:%s=%s", s, field, label, name)
				}
			}
		}
	})
}

// FuzzDecodePrediction: a prediction message from the stream either fails
// to decode (the stage sends it to the DLQ) or names a ticket the writer
// can address.
func FuzzDecodePrediction(f *testing.F) {
	good, _ := proto.Marshal(&v1.Prediction{System: "freshdesk", Account: "acme", TicketId: 42,
		TicketUpdatedAt: timestamppb.New(time.Unix(1700000000, 0)), ModelId: "m1"})
	f.Add(good)
	f.Add([]byte{})
	f.Add(good[:len(good)/2])
	f.Add([]byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePrediction(b)
		if err != nil {
			if p != nil {
				t.Fatal("error with a prediction")
			}
			return
		}
		if p.TicketId <= 0 || p.System == "" || p.Account == "" || p.TicketUpdatedAt == nil {
			t.Fatalf("accepted an unaddressable prediction: %v", p)
		}
	})
}
