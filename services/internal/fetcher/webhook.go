package fetcher

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// WebhookPath is where Freshdesk automation rules post.
const WebhookPath = "/webhooks/freshdesk"

// WebhookHandler serves WebhookPath. Contract with Freshdesk, in the order
// the checks run (each before any work the next one costs):
//
//   - 403: the source (the TCP peer, or the client named by a trusted
//     proxy's X-Forwarded-For) is outside AUTOTRIAGE_WEBHOOK_ALLOW;
//   - 429 with Retry-After: the source posts faster than
//     AUTOTRIAGE_WEBHOOK_RATE/BURST. This comes before authentication, so
//     guessing the secret is throttled too;
//   - 405: not a POST;
//   - 401: missing or wrong credentials (shared-secret header or basic auth;
//     compared in constant time); the body is not read;
//   - 413: body larger than AUTOTRIAGE_WEBHOOK_MAX_BYTES;
//   - 400: malformed JSON, no usable ticket id, or an unknown
//     triggered_event; the raw body goes to the DLQ (stage "fetcher");
//   - 200 {"status":"ignored"}: the ticket no longer exists, or is too
//     large to read within the client's response limit (the poll
//     dead-letters that version);
//   - 202: the ticket was fetched by id through the API (the payload's
//     fields are never trusted) and published, or deliberately skipped;
//   - 503: the ticket system or NATS failed transiently; Freshdesk retries.
//
// Every event (creation, status, priority, note) means "re-fetch this
// ticket".
func (f *Fetcher) WebhookHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(WebhookPath, f.serveWebhook)
	return mux
}

type webhookReply struct {
	Status   string `json:"status,omitempty"`
	Reason   string `json:"reason,omitempty"`
	TicketID int64  `json:"ticket_id,omitempty"`
	Error    string `json:"error,omitempty"`
}

func (f *Fetcher) reply(w http.ResponseWriter, code int, r webhookReply) {
	f.metrics.webhooks.WithLabelValues(strconv.Itoa(code)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(r)
}

// digest hashes a credential so the constant-time comparison does not leak
// its length either.
func digest(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

// refuse answers a request stopped before its body was read: counted by
// reason, and logged at most once per AUTOTRIAGE_WEBHOOK_LOG_INTERVAL per
// kind. Nothing the client presented as a credential is logged.
func (f *Fetcher) refuse(w http.ResponseWriter, code int, reason, kind, src, msg string) {
	f.metrics.webhookRefused.WithLabelValues(reason).Inc()
	f.guard.logs.warn(kind, src, msg, "reason", reason, "source", src)
	f.reply(w, code, webhookReply{Error: http.StatusText(code)})
}

// presented reports whether the request carries any credential the
// endpoint accepts, right or wrong.
func (f *Fetcher) presented(r *http.Request) bool {
	if f.cfg.WebhookSecret.IsSet() && r.Header.Get(f.cfg.WebhookHeader) != "" {
		return true
	}
	_, _, has := r.BasicAuth()
	return has && f.cfg.WebhookUser != ""
}

// authorized checks the shared-secret header and basic auth; either one
// that is configured and matches admits the request.
func (f *Fetcher) authorized(r *http.Request) bool {
	ok := 0
	if f.cfg.WebhookSecret.IsSet() {
		got := r.Header.Get(f.cfg.WebhookHeader)
		ok |= subtle.ConstantTimeCompare(digest(got), digest(f.cfg.WebhookSecret.Reveal()))
	}
	if f.cfg.WebhookUser != "" && f.cfg.WebhookPassword.IsSet() {
		if user, pass, has := r.BasicAuth(); has {
			u := subtle.ConstantTimeCompare(digest(user), digest(f.cfg.WebhookUser))
			p := subtle.ConstantTimeCompare(digest(pass), digest(f.cfg.WebhookPassword.Reveal()))
			ok |= u & p
		}
	}
	return ok == 1
}

// serveWebhook runs the phases of the contract on WebhookHandler in order:
// admission (nothing read yet), the body, the ticket fetched by id, publish.
func (f *Fetcher) serveWebhook(w http.ResponseWriter, r *http.Request) {
	if !f.admit(w, r) {
		return
	}
	body, ok := f.readWebhookBody(w, r)
	if !ok {
		return
	}
	ev, err := freshdesk.ParseWebhook(bytes.NewReader(body))
	if err != nil {
		f.rejectWebhook(w, r, body, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), f.cfg.WebhookTimeout)
	defer cancel()
	t, ok := f.fetchWebhookTicket(ctx, w, ev)
	if !ok {
		return
	}
	res, err := f.handle(ctx, t, publishOpts{arrival: v1.Arrival_ARRIVAL_WEBHOOK, live: true})
	if err != nil {
		f.log.Warn("webhook: cannot publish the ticket; asking Freshdesk to retry", "ticket", ev.TicketID, "err", err)
		f.reply(w, http.StatusServiceUnavailable, webhookReply{Error: "pipeline unavailable", TicketID: ev.TicketID})
		return
	}
	f.log.Debug("webhook handled", "ticket", t.ID, "event", ev.Kind.String(), "status", res.Status, "reason", res.Reason)
	f.reply(w, http.StatusAccepted, webhookReply{Status: res.Status, Reason: res.Reason, TicketID: t.ID})
}

// admit runs the checks that cost nothing but the request line and headers
// (source 403, rate 429, method 405, credentials 401) and answers the first
// that fails. It reports whether the request may go on to its body.
func (f *Fetcher) admit(w http.ResponseWriter, r *http.Request) bool {
	src := f.guard.source(r)
	srcText := "unknown"
	if src.IsValid() {
		srcText = src.String()
	}
	if !f.guard.allowed(src) {
		f.refuse(w, http.StatusForbidden, RefusedSource, "source", srcText, "webhook refused: source not in AUTOTRIAGE_WEBHOOK_ALLOW")
		return false
	}
	ok, wait := f.guard.limits.allow(src, time.Now())
	f.metrics.webhookSources.Set(float64(f.guard.limits.tracked()))
	if !ok {
		w.Header().Set("Retry-After", retryAfter(wait))
		f.refuse(w, http.StatusTooManyRequests, RefusedRateLimited, "rate", srcText, "webhook refused: source over AUTOTRIAGE_WEBHOOK_RATE")
		return false
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		f.reply(w, http.StatusMethodNotAllowed, webhookReply{Error: "POST only"})
		return false
	}
	if !f.authorized(r) {
		if f.cfg.WebhookUser != "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="autotriage"`)
		}
		reason := RefusedBadAuth
		if !f.presented(r) {
			reason = RefusedMissingAuth
		}
		f.refuse(w, http.StatusUnauthorized, reason, "auth", srcText, "webhook refused: bad or missing credentials")
		return false
	}
	return true
}

// readWebhookBody reads at most AUTOTRIAGE_WEBHOOK_MAX_BYTES; a larger body
// is answered 413, an unreadable one 400.
func (f *Fetcher) readWebhookBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, f.cfg.WebhookMaxBytes))
	if err == nil {
		return body, true
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		f.log.Warn("webhook rejected: body too large", "remote", r.RemoteAddr, "limit", f.cfg.WebhookMaxBytes)
		f.reply(w, http.StatusRequestEntityTooLarge, webhookReply{Error: "body too large"})
		return nil, false
	}
	f.reply(w, http.StatusBadRequest, webhookReply{Error: "cannot read body"})
	return nil, false
}

