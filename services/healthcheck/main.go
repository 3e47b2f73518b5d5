// Command healthcheck is the container healthcheck of every autotriage image.
// Scratch images have no shell, curl or wget, so each image carries this
// small static binary:
//
//	healthcheck [-timeout 3s] URL
//
// It sends GET URL and exits 0 when the answer is 2xx, 1 otherwise (2 for a
// usage error). It speaks plain HTTP/1.0 to the process in the same
// container, e.g. http://127.0.0.1:9090/readyz, or to the NATS monitoring
// endpoint http://127.0.0.1:8222/healthz?js-enabled-only=true. It avoids
// net/http on purpose: the binary stays around 2 MB in every image.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "how long the whole request may take")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: healthcheck [-timeout 3s] http://HOST:PORT/PATH\n\nExits 0 when GET answers 2xx, 1 otherwise, 2 on a usage error.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	status, err := probe(fs.Arg(0), *timeout)
	var uerr usageError
	switch {
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	case status < 200 || status > 299:
		fmt.Fprintf(stderr, "healthcheck: %s: status %d\n", fs.Arg(0), status)
		return 1
	}
	return 0
}

type usageError struct{ error }

// probe sends one HTTP/1.0 GET and returns the status code of the answer.
func probe(raw string, timeout time.Duration) (int, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return 0, usageError{err}
	}
	if u.Scheme != "http" || u.Host == "" {
		return 0, usageError{fmt.Errorf("%q: want an http://host:port/path URL", raw)}
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	conn, err := net.DialTimeout("tcp", host, timeout)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, err
	}
	path := u.RequestURI()
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: autotriage-healthcheck\r\nAccept: */*\r\nConnection: close\r\n\r\n", path, u.Host); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("read status line: %w", err)
	}
	// "HTTP/1.1 200 OK"
	parts := strings.Fields(line)
	if len(parts) < 2 || !strings.HasPrefix(parts[0], "HTTP/") {
		return 0, fmt.Errorf("malformed status line %q", strings.TrimSpace(line))
	}
	code, err := strconv.Atoi(parts[1])
	if err != nil {
		return 0, fmt.Errorf("malformed status line %q", strings.TrimSpace(line))
	}
	return code, nil
}
