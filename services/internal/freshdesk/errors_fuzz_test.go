package freshdesk

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

const fuzzKey = "fuzzSecretKey123"

// FuzzStatusError feeds arbitrary error responses (status, Retry-After,
// body) through the error builder: no panic, the key never survives into
// the error, messages stay short valid UTF-8, and a rate-limit wait is
// within [0, 24h].
func FuzzStatusError(f *testing.F) {
	seedFixtures(f, func(n string) bool { return strings.Contains(n, "error") })
	f.Add([]byte(`{"code":"invalid_credentials","message":"You have to be logged in to perform this action."}`))
	f.Add([]byte(`{"description":"Validation failed","errors":[{"field":"group_id","message":"There is no group matching the given group_id","code":"invalid_value"}]}`))
	f.Add([]byte(strings.Repeat("x", 190) + fuzzKey))
	f.Add([]byte("<html>" + strings.Repeat("é", 150) + "</html>"))
	c := &Client{key: fuzzKey, now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }}
	f.Fuzz(func(t *testing.T, body []byte) {
		retry := ""
		if len(body) > 0 {
			retry = string(body[:min(len(body), 40)])
		}
		for _, status := range []int{400, 429, 500} {
			e := c.statusError("op", &response{status: status, header: http.Header{"Retry-After": {retry}}, body: body})
			texts := []string{e.Message, e.Code, e.Error()}
			for _, fe := range e.Fields {
				texts = append(texts, fe.Field, fe.Code, fe.Message)
			}
			// A cut key leaves a prefix; look for one only when every
			// prefix in the body belongs to a whole key.
			onlyWhole := bytes.Count(body, []byte(fuzzKey[:8])) == bytes.Count(body, []byte(fuzzKey))
			for _, s := range texts {
				if strings.Contains(s, fuzzKey) || (onlyWhole && strings.Contains(s, fuzzKey[:8])) {
					t.Fatalf("status %d: key in error text %q", status, s)
				}
			}
			if !utf8.ValidString(e.Message) || utf8.RuneCountInString(e.Message) > maxErrorText+1 {
				t.Fatalf("status %d: message not short valid UTF-8 (%d bytes)", status, len(e.Message))
			}
			if len(e.Fields) > maxFieldErrors {
				t.Fatalf("status %d: %d field errors kept", status, len(e.Fields))
			}
			if e.RetryAfter < 0 || e.RetryAfter > maxRetryAfter {
				t.Fatalf("status %d: Retry-After %q gave %v", status, retry, e.RetryAfter)
			}
		}
	})
}

// FuzzParseRetryAfter: any header value gives a wait in [0, 24h].
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "0", "120", "-5", "99999999999999999999", "Thu, 01 Jan 2026 00:01:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 02 Jan 2006 15:04:05 MST"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if d := parseRetryAfter(v, now); d < 0 || d > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %v, want within [0, %v]", v, d, maxRetryAfter)
		}
	})
}

// Crashers and property failures the fuzzers found, kept as plain cases.
func TestStatusErrorRegressions(t *testing.T) {
	c := &Client{key: fuzzKey, now: time.Now}
	// The key straddling the 200-byte cut of a text body: truncating
	// before scrubbing left its first bytes in the message.
	body := []byte(strings.Repeat("x", 190) + fuzzKey)
	if e := c.statusError("op", &response{status: 500, header: http.Header{}, body: body}); strings.Contains(e.Message, fuzzKey[:8]) {
		t.Errorf("key prefix survived: %q", e.Message)
	}
	// A multi-byte rune at the cut gave invalid UTF-8.
	body = []byte("x" + strings.Repeat("é", 150))
	if e := c.statusError("op", &response{status: 500, header: http.Header{}, body: body}); !utf8.ValidString(e.Message) {
		t.Errorf("invalid UTF-8 message %q", e.Message)
	}
	// JSON messages were neither bounded nor scrubbed in field errors.
	body = []byte(`{"message":"` + strings.Repeat("m", 5000) + `","errors":[{"field":"f","message":"bad key ` + fuzzKey + `"}]}`)
	e := c.statusError("op", &response{status: 400, header: http.Header{}, body: body})
	if len(e.Message) > 4*maxErrorText || strings.Contains(e.Fields[0].Message, fuzzKey) {
		t.Errorf("JSON error body not bounded/scrubbed: %d bytes, fields %+v", len(e.Message), e.Fields)
	}
	// An HTTP date far in the future asked for a wait of centuries.
	if d := parseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", time.Now()); d > maxRetryAfter {
		t.Errorf("far-future Retry-After date: wait %v", d)
	}
}
