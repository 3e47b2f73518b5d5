package classifier

import (
	"testing"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// FuzzDecodeTicket: a ticket message from the stream either fails to decode
// (the stage sends it to the DLQ) or is a ticket the classifier can
// predict for and the writer can address.
func FuzzDecodeTicket(f *testing.F) {
	good, _ := proto.Marshal(&v1.Ticket{System: "freshdesk", Account: "acme", Id: 7, Subject: "VPN down",
		Tags: []string{"vpn"}, UpdatedAt: timestamppb.New(time.Unix(1700000000, 0))})
	f.Add(good)
	f.Add([]byte{})
	f.Add(good[:len(good)-3])
	f.Add([]byte{0x0a, 0x80, 0x80, 0x80, 0x80, 0x10})
	f.Fuzz(func(t *testing.T, b []byte) {
		tk, err := decodeTicket(b)
		if err != nil {
			if tk != nil {
				t.Fatal("error with a ticket")
			}
			return
		}
		if tk.Id <= 0 || tk.System == "" || tk.Account == "" || tk.UpdatedAt == nil {
			t.Fatalf("accepted an invalid ticket: %v", tk)
		}
		// What the stage derives from an accepted ticket must not panic.
		_ = PredictionID(tk, "m")
	})
}
