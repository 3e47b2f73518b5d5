package platform

import (
	"io"
	"log/slog"
	"strings"
)

// NewLogger returns a JSON logger tagged with the service name and version.
// Attributes whose key names a credential are redacted whatever their type,
// as a second line of defence behind the Secret type.
func NewLogger(w io.Writer, level slog.Level, service string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if isSecretKey(a.Key) && a.Value.Kind() != slog.KindGroup {
				if a.Value.String() == "" {
					return a
				}
				return slog.String(a.Key, redacted)
			}
			return a
		},
	})
	return slog.New(h).With("service", service, "version", Build().Version)
}

// ParseLevel maps "debug", "info", "warn" and "error" to slog levels.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

var secretKeyParts = []string{"password", "passwd", "secret", "token", "apikey", "api_key", "authorization", "credential", "creds"}

func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	for _, p := range secretKeyParts {
		if strings.Contains(k, p) {
			return true
		}
	}
	return false
}
