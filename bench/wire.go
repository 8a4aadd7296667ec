package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// wireClient is the load generator's client for the token endpoints: one
// keep-alive HTTP/1.1 connection, a request written from one reused
// buffer, the answer read with a minimal parser. net/http's Transport
// costs about a tenth of an OpenSSL signature per request (two goroutines
// per connection, channel hand-offs, a header map each way), and the load
// generator runs on the same two cores as the server: what it spends is
// taken from the server and shows up as "of ceiling" lost. wrk, which the
// issue's first figures were taken with, is lean the same way. Aero2 and
// the peer are driven by the same client (-client net is the old one, for
// comparison).
type wireClient struct {
	host, path string // Host header and request target
	addr       string // host:port to dial
	auth       string // Authorization header value, or ""
	conn       net.Conn
	br         *bufio.Reader
	req        bytes.Buffer
	body       []byte
}

// newWireClient posts to endpoint (an http:// URL) as user:pass (basic).
func newWireClient(endpoint, user, pass string) (*wireClient, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("wire client: want an http:// URL, got %q", endpoint)
	}
	w := &wireClient{host: u.Host, path: u.RequestURI(), addr: u.Host}
	if u.Port() == "" {
		w.addr = net.JoinHostPort(u.Hostname(), "80")
	}
	if user != "" {
		w.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(user)+":"+url.QueryEscape(pass)))
	}
	return w, nil
}

// errRetry: the server closed a kept-alive connection before answering.
var errRetry = errors.New("connection closed")

// post sends form (already encoded) and returns the status and body; the
// body is valid until the next call.
func (w *wireClient) post(form string) (int, []byte, error) {
	status, body, err := w.try(form)
	if errors.Is(err, errRetry) {
		// A kept-alive connection the server closed while idle: once
		// more on a new one, as net/http's Transport does.
		status, body, err = w.try(form)
	}
	return status, body, err
}

func (w *wireClient) try(form string) (int, []byte, error) {
	fresh := false
	if w.conn == nil {
		c, err := net.DialTimeout("tcp", w.addr, 5*time.Second)
		if err != nil {
			return 0, nil, err
		}
		w.conn, fresh = c, true
		if w.br == nil {
			w.br = bufio.NewReaderSize(c, 16<<10)
		} else {
			w.br.Reset(c)
		}
	}
	w.req.Reset()
	w.req.WriteString("POST ")
	w.req.WriteString(w.path)
	w.req.WriteString(" HTTP/1.1\r\nHost: ")
	w.req.WriteString(w.host)
	w.req.WriteString("\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ")
	w.req.WriteString(strconv.Itoa(len(form)))
	if w.auth != "" {
		w.req.WriteString("\r\nAuthorization: ")
		w.req.WriteString(w.auth)
	}
	w.req.WriteString("\r\n\r\n")
	w.req.WriteString(form)
	w.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := w.conn.Write(w.req.Bytes()); err != nil {
		w.close()
		if !fresh {
			return 0, nil, fmt.Errorf("%w: %w", errRetry, err)
		}
		return 0, nil, err
	}
	status, body, keep, err := w.read()
	if err != nil {
		w.close()
		if !fresh && status == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			return 0, nil, fmt.Errorf("%w: %w", errRetry, err)
		}
		return 0, nil, err
	}
	if !keep {
		w.close()
	}
	return status, body, nil
}

// read parses one response: the status line, the headers it needs
// (Content-Length, Transfer-Encoding, Connection) and the body.
func (w *wireClient) read() (status int, body []byte, keep bool, err error) {
	line, err := w.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, false, fmt.Errorf("wire client: bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, fmt.Errorf("wire client: bad status line %q", line)
	}
	length, chunked, keep := -1, false, true
	for {
		h, err := w.br.ReadSlice('\n')
		if err != nil {
			return status, nil, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return status, nil, false, fmt.Errorf("wire client: bad header %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return status, nil, false, fmt.Errorf("wire client: bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		w.body, err = io.ReadAll(httputil.NewChunkedReader(w.br))
		// The chunked reader stops at the last chunk: its trailer (an
		// empty line without trailers) is left to skip.
		if err == nil {
			_, err = w.br.ReadSlice('\n')
		}
	case length >= 0:
		if cap(w.body) < length {
			w.body = make([]byte, length)
		}
		w.body = w.body[:length]
		_, err = io.ReadFull(w.br, w.body)
	default:
		return status, nil, false, errors.New("wire client: response has neither a length nor chunks")
	}
	if err != nil {
		return status, nil, false, err
	}
	return status, w.body, keep, nil
}

func (w *wireClient) close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

// poster posts encoded forms to one endpoint as one client: a wireClient,
// or net/http's client (-client net).
type poster interface {
	post(form string) (status int, body []byte, err error)
}

// netPoster is net/http's client behind poster.
type netPoster struct {
	c          *http.Client
	url        string
	user, pass string
}

func (p *netPoster) post(form string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, p.url, strings.NewReader(form))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p.user != "" {
		req.SetBasicAuth(p.user, p.pass)
	}
	res, err := p.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, body, err
}

// wireLoad is -client: "wire" (the default) or "net".
var wireLoad = true

// poster is a client for one worker posting to the endpoint (a URL) as
// user:pass.
func newPoster(c *http.Client, endpoint, user, pass string) (poster, error) {
	if !wireLoad {
		return &netPoster{c: c, url: endpoint, user: user, pass: pass}, nil
	}
	return newWireClient(endpoint, user, pass)
}

// jsonField is the string value of a top-level field of a JSON object
// from an OAuth server, found without decoding the whole answer (the load
// generator's CPU is taken from the server's). It is for the token
// answers of RFC 6749 §5.1, whose values are base64url and dots: a value
// with an escape in it is not found.
func jsonField(body []byte, name string) string {
	key := `"` + name + `":`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return ""
	}
	rest := bytes.TrimLeft(body[i+len(key):], " ")
	if len(rest) == 0 || rest[0] != '"' {
		return ""
	}
	end := bytes.IndexAny(rest[1:], `"\`)
	if end < 0 || rest[1+end] != '"' {
		return ""
	}
	return string(rest[1 : 1+end])
}
