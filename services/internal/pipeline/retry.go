package pipeline

import (
	"time"

	"github.com/cenkalti/backoff/v5"
)

// The package's retry loops (connect, topology, publish, binding a
// consumer) run through backoff.Retry. Each sets its own bound: a loop
// that runs until ctx ends turns off the library's default limit of 15
// minutes with backoff.WithMaxElapsedTime(0).

// doubling waits first, then twice as long each time, up to limit, without
// jitter.
func doubling(first, limit time.Duration) backoff.BackOff {
	return &backoff.ExponentialBackOff{InitialInterval: first, Multiplier: 2, MaxInterval: limit}
}
