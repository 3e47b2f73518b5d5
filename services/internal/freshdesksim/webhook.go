package freshdesksim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// webhookEvent holds the placeholders of the automation rule's "Advanced"
// JSON template, already rendered as strings, as Freshdesk renders them:
// the id is a string, status and priority are display names and
// triggered_event is Freshdesk's non-JSON notation.
type webhookEvent struct {
	TriggeredEvent    string `json:"triggered_event"`
	TicketID          string `json:"ticket_id"`
	TicketURL         string `json:"ticket_url"`
	TicketType        string `json:"ticket_type"`
	TicketSubject     string `json:"ticket_subject"`
	TicketDescription string `json:"ticket_description"`
	TicketStatus      string `json:"ticket_status"`
	TicketPriority    string `json:"ticket_priority"`
	RequesterName     string `json:"requester_name"`
	RequesterEmail    string `json:"requester_email"`
}

// renderWebhook renders the payload in the shape of the recorded
// webhook_*.json fixtures: {"freshdesk_webhook":{...}}. Values are
// JSON-escaped (Unverified: whether Freshdesk escapes them; unescaped HTML
// would produce invalid JSON, so escaping is the useful choice). HTML is not
// \u-escaped, to read like the recordings.
func renderWebhook(ev webhookEvent) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		W webhookEvent `json:"freshdesk_webhook"`
	}{ev}); err != nil {
		return nil, fmt.Errorf("render webhook: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// eventFor fills the ticket placeholders. Must be called with s.mu held.
func (s *Sim) eventFor(t Ticket, triggered string) webhookEvent {
	ev := webhookEvent{
		TriggeredEvent:    triggered,
		TicketID:          strconv.FormatInt(t.ID, 10),
		TicketURL:         "https://" + s.cfg.Domain + ".freshdesk.com/helpdesk/tickets/" + strconv.FormatInt(t.ID, 10),
		TicketType:        t.Type,
		TicketSubject:     t.Subject,
		TicketDescription: t.Description,
		TicketStatus:      statusName(t.Status),
		TicketPriority:    priorityName(t.Priority),
	}
	if c := s.contacts[t.RequesterID]; c != nil {
		ev.RequesterName, ev.RequesterEmail = c.name, c.email
	}
	return ev
}

func (s *Sim) createdEvent(t Ticket) webhookEvent {
	return s.eventFor(t, "{ticket_action:created}")
}

// updateEvent reports the first matching change only, as Freshdesk does:
// status before priority. Other changes fire nothing.
func (s *Sim) updateEvent(prev, cur Ticket) *webhookEvent {
	var trig string
	switch {
	case prev.Status != cur.Status:
		trig = fmt.Sprintf("{status:{from:%d,to:%d}}", prev.Status, cur.Status)
	case prev.Priority != cur.Priority:
		trig = fmt.Sprintf("{priority:{from:%d,to:%d}}", prev.Priority, cur.Priority)
	default:
		return nil
	}
	ev := s.eventFor(cur, trig)
	return &ev
}

// retryDelays are Freshdesk's retry schedule after a failed delivery, in
// simulated time; after the last one fails the event is dropped.
var retryDelays = []time.Duration{5 * time.Minute, 30 * time.Minute, 60 * time.Minute}

type delivery struct {
	body    []byte
	attempt int // 0 = first try
}

type webhookSender struct {
	cfg    WebhookConfig
	scale  float64
	client *http.Client
	ctx    context.Context
	queue  chan delivery
	wg     sync.WaitGroup

	queued, attempts, delivered, failed, dropped atomic.Int64
}

const webhookQueueSize = 10000

func newWebhookSender(ctx context.Context, cfg WebhookConfig, scale float64) *webhookSender {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	ws := &webhookSender{
		cfg: cfg, scale: scale, ctx: ctx,
		client: &http.Client{Timeout: cfg.Timeout},
		queue:  make(chan delivery, webhookQueueSize),
	}
	for range cfg.Workers {
		ws.wg.Add(1)
		go ws.worker()
	}
	return ws
}

func (ws *webhookSender) enqueue(ev webhookEvent) {
	body, err := renderWebhook(ev)
	if err != nil {
		ws.dropped.Add(1)
		return
	}
	ws.queued.Add(1)
	ws.push(delivery{body: body})
}

func (ws *webhookSender) push(d delivery) {
	select {
	case ws.queue <- d:
	case <-ws.ctx.Done():
	default:
		ws.dropped.Add(1) // queue full: Freshdesk also drops webhooks it cannot send
	}
}

func (ws *webhookSender) worker() {
	defer ws.wg.Done()
	for {
		select {
		case <-ws.ctx.Done():
			return
		case d := <-ws.queue:
			ws.deliver(d)
		}
	}
}

func (ws *webhookSender) deliver(d delivery) {
	ws.attempts.Add(1)
	if err := ws.post(d.body); err == nil {
		ws.delivered.Add(1)
		return
	}
	ws.failed.Add(1)
	if d.attempt >= len(retryDelays) {
		ws.dropped.Add(1)
		return
	}
	wait := time.Duration(float64(retryDelays[d.attempt]) / ws.scale)
	next := delivery{body: d.body, attempt: d.attempt + 1}
	time.AfterFunc(wait, func() {
		if ws.ctx.Err() == nil {
			ws.push(next)
		}
	})
}

func (ws *webhookSender) post(body []byte) error {
	req, err := http.NewRequestWithContext(ws.ctx, http.MethodPost, ws.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Freshdesk-Simulator")
	if ws.cfg.Header != "" {
		req.Header.Set(ws.cfg.Header, ws.cfg.Secret)
	}
	if ws.cfg.Username != "" || ws.cfg.Password != "" {
		req.SetBasicAuth(ws.cfg.Username, ws.cfg.Password)
	}
	resp, err := ws.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook post: status %d", resp.StatusCode)
	}
	return nil
}

func (ws *webhookSender) wait() { ws.wg.Wait() }

func (ws *webhookSender) snapshot() WebhookStats {
	return WebhookStats{
		Queued: ws.queued.Load(), Attempts: ws.attempts.Load(), Delivered: ws.delivered.Load(),
		Failed: ws.failed.Load(), Dropped: ws.dropped.Load(),
	}
}

func (ws *webhookSender) reset() {
	ws.queued.Store(0)
	ws.attempts.Store(0)
	ws.delivered.Store(0)
	ws.failed.Store(0)
	ws.dropped.Store(0)
}
