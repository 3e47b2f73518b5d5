package freshdesk

import (
	"net/http"
	"time"
)

// MaxIdleConnsPerHost is how many idle connections to the helpdesk the
// client keeps for reuse. Go's default is 2: a writer with 16 predictions in
// flight over HTTP/1.1 (a proxy, a plain-HTTP endpoint, the simulator) would
// then open and close a connection — a TLS handshake against Freshdesk — for
// most of its calls. Over HTTP/2 the pool does not matter (one connection
// carries every call).
const MaxIdleConnsPerHost = 64

// NewTransport is the HTTP transport the client uses unless given another:
// Go's default transport (proxy from the environment, HTTP/2, dial and TLS
// timeouts) with an idle pool sized for concurrent stages.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 2 * MaxIdleConnsPerHost
	t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	t.IdleConnTimeout = 90 * time.Second
	return t
}
