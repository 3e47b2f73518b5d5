package freshdesk

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// maxInternalRetryAfter bounds how long the client itself waits on a 429.
// Longer waits are returned to the caller (ErrRateLimited with RetryAfter),
// who can park the work (e.g. Nak with that delay) instead of holding a
// goroutine.
const maxInternalRetryAfter = 2 * time.Minute

// ErrResponseTooLarge matches (errors.Is) the error of a call whose response
// body exceeded Config.MaxResponseBytes; the body was not decoded. The error
// also matches ticketsystem.ErrInvalidResponse, and errors.As finds a
// *ResponseTooLargeError with the limit.
var ErrResponseTooLarge = errors.New("freshdesk: response body too large")

// ResponseTooLargeError is the cause of an oversized response.
type ResponseTooLargeError struct {
	Limit int64 // Config.MaxResponseBytes in force
}

func (e *ResponseTooLargeError) Error() string {
	return fmt.Sprintf("response body exceeds the %d-byte limit", e.Limit)
}

// Is matches ErrResponseTooLarge.
func (e *ResponseTooLargeError) Is(target error) bool { return target == ErrResponseTooLarge }

// Client is a Freshdesk API v2 client. It is safe for concurrent use.
type Client struct {
	base        *url.URL
	key         Secret
	authHeader  string
	userAgent   string
	hc          *http.Client
	maxRetries  int
	maxBody     int64
	backoffBase time.Duration
	backoffMax  time.Duration
	now         func() time.Time
	sleep       func(context.Context, time.Duration) error
	log         *slog.Logger
	pacer       *pacer
	metrics     *metrics
	tooLarge    unreadableSet // versions too large to read even alone
}

// New validates cfg and returns a client. It performs no network I/O.
func New(cfg Config) (*Client, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("freshdesk: API key is required")
	}
	if strings.ContainsAny(cfg.APIKey.Reveal(), ":\r\n") {
		return nil, errors.New("freshdesk: API key contains invalid characters")
	}
	base, err := cfg.baseURL()
	if err != nil {
		return nil, err
	}
	if cfg.Reserve < 0 {
		return nil, errors.New("freshdesk: Reserve must not be negative")
	}
	c := &Client{
		base:        base,
		key:         cfg.APIKey,
		authHeader:  "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.APIKey.Reveal()+":X")),
		userAgent:   cfg.UserAgent,
		hc:          cfg.HTTPClient,
		maxRetries:  cfg.MaxRetries,
		maxBody:     cfg.MaxResponseBytes,
		backoffBase: cfg.BackoffBase,
		backoffMax:  cfg.BackoffMax,
		now:         cfg.Now,
		sleep:       cfg.Sleep,
		log:         cfg.Logger,
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.hc == nil {
		timeout := cfg.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		c.hc = &http.Client{Timeout: timeout, Transport: NewTransport()}
	}
	c.hc = keepOnOrigin(c.hc, base)
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxResponseBytes
	}
	if c.backoffBase <= 0 {
		c.backoffBase = 500 * time.Millisecond
	}
	if c.backoffMax <= 0 {
		c.backoffMax = 30 * time.Second
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = defaultSleep
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.metrics = newMetrics()
	if cfg.Registerer != nil {
		if err := c.metrics.register(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("freshdesk: registering metrics: %w", err)
		}
	}
	c.pacer = newPacer(cfg.Reserve, c.now)
	return c, nil
}

