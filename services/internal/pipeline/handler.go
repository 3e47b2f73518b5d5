package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Msg is a delivered message as a handler sees it.
type Msg struct {
	Subject      string
	Data         []byte
	Header       map[string][]string
	Stream       string
	StreamSeq    uint64
	NumDelivered uint64
	// Published is when the stream stored the message.
	Published time.Time
	// MaxDeliver is the consumer's delivery limit (0: none known, so no
	// delivery is the final one).
	MaxDeliver int

	msg jetstream.Msg
}

// Final reports whether this is the last delivery the consumer allows: a
// failure now sends the message to the DLQ instead of back for another
// try. A stage that reports failures for good (the writer's FAILED
// outcome) does so when Final is true, without knowing the topology.
func (m *Msg) Final() bool { return m.MaxDeliver > 0 && int(m.NumDelivered) >= m.MaxDeliver }

// HeaderValue returns the first value of a header.
func (m *Msg) HeaderValue(k string) string { return nats.Header(m.Header).Get(k) }

// InProgress resets the ack timer; the consume loop already calls it
// periodically, so handlers need it only between long steps of their own.
func (m *Msg) InProgress() error {
	if m.msg == nil {
		return nil
	}
	return m.msg.InProgress()
}

// retryError asks for redelivery after a delay.
type retryError struct {
	err   error
	after time.Duration
}

func (e *retryError) Error() string { return fmt.Sprintf("retry after %s: %v", e.after, e.err) }
func (e *retryError) Unwrap() error { return e.err }

// permanentError asks for dead-lettering: retrying cannot help.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// RetryAfter marks err as transient: the message is redelivered after d
// (Nak with delay), up to the consumer's MaxDeliver, then dead-lettered.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryError{err: err, after: d}
}

// Permanent marks err as final: the message is terminated and copied to the
// DLQ with its stage, error, deliveries and origin.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// RetryDelay returns the delay of a RetryAfter error.
func RetryDelay(err error) (time.Duration, bool) {
	var r *retryError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

// Handler processes one message. Returning nil acks it; RetryAfter and
// Permanent errors choose redelivery or the DLQ; any other error is retried
// with exponential back-off, and a failure on the final delivery goes to
// the DLQ. A panic is caught and treated as permanent.
type Handler func(ctx context.Context, m *Msg) error
