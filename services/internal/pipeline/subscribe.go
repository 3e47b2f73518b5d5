package pipeline

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// Subscribe calls fn for every message published on subject (wildcards
// allowed) from now on, through a plain NATS subscription: no JetStream
// consumer, so nothing is stored, acknowledged or replayed, and messages
// published while the connection is down are not seen. It suits observers
// that time messages as they are published (benchmarks); readers that must
// see every message use Read or Follow. fn runs on one goroutine, in order.
// The returned stop ends the subscription.
func (c *Conn) Subscribe(subject string, fn func(RawMsg)) (stop func() error, err error) {
	sub, err := c.nc.Subscribe(subject, func(m *nats.Msg) {
		fn(RawMsg{Subject: m.Subject, Data: m.Data, Header: m.Header})
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	if err := c.nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	return sub.Unsubscribe, nil
}