// keepOnOrigin returns a copy of hc that does not follow a redirect off
// base's origin. Go's client would follow it, and keep the Authorization
// header whenever the host name matches — on another port, or from https
// to http — so the key could leave the origin or the TLS channel; the
// redirect response itself is returned instead (an ErrInvalidResponse).
func keepOnOrigin(hc *http.Client, base *url.URL) *http.Client {
	cp := *hc
	next := hc.CheckRedirect
	cp.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !sameOrigin(req.URL, base) {
			return http.ErrUseLastResponse
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cp
}

// String never includes the API key.
func (c *Client) String() string { return "freshdesk.Client{" + c.base.String() + "}" }

// Format prints String for every verb, so no fmt verb can reach the key or
// the Authorization header held in unexported fields.
func (c *Client) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// BaseURL returns the API origin the client talks to.
func (c *Client) BaseURL() string { return c.base.String() }

// request describes one logical API call, which may take several attempts.
type request struct {
	method   string
	path     string     // "/api/v2/..." relative to the base URL
	query    url.Values // nil for none
	rawURL   string     // absolute URL (a validated link header); overrides path/query
	body     any        // JSON-encoded when non-nil
	cost     int        // expected credits, for pacing
	endpoint string     // metrics label
	// idempotent requests are retried on 5xx and broken connections.
	// Others only when the server cannot have processed them (429, dial
	// errors); otherwise they fail with ErrOutcomeUnknown.
	idempotent bool
}

type response struct {
	status int
	header http.Header
	body   []byte
	buf    *bytes.Buffer // backs body; returned to bodyPool by release
}

// bodyPool recycles response-body buffers. Decoding copies everything it
// keeps (strings, raw JSON), so a body can be recycled once decoded.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody keeps unusually large bodies (big list pages) out of the
// pool so it does not pin memory.
const maxPooledBody = 1 << 20

// release recycles the body buffer; r.body must not be used afterwards.
func (r *response) release() {
	if r == nil || r.buf == nil {
		return
	}
	if r.buf.Cap() <= maxPooledBody {
		bodyPool.Put(r.buf)
	}
	r.buf, r.body = nil, nil
}

// do performs r with pacing and retries and returns a 2xx response, or an
// error that wraps a *ticketsystem.Error (or the context's error).
func (c *Client) do(ctx context.Context, r request) (*response, error) {
	op := r.method + " " + r.path
	var payload []byte
	if r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return nil, fmt.Errorf("%s: encoding request: %w", op, err)
		}
	}
	target := r.rawURL
	if target == "" {
		u := *c.base
		u.Path = c.base.Path + r.path
		if len(r.query) > 0 {
			u.RawQuery = r.query.Encode()
		}
		target = u.String()
	}
	cost := max(r.cost, 1)
	for attempt := 0; ; attempt++ {
		if err := c.pacer.wait(ctx, cost, c.sleep, c.metrics); err != nil {
			return nil, fmt.Errorf("%s: waiting for rate-limit budget: %w", op, err)
		}
		resp, err := c.once(ctx, r.method, target, payload)
		var retryErr error
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s: %w", op, ctx.Err())
			}
			c.metrics.request(r.endpoint, 0).Inc()
			if errors.Is(err, ErrResponseTooLarge) {
				c.metrics.oversized.WithLabelValues(r.endpoint).Inc()
			}
			if !isTransientNetErr(err) {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
			te := &ticketsystem.Error{Kind: ticketsystem.ErrTransient, Op: op, Err: err}
			if !r.idempotent && !neverSent(err) {
				return nil, &ticketsystem.Error{Kind: ticketsystem.ErrOutcomeUnknown, Op: op,
					Message: "connection failed after the request was sent; check the ticket before retrying", Err: te}
			}
			retryErr, wait = te, c.backoff(attempt)
		default:
			c.metrics.request(r.endpoint, resp.status).Inc()
			if resp.status >= 200 && resp.status < 300 {
				return resp, nil
			}
			apiErr := c.statusError(op, resp)
			resp.release()
			switch {
			case resp.status == http.StatusTooManyRequests:
				c.metrics.rateLimited.Inc()
				c.pacer.throttled(apiErr.RetryAfter)
				if apiErr.RetryAfter > maxInternalRetryAfter {
					return nil, apiErr
				}
				wait = apiErr.RetryAfter
				if wait <= 0 {
					wait = c.backoff(attempt)
				}
				retryErr = apiErr
			case resp.status >= 500:
				if !r.idempotent {
					return nil, &ticketsystem.Error{Kind: ticketsystem.ErrOutcomeUnknown, Op: op, Status: resp.status,
						Message: "server error on a non-idempotent request; check the ticket before retrying", Err: apiErr}
				}
				retryErr, wait = apiErr, c.backoff(attempt)
			default:
				return nil, apiErr
			}
		}
		if attempt >= c.maxRetries {
			return nil, retryErr
		}
		c.metrics.retries.WithLabelValues(r.endpoint).Inc()
		c.log.LogAttrs(ctx, slog.LevelDebug, "freshdesk: retrying",
			slog.String("op", op), slog.Int("attempt", attempt+1), slog.Duration("wait", wait),
			slog.String("error", retryErr.Error()))
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("%s: %w (last error: %w)", op, err, retryErr)
		}
	}
}

// once performs a single HTTP exchange and reads the capped body.
func (c *Client) once(ctx context.Context, method, target string, payload []byte) (*response, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", c.authHeader)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := c.now()
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	c.observe(res.Header)
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	if n := res.ContentLength; n > 0 && n <= c.maxBody {
		buf.Grow(int(n) + bytes.MinRead) // one read to EOF, no regrowth
	}
	if _, err := buf.ReadFrom(io.LimitReader(res.Body, c.maxBody+1)); err != nil {
		bodyPool.Put(buf)
		return nil, err
	}
	c.metrics.duration.Observe(c.now().Sub(start).Seconds())
	if int64(buf.Len()) > c.maxBody {
		if buf.Cap() <= maxPooledBody {
			bodyPool.Put(buf)
		}
		return nil, &ticketsystem.Error{Kind: ticketsystem.ErrInvalidResponse, Status: res.StatusCode,
			Err: &ResponseTooLargeError{Limit: c.maxBody}}
	}
	return &response{status: res.StatusCode, header: res.Header, body: buf.Bytes(), buf: buf}, nil
}

// observe records the rate-limit headers of any response, errors included.
func (c *Client) observe(h http.Header) {
	total, okT := headerInt(h, "X-Ratelimit-Total")
	rem, okR := headerInt(h, "X-Ratelimit-Remaining")
	used, okU := headerInt(h, "X-Ratelimit-Used-Currentrequest")
	if okU {
		c.metrics.credits.Add(float64(used))
	}
	if okT {
		c.metrics.limitTotal.Set(float64(total))
	}
	if okR {
		c.metrics.limitRemaining.Set(float64(rem))
		c.pacer.observe(total, rem, used, okT)
	}
}

