package freshdesk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// MaxWebhookBytes caps a webhook body; Freshdesk payloads are a few KiB
// (ticket descriptions included).
const MaxWebhookBytes = 1 << 20

// Webhook parsing errors. ErrUnknownEvent comes with a usable event (the
// ticket id is known), so a receiver can still reconcile the ticket.
var (
	ErrMalformedWebhook = errors.New("freshdesk: malformed webhook payload")
	ErrMissingTicketID  = errors.New("freshdesk: webhook payload has no valid ticket_id")
	ErrUnknownEvent     = errors.New("freshdesk: unknown webhook triggered_event")
	ErrWebhookTooLarge  = errors.New("freshdesk: webhook payload too large")
)

// EventKind is what triggered an automation-rule webhook.
type EventKind int

// Event kinds, from the rule's {{triggered_event}} placeholder.
const (
	// EventUnspecified: the payload has no triggered_event (the rule's
	// template omits it). The ticket id is still valid.
	EventUnspecified EventKind = iota
	EventTicketCreated
	EventStatusChanged
	EventPriorityChanged
	EventNoteAdded
	EventUnknown
)

func (k EventKind) String() string {
	switch k {
	case EventUnspecified:
		return "unspecified"
	case EventTicketCreated:
		return "ticket_created"
	case EventStatusChanged:
		return "status_changed"
	case EventPriorityChanged:
		return "priority_changed"
	case EventNoteAdded:
		return "note_added"
	case EventUnknown:
		return "unknown"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// WebhookEvent is a parsed automation-rule webhook. Placeholder values are
// untyped display strings, so only the ticket id and the event are
// interpreted; fetch the ticket through the API for its state.
type WebhookEvent struct {
	TicketID int64
	Kind     EventKind
	// From and To are the status or priority codes of a change event.
	From, To int
	// Private is set for EventNoteAdded with note_type private.
	Private bool
	// Trigger is the raw triggered_event text, e.g. "{status:{from:4,to:6}}".
	Trigger string
	// Fields holds the payload's other keys (ticket_subject, ticket_status,
	// ...) as text; non-string JSON values keep their JSON form.
	Fields map[string]string
}

// ParseWebhook reads a Freshdesk automation-rule webhook body (JSON, with or
// without the "freshdesk_webhook" wrapper) of at most MaxWebhookBytes.
// Errors match ErrWebhookTooLarge, ErrMalformedWebhook, ErrMissingTicketID
// or ErrUnknownEvent; with ErrUnknownEvent the returned event is filled in
// (Kind EventUnknown).
func ParseWebhook(r io.Reader) (WebhookEvent, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxWebhookBytes+1))
	if err != nil {
		return WebhookEvent{}, fmt.Errorf("%w: reading body: %w", ErrMalformedWebhook, err)
	}
	if len(body) > MaxWebhookBytes {
		return WebhookEvent{}, fmt.Errorf("%w: more than %d bytes", ErrWebhookTooLarge, MaxWebhookBytes)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return WebhookEvent{}, fmt.Errorf("%w: %w", ErrMalformedWebhook, err)
	}
	if top == nil {
		return WebhookEvent{}, fmt.Errorf("%w: not a JSON object", ErrMalformedWebhook)
	}
	if inner, ok := top["freshdesk_webhook"]; ok {
		top = nil
		if err := json.Unmarshal(inner, &top); err != nil || top == nil {
			return WebhookEvent{}, fmt.Errorf("%w: freshdesk_webhook is not an object", ErrMalformedWebhook)
		}
	}
	ev := WebhookEvent{Fields: make(map[string]string, len(top))}
	for k, v := range top {
		ev.Fields[k] = rawText(v)
	}
	idText, ok := ev.Fields["ticket_id"]
	if !ok {
		return WebhookEvent{}, ErrMissingTicketID
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(idText), "#"), 10, 64)
	if err != nil || id <= 0 {
		return WebhookEvent{}, fmt.Errorf("%w: %q", ErrMissingTicketID, truncate(idText, 40))
	}
	ev.TicketID = id
	delete(ev.Fields, "ticket_id")
	trigger, ok := ev.Fields["triggered_event"]
	delete(ev.Fields, "triggered_event")
	if !ok || strings.TrimSpace(trigger) == "" {
		return ev, nil
	}
	ev.Trigger = trigger
	if err := parseTrigger(&ev, trigger); err != nil {
		ev.Kind, ev.From, ev.To, ev.Private = EventUnknown, 0, 0, false
		return ev, err
	}
	return ev, nil
}

// rawText returns a JSON string's content, or the JSON text of other values.
func rawText(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) > 0 && v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	return string(v)
}

// parseTrigger interprets Freshdesk's non-JSON {{triggered_event}}:
// {ticket_action:created}, {status:{from:4,to:6}}, {priority:{from:3,to:1}},
// {note_type:private}. JSON-style quotes and spaces are tolerated.
func parseTrigger(ev *WebhookEvent, s string) error {
	s = strings.TrimSpace(s)
	inner, ok := unbrace(s)
	if !ok {
		return fmt.Errorf("%w: %q is not {key:value}", ErrUnknownEvent, truncate(s, 60))
	}
	key, val, ok := strings.Cut(inner, ":")
	if !ok {
		return fmt.Errorf("%w: %q is not {key:value}", ErrUnknownEvent, truncate(s, 60))
	}
	key, val = unquote(key), strings.TrimSpace(val)
	switch key {
	case "ticket_action":
		if unquote(val) == "created" {
			ev.Kind = EventTicketCreated
			return nil
		}
	case "note_type":
		switch unquote(val) {
		case "private":
			ev.Kind, ev.Private = EventNoteAdded, true
			return nil
		case "public":
			ev.Kind = EventNoteAdded
			return nil
		}
	case "status", "priority":
		from, to, err := parseFromTo(val)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnknownEvent, key, err)
		}
		ev.Kind, ev.From, ev.To = EventStatusChanged, from, to
		if key == "priority" {
			ev.Kind = EventPriorityChanged
		}
		return nil
	}
	return fmt.Errorf("%w: %q", ErrUnknownEvent, truncate(s, 60))
}

func unbrace(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return "", false
	}
	return strings.TrimSpace(s[1 : len(s)-1]), true
}

func unquote(s string) string {
	return strings.Trim(strings.TrimSpace(s), `"'`)
}

// parseFromTo parses {from:4,to:6}.
func parseFromTo(s string) (from, to int, err error) {
	inner, ok := unbrace(s)
	if !ok {
		return 0, 0, fmt.Errorf("%q is not {from:x,to:y}", truncate(s, 40))
	}
	var haveFrom, haveTo bool
	for part := range strings.SplitSeq(inner, ",") {
		k, v, ok := strings.Cut(part, ":")
		if !ok {
			return 0, 0, fmt.Errorf("%q is not key:value", truncate(part, 40))
		}
		n, err := strconv.Atoi(unquote(v))
		if err != nil {
			return 0, 0, fmt.Errorf("%q is not an integer", truncate(v, 20))
		}
		switch unquote(k) {
		case "from":
			from, haveFrom = n, true
		case "to":
			to, haveTo = n, true
		}
	}
	if !haveFrom || !haveTo {
		return 0, 0, fmt.Errorf("%q lacks from or to", truncate(s, 40))
	}
	return from, to, nil
}
