package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Admin changes what streams hold: the operator's deleting and purging
// tools. None of it touches the durable consumers of the stages.
type Admin struct {
	*link
	stats *Stats
}

// DeleteMsg removes one message from a stream (ErrNotFound if it is gone).
func (a *Admin) DeleteMsg(ctx context.Context, stream string, seq uint64) error {
	s, err := a.js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) || isAPICode(err, jetstream.JSErrCodeMessageNotFound) || msgAlreadyGone(err) {
			return fmt.Errorf("delete %s seq %d: %w", stream, seq, ErrNotFound)
		}
		return fmt.Errorf("delete %s seq %d: %w", stream, seq, err)
	}
	return nil
}

// msgAlreadyGone recognises the server's answer to deleting a missing
// message: the client reports a generic "deletion unsuccessful" with the
// server's description as text only.
func msgAlreadyGone(err error) bool {
	return errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) && strings.Contains(err.Error(), "no message found")
}

func isAPICode(err error, code jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == code
}

// PurgeSubject removes every message of a stream matching subject ("" or
// ">" for all) and returns how many there were just before.
func (a *Admin) PurgeSubject(ctx context.Context, stream, subject string) (uint64, error) {
	s, err := a.js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	counts, err := a.stats.SubjectCounts(ctx, stream, subject)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, v := range counts {
		n += v
	}
	var opts []jetstream.StreamPurgeOpt
	if subject != "" && subject != ">" {
		opts = append(opts, jetstream.WithPurgeSubject(subject))
	}
	if err := s.Purge(ctx, opts...); err != nil {
		return 0, fmt.Errorf("purge %s %s: %w", stream, subject, err)
	}
	return n, nil
}
