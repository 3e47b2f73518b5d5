package platform

import (
	"fmt"
	"log/slog"
)

// Secret holds a credential. Every way of printing it (fmt verbs, JSON, slog)
// shows "[redacted]"; only Reveal returns the value, at the point of use.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret value. Call it only where the value is sent.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether a value is present.
func (s Secret) IsSet() bool { return s != "" }

func (s Secret) String() string   { return redactedIf(s) }
func (s Secret) GoString() string { return redactedIf(s) }

// Format covers every verb, including %v on structs holding a Secret and %q.
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redactedIf(s))) }

// MarshalText keeps secrets out of JSON and text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redactedIf(s)), nil }

// UnmarshalText lets caarlos0/env and encoders fill a Secret.
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

// LogValue keeps secrets out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redactedIf(s)) }

func redactedIf(s Secret) string {
	if s == "" {
		return ""
	}
	return redacted
}