func headerInt(h http.Header, name string) (int, bool) {
	v := h.Get(name)
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// backoff returns the jittered exponential delay before retry attempt+1:
// a uniform draw from [d/2, d] with d = base*2^attempt capped at max.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.backoffBase << min(attempt, 20)
	if d <= 0 || d > c.backoffMax {
		d = c.backoffMax
	}
	half := d / 2
	return half + rand.N(half+1)
}

// isTransientNetErr reports transport failures worth retrying: timeouts,
// resets, refused connections and truncated responses.
func isTransientNetErr(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) || neverSent(err)
}

// neverSent reports errors that happen before any byte of the request could
// reach the server (dialing, DNS), so even a POST may be retried.
func neverSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// errorBody is the union of Freshdesk's error shapes:
// {"code","message"} and {"description","errors":[{field,message,code}]}.
type errorBody struct {
	Code        string `json:"code"`
	Message     string `json:"message"`
	Description string `json:"description"`
	Errors      []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
		Code    string `json:"code"`
	} `json:"errors"`
}

// Limits on what an error response can put into an error (and so into
// logs and DLQ records): Freshdesk's bodies are short; anything longer is a
// proxy page or a hostile server.
const (
	maxErrorText   = 200 // runes per message, code or field
	maxFieldErrors = 20
	maxRetryAfter  = 24 * time.Hour
)

// statusError builds the error for a non-2xx response. Bodies are optional:
// 404 and 429 usually have none, and a non-JSON body is kept as text. Every
// string taken from the body is scrubbed of the key before it is cut, so a
// key straddling the cut cannot leave a prefix behind.
func (c *Client) statusError(op string, r *response) *ticketsystem.Error {
	e := &ticketsystem.Error{Kind: kindForStatus(r.status), Op: op, Status: r.status,
		RequestID: c.errorText(r.header.Get("X-Request-Id"))}
	if r.status == http.StatusTooManyRequests {
		e.RetryAfter = parseRetryAfter(r.header.Get("Retry-After"), c.now())
	}
	body := bytes.TrimSpace(r.body)
	if len(body) > 0 {
		var eb errorBody
		if body[0] == '{' && json.Unmarshal(body, &eb) == nil {
			e.Code = c.errorText(eb.Code)
			e.Message = c.errorText(eb.Message)
			if e.Message == "" {
				e.Message = c.errorText(eb.Description)
			}
			for i, fe := range eb.Errors {
				if i == maxFieldErrors {
					break
				}
				e.Fields = append(e.Fields, ticketsystem.FieldError{Field: c.errorText(fe.Field), Code: c.errorText(fe.Code), Message: c.errorText(fe.Message)})
			}
		} else {
			e.Message = c.errorText(string(body))
		}
	}
	if r.status >= 300 && r.status < 400 && e.Message == "" {
		e.Message = "redirect off " + c.base.Scheme + "://" + c.base.Host + " not followed"
	}
	return e
}

// errorText makes a string from a response fit for an error: valid UTF-8,
// without the key, at most maxErrorText runes.
func (c *Client) errorText(s string) string {
	s = scrubSecret(strings.ToValidUTF8(s, "?"), c.key.Reveal())
	if utf8.RuneCountInString(s) <= maxErrorText {
		return s
	}
	n := 0
	for i := range s {
		if n == maxErrorText {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

func kindForStatus(status int) error {
	switch {
	case status == http.StatusBadRequest, status == http.StatusUnprocessableEntity:
		return ticketsystem.ErrValidation
	case status == http.StatusUnauthorized:
		return ticketsystem.ErrAuth
	case status == http.StatusForbidden:
		return ticketsystem.ErrPermission
	case status == http.StatusNotFound:
		return ticketsystem.ErrNotFound
	case status == http.StatusMethodNotAllowed, status == http.StatusGone:
		// Freshdesk answers 405 to updates of spam or deleted tickets. (A
		// wrong verb also gives 405, but the client never sends one.)
		return ticketsystem.ErrGone
	case status == http.StatusConflict:
		return ticketsystem.ErrConflict
	case status == http.StatusTooManyRequests:
		return ticketsystem.ErrRateLimited
	case status >= 500:
		return ticketsystem.ErrTransient
	case status >= 400:
		return ticketsystem.ErrUnsupported
	default:
		return ticketsystem.ErrInvalidResponse
	}
}

// parseRetryAfter accepts delta-seconds or an HTTP date; 0 if absent or bad,
// at most maxRetryAfter (a far-future date must not park the writer).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}

// decode unmarshals a successful body into v (already size-limited by
// the response reader). Unknown keys are ignored.
func decode(op string, r *response, v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return &ticketsystem.Error{Kind: ticketsystem.ErrInvalidResponse, Op: op, Status: r.status,
			Message: "decoding response", Err: err}
	}
	return nil
}
