package esdbserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// EventStoreDB serves its HTTP API (AtomPub, persistent subscription
// management for old clients, stats, the admin UI) on the same port as
// gRPC. This server speaks gRPC only; a gRPC server answers an HTTP/1.1
// request with HTTP/2 frames, which an HTTP client reports as a garbled
// response. So every connection is classified by its first bytes: one that
// opens with the HTTP/2 preface goes to gRPC, anything else gets a plain
// HTTP/1.1 answer saying what this server is and what it does not serve.

// h2Preface opens every HTTP/2 connection (RFC 9113 §3.4); gRPC clients
// send it at once when they connect without TLS.
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// sniffTimeout bounds how long a connection may stay silent before its
// first bytes: gRPC clients send the preface at once.
const sniffTimeout = 10 * time.Second

// connMux accepts connections from one listener and hands each to the
// gRPC or the HTTP/1.1 side.
type connMux struct {
	raw        net.Listener
	grpc, http *chanListener
}

func newConnMux(raw net.Listener) *connMux {
	done := make(chan struct{})
	var once sync.Once
	closeAll := func() error {
		var err error
		once.Do(func() { close(done); err = raw.Close() })
		return err
	}
	return &connMux{
		raw:  raw,
		grpc: &chanListener{addr: raw.Addr(), conns: make(chan net.Conn), done: done, close: closeAll},
		http: &chanListener{addr: raw.Addr(), conns: make(chan net.Conn), done: done, close: closeAll},
	}
}

// serve accepts until the listener is closed (by closing either side).
func (m *connMux) serve() {
	for {
		c, err := m.raw.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			_ = m.grpc.Close()
			return
		}
		go m.classify(c)
	}
}

// classify reads the first bytes of c, no more than the HTTP/2 preface,
// and hands c (with those bytes to be read again) to its side.
func (m *connMux) classify(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	buf := make([]byte, len(h2Preface))
	n := 0
	for n < len(buf) {
		k, err := c.Read(buf[n:])
		n += k
		if !bytes.HasPrefix([]byte(h2Preface), buf[:n]) {
			break
		}
		if err != nil {
			c.Close()
			return
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	side := m.grpc
	if n < len(buf) || !bytes.Equal(buf, []byte(h2Preface)) {
		side = m.http
	}
	side.deliver(&replayConn{Conn: c, head: buf[:n]})
}

// chanListener is one side of a connMux.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	close func() error
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes the shared listener: both sides stop accepting.
func (l *chanListener) Close() error { return l.close() }

func (l *chanListener) Addr() net.Addr { return l.addr }

// replayConn returns the bytes read while classifying before reading on.
type replayConn struct {
	net.Conn
	head []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// httpOnlyAnswer answers every HTTP/1.x request: EventStoreDB's HTTP API
// is not served here.
func httpOnlyAnswer(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusNotImplemented)
	fmt.Fprintf(w, "This is Ordo's embedded event store. It speaks EventStoreDB's gRPC protocol only "+
		"(HTTP/2; connect a client to esdb://%s?tls=false).\n"+
		"EventStoreDB's HTTP API is not served here: %s %s is not implemented "+
		"(no AtomPub, no HTTP persistent subscription management, no stats or admin UI). "+
		"The official clients use gRPC for everything this store supports; see \"The embedded event store\" in Ordo's README.\n",
		r.Host, r.Method, r.URL.Path)
}

// newHTTP1Server is the HTTP/1.1 side: short timeouts, one answer.
func newHTTP1Server() *http.Server {
	return &http.Server{
		Handler:           http.HandlerFunc(httpOnlyAnswer),
		ReadHeaderTimeout: sniffTimeout,
		ReadTimeout:       sniffTimeout,
		WriteTimeout:      sniffTimeout,
		IdleTimeout:       sniffTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(io.Discard, "", 0), // malformed requests are the client's problem
	}
}
