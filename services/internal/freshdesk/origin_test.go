package freshdesk_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// The API key travels in every request's Authorization header, so plain
// http is refused before any request unless it cannot leave the machine or
// the operator said so; the refusal names FRESHDESK_BASE_URL.
func TestPlainHTTPOnlyToLoopbackOrWhenAllowed(t *testing.T) {
	for _, tc := range []struct {
		base  string
		allow bool
		ok    bool
	}{
		{"http://freshdesk-sim:8089", false, false},
		{"http://10.0.0.7:8089", false, false},
		{"http://acme.freshdesk.com", false, false},
		{"http://[2001:db8::1]:8089", false, false},
		{"http://localhost.example.com:8089", false, false},
		{"http://0.0.0.0:8089", false, false},
		{"http://127.0.0.1:8089", false, true},
		{"http://127.8.9.10", false, true},
		{"http://[::1]:8089", false, true},
		{"http://localhost:8089", false, true},
		{"http://LOCALHOST.:8089", false, true},
		{"http://freshdesk-sim:8089", true, true},
		{"http://10.0.0.7:8089", true, true},
		{"https://acme.freshdesk.com", false, true},
		{"https://proxy.internal:8443", false, true},
	} {
		s := freshdesk.Settings{BaseURL: tc.base, APIKey: "k", Timeout: time.Second, AllowInsecureHTTP: tc.allow}
		err := s.Validate()
		_, nerr := s.NewClient(nil, nil, nil)
		_, cerr := freshdesk.New(freshdesk.Config{BaseURL: tc.base, APIKey: "k", AllowInsecureHTTP: tc.allow})
		if tc.ok {
			if err != nil || nerr != nil || cerr != nil {
				t.Errorf("%s (allow %v): Validate %v, NewClient %v, New %v; want accepted", tc.base, tc.allow, err, nerr, cerr)
			}
			continue
		}
		var ce *platform.ConfigError
		if !errors.As(err, &ce) || ce.Var != "FRESHDESK_BASE_URL" || !strings.Contains(err.Error(), "clear text") ||
			!strings.Contains(err.Error(), "AUTOTRIAGE_ALLOW_INSECURE_HTTP") {
			t.Errorf("%s: Validate = %v; want a FRESHDESK_BASE_URL config error naming the override", tc.base, err)
		}
		if !errors.As(nerr, &ce) || ce.Var != "FRESHDESK_BASE_URL" || !errors.Is(cerr, freshdesk.ErrInsecureHTTP) {
			t.Errorf("%s: NewClient %v, New %v; want both refused", tc.base, nerr, cerr)
		}
	}
}

// A redirect to another origin is not followed. Go's client would follow
// one to the same host name on another port (or from https to http) with
// the Authorization header still set; here the other origin is the same
// 127.0.0.1 on another port, so without the guard the key would reach it.
func TestRedirectOffOriginNotFollowed(t *testing.T) {
	var foreign atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		foreign.Add(1)
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the other origin received an Authorization header")
		}
		w.Write([]byte(`{"id":1}`))
	}))
	t.Cleanup(other.Close)
	var same atomic.Int32
	c, _, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v2/agents/me":
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
		case "/api/v2/groups":
			http.Redirect(w, r, "/moved/groups", http.StatusFound)
		case "/moved/groups":
			if r.Header.Get("Authorization") == "" {
				t.Errorf("same-origin redirect lost the Authorization header")
			}
			same.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`[{"id":3,"name":"g"}]`))
		}
	}))
	_, err := c.Me(context.Background())
	var te *ticketsystem.Error
	if !errors.Is(err, ticketsystem.ErrInvalidResponse) || !errors.As(err, &te) || te.Status != http.StatusTemporaryRedirect {
		t.Fatalf("a foreign redirect: %v; want ErrInvalidResponse with status 307", err)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Fatalf("error carries the key: %v", err)
	}
	if n := foreign.Load(); n != 0 {
		t.Fatalf("the other origin was called %d times", n)
	}
	// A redirect within the origin is still followed.
	if gs, err := c.Groups(context.Background()); err != nil || len(gs) != 1 || gs[0].ID != 3 || same.Load() != 1 {
		t.Fatalf("same-origin redirect: %+v, %v", gs, err)
	}
}