// fetchWebhookTicket reads the ticket the event names through the API (the
// payload's fields are never trusted). When it cannot, it answers: 200
// "ignored" for a ticket that is gone or too large to read, 503 (with the
// ticket system's Retry-After) for a transient failure.
func (f *Fetcher) fetchWebhookTicket(ctx context.Context, w http.ResponseWriter, ev freshdesk.WebhookEvent) (*ticketsystem.Ticket, bool) {
	t, err := f.src.GetTicket(ctx, ev.TicketID)
	switch {
	case errors.Is(err, ticketsystem.ErrNotFound):
		f.log.Info("webhook for a ticket that no longer exists; ignored", "ticket", ev.TicketID, "event", ev.Kind.String())
		f.reply(w, http.StatusOK, webhookReply{Status: "ignored", Reason: "ticket not found", TicketID: ev.TicketID})
		return nil, false
	case errors.Is(err, freshdesk.ErrResponseTooLarge):
		// Retrying cannot help, and the version's updated_at (its name in
		// the DLQ) is not known without the body: the poll, which lists the
		// version without its description, dead-letters it.
		f.metrics.unreadable.WithLabelValues("webhook").Inc()
		f.log.Warn("webhook: ticket too large to read; left to the poll, which dead-letters it", "ticket", ev.TicketID, "err", err)
		f.reply(w, http.StatusOK, webhookReply{Status: "ignored", Reason: "ticket too large to read", TicketID: ev.TicketID})
		return nil, false
	case err != nil:
		f.log.Warn("webhook: cannot fetch the ticket; asking Freshdesk to retry", "ticket", ev.TicketID, "err", err)
		if d, ok := ticketsystem.RetryAfter(err); ok && d > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
		}
		f.reply(w, http.StatusServiceUnavailable, webhookReply{Error: "ticket system unavailable", TicketID: ev.TicketID})
		return nil, false
	}
	if t.ID != ev.TicketID {
		f.log.Warn("webhook: the API returned another ticket than asked for", "asked", ev.TicketID, "got", t.ID)
	}
	return t, true
}

// rejectWebhook answers 400 for a body that cannot be used, after copying it
// to the DLQ (so an operator can see what the rule sent). If the DLQ cannot
// be written it answers 503 instead, so Freshdesk retries and nothing is
// silently lost.
func (f *Fetcher) rejectWebhook(w http.ResponseWriter, r *http.Request, body []byte, cause error) {
	reason := "malformed"
	switch {
	case errors.Is(cause, freshdesk.ErrMissingTicketID):
		reason = "missing ticket id"
	case errors.Is(cause, freshdesk.ErrUnknownEvent):
		reason = "unknown event"
	case errors.Is(cause, freshdesk.ErrWebhookTooLarge):
		reason = "too large"
	}
	f.metrics.invalid.WithLabelValues("webhook").Inc()
	f.log.Warn("webhook rejected", "reason", reason, "err", cause, "remote", r.RemoteAddr, "bytes", len(body))
	sum := sha256.Sum256(body)
	id := "fetcher:webhook:" + hex.EncodeToString(sum[:16])
	hdr := map[string]string{"Autotriage-Webhook-Received-At": time.Now().UTC().Format(time.RFC3339Nano)}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		hdr[pipeline.HeaderContentType] = truncate(ct, 200)
	}
	dctx, cancel := context.WithTimeout(r.Context(), f.cfg.WebhookTimeout)
	defer cancel()
	if err := f.bus.DeadLetterRaw(dctx, Stage, f.account, id, body, "webhook "+reason+": "+cause.Error(), hdr); err != nil {
		f.log.Error("cannot dead-letter a rejected webhook; asking Freshdesk to retry", "err", err)
		f.reply(w, http.StatusServiceUnavailable, webhookReply{Error: "pipeline unavailable"})
		return
	}
	f.pmetrics.DeadLettered(Stage, pipeline.CauseInvalidWebhook)
	f.reply(w, http.StatusBadRequest, webhookReply{Error: reason})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
