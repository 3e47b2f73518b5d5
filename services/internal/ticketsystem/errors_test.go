package ticketsystem_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

func TestErrorKinds(t *testing.T) {
	rl := &ticketsystem.Error{Kind: ticketsystem.ErrRateLimited, Op: "GET /x", Status: 429, RetryAfter: 7 * time.Second}
	wrapped := fmt.Errorf("fetch: %w", rl)
	if !errors.Is(wrapped, ticketsystem.ErrRateLimited) || errors.Is(wrapped, ticketsystem.ErrTransient) {
		t.Fatal("kind matching")
	}
	if d, ok := ticketsystem.RetryAfter(wrapped); !ok || d != 7*time.Second {
		t.Fatalf("RetryAfter = %v, %v", d, ok)
	}
	if !ticketsystem.IsRetryable(wrapped) {
		t.Fatal("429 not retryable")
	}
	if _, ok := ticketsystem.RetryAfter(errors.New("x")); ok {
		t.Fatal("RetryAfter on a plain error")
	}

	transient := &ticketsystem.Error{Kind: ticketsystem.ErrTransient, Err: io.ErrUnexpectedEOF}
	unknown := &ticketsystem.Error{Kind: ticketsystem.ErrOutcomeUnknown, Op: "POST /notes", Err: transient}
	if !errors.Is(unknown, ticketsystem.ErrOutcomeUnknown) || !errors.Is(unknown, ticketsystem.ErrTransient) ||
		!errors.Is(unknown, io.ErrUnexpectedEOF) {
		t.Fatal("outcome-unknown chain")
	}
	if ticketsystem.IsRetryable(unknown) {
		t.Fatal("outcome unknown must not be blindly retryable")
	}
	if ticketsystem.IsRetryable(&ticketsystem.Error{Kind: ticketsystem.ErrValidation}) || ticketsystem.IsRetryable(context.Canceled) {
		t.Fatal("validation/canceled retryable")
	}

	v := &ticketsystem.Error{Kind: ticketsystem.ErrValidation, Op: "PUT /t/1", Status: 400, Message: "Validation failed",
		Fields: []ticketsystem.FieldError{{Field: "priority", Code: "invalid_value", Message: "It should be one of these values: '1,2,3,4'"}}}
	msg := v.Error()
	for _, want := range []string{"PUT /t/1", "HTTP 400", "priority", "invalid_value", "Validation failed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Error() = %q lacks %q", msg, want)
		}
	}
}

func TestUpdateIsZero(t *testing.T) {
	if !(ticketsystem.Update{}).IsZero() {
		t.Fatal("zero update")
	}
	p := 2
	for _, u := range []ticketsystem.Update{{Priority: &p}, {SetTags: []string{}}, {AddTags: []string{"a"}},
		{CustomFields: map[string]any{"cf_x": nil}}} {
		if u.IsZero() {
			t.Errorf("%+v reported as zero", u)
		}
	}
}

func TestCatalogLookups(t *testing.T) {
	c := &ticketsystem.Catalog{Groups: []ticketsystem.Choice{{ID: 10000000001, Name: "Billing"}},
		Types: []string{"Question"}, Statuses: []ticketsystem.Status{{ID: 6, AgentLabel: "Waiting on Customer"}}}
	if g, ok := c.GroupByName("Billing"); !ok || g.ID != 10000000001 {
		t.Error("GroupByName")
	}
	if _, ok := c.GroupByName("billing"); ok {
		t.Error("GroupByName is exact")
	}
	if !c.HasType("Question") || c.HasType("Incident") {
		t.Error("HasType")
	}
	if s, ok := c.StatusByID(6); !ok || s.AgentLabel != "Waiting on Customer" {
		t.Error("StatusByID")
	}
}
