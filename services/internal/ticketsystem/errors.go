package ticketsystem

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel error kinds. Adapters return errors that match exactly one kind
// with errors.Is (ErrOutcomeUnknown additionally wraps the transient cause);
// the details are in *Error, reachable with errors.As.
var (
	// ErrNotFound: the ticket (or resource) does not exist. Not retryable.
	ErrNotFound = errors.New("ticketsystem: not found")
	// ErrGone: the ticket exists but cannot be changed because it is spam or
	// deleted (Freshdesk 405). Not retryable.
	ErrGone = errors.New("ticketsystem: ticket is spam or deleted")
	// ErrRateLimited: the account's API budget is spent. Retry after
	// Error.RetryAfter.
	ErrRateLimited = errors.New("ticketsystem: rate limited")
	// ErrValidation: the system rejected the request's content; Error.Fields
	// says which fields and why. Not retryable without changing the request.
	ErrValidation = errors.New("ticketsystem: validation failed")
	// ErrAuth: the credentials are missing or wrong. Not retryable.
	ErrAuth = errors.New("ticketsystem: authentication failed")
	// ErrPermission: the credentials are valid but lack the privilege or the
	// feature. Not retryable.
	ErrPermission = errors.New("ticketsystem: permission denied")
	// ErrConflict: the request conflicts with the current state. Not
	// retryable as is.
	ErrConflict = errors.New("ticketsystem: conflict")
	// ErrUnsupported: the system refused the request's format (Freshdesk
	// 406/415). A client bug; not retryable.
	ErrUnsupported = errors.New("ticketsystem: unsupported request")
	// ErrTransient: a server error, timeout or broken connection that may
	// succeed if tried again later.
	ErrTransient = errors.New("ticketsystem: transient failure")
	// ErrOutcomeUnknown: a non-idempotent write (adding a note) failed after
	// the request may have reached the server. It was not retried; check the
	// system's state (Conversations) before writing again.
	ErrOutcomeUnknown = errors.New("ticketsystem: outcome unknown")
	// ErrInvalidResponse: the system answered with something the adapter
	// could not decode or that exceeds the size limit.
	ErrInvalidResponse = errors.New("ticketsystem: invalid response")
)

// FieldError is one field-level validation failure.
type FieldError struct {
	Field   string
	Code    string
	Message string
}

func (f FieldError) String() string {
	return fmt.Sprintf("%s: %s (%s)", f.Field, f.Message, f.Code)
}

// Error carries the details of a failed call. It never contains credentials.
type Error struct {
	Kind       error  // one of the sentinel errors above
	Op         string // e.g. "PUT /api/v2/tickets/14"
	Status     int    // HTTP status, 0 if no response
	Code       string // system error code, e.g. "invalid_credentials"
	Message    string
	Fields     []FieldError
	RetryAfter time.Duration // for ErrRateLimited; 0 if the system gave none
	RequestID  string
	Err        error // underlying cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	} else {
		b.WriteString("ticketsystem: error")
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d", e.Status)
		if e.Code != "" {
			fmt.Fprintf(&b, " %s", e.Code)
		}
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(":")
		}
		b.WriteString(" [")
		b.WriteString(f.String())
		b.WriteString("]")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request %s]", e.RequestID)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Is matches the error's Kind.
func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// RetryAfter returns how long to wait before retrying a rate-limited call.
// ok is false when err is not a rate-limit error.
func RetryAfter(err error) (d time.Duration, ok bool) {
	var e *Error
	for cur := err; errors.As(cur, &e); cur = e.Err {
		if e.Kind == ErrRateLimited {
			return e.RetryAfter, true
		}
	}
	return 0, false
}

// IsRetryable reports whether trying the same call again later may succeed.
// ErrOutcomeUnknown is deliberately not retryable: it needs a state check.
func IsRetryable(err error) bool {
	if errors.Is(err, ErrOutcomeUnknown) {
		return false
	}
	return errors.Is(err, ErrRateLimited) || errors.Is(err, ErrTransient)
}
