package reliability

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// faults says which faults the proxy injects, each with the probability that a request
// it applies to gets it. The zero value forwards everything untouched.
type faults struct {
	slowDown      float64       // any request: 503 SlowDown, not forwarded
	internal      float64       // any request: 500 InternalError, not forwarded
	resetUpload   float64       // a PUT with a body: part of the body read, then the connection reset
	resetDownload float64       // a GET: forwarded, part of the body sent, then the connection cut
	latency       float64       // any request: delayed by latencyOf first
	latencyOf     time.Duration //
	lostCommit    float64       // CompleteMultipartUpload or a whole-object PUT: forwarded (the store commits), the reply dropped
	lostCreate    float64       // CreateMultipartUpload: forwarded (the store creates it), the reply dropped
	staleHead     float64       // a HEAD of an object committed through the proxy less than a second ago: 404
	hang          float64       // any request: held, never forwarded, until the client gives up
	hangLease     bool          // every request for the node's lease object hangs
	hangParts     bool          // every UploadPart hangs
	hangGets      bool          // every GET of a segment object hangs
	down          bool          // the store is unreachable: every connection is closed at once
}

// faultProxy is an HTTP reverse proxy on loopback between tierd and MinIO that injects
// faults. It keeps the Host header, so SigV4 signatures made for the proxy's address hold.
type faultProxy struct {
	t      *testing.T
	target *url.URL
	ln     net.Listener
	srv    *http.Server
	tr     *http.Transport
	URL    string

	mu        sync.Mutex
	f         faults
	rnd       *rand.Rand
	counts    map[string]int       // faulted requests by fault
	requests  int                  // requests seen
	committed map[string]time.Time // object path -> when the proxy saw it committed
	firstHung time.Time            // when the first request was held (zero: none yet)
}

func startFaultProxy(t *testing.T, target string, seed uint64) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{
		t: t, target: u, ln: ln, URL: "http://" + ln.Addr().String(),
		tr:     &http.Transport{MaxIdleConnsPerHost: 64, ResponseHeaderTimeout: 5 * time.Minute},
		rnd:    rand.New(rand.NewPCG(seed, seed^0x5eed)),
		counts: map[string]int{}, committed: map[string]time.Time{},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = p.srv.Shutdown(ctx)
		_ = p.srv.Close()
		p.tr.CloseIdleConnections()
	})
	return p
}

// set replaces the faults injected from now on.
func (p *faultProxy) set(f faults) {
	p.mu.Lock()
	p.f = f
	p.mu.Unlock()
}

// chance draws whether a fault of probability prob happens, and counts it under name.
func (p *faultProxy) chance(prob float64, name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if prob <= 0 || p.rnd.Float64() >= prob {
		return false
	}
	p.counts[name]++
	return true
}

func (p *faultProxy) count(name string) {
	p.mu.Lock()
	p.counts[name]++
	p.mu.Unlock()
}

// faulted returns the faulted requests by fault and the requests seen.
func (p *faultProxy) faulted() (map[string]int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.counts {
		out[k] = v
	}
	return out, p.requests
}

// summary renders faulted() as "name=n ..." sorted, with the total.
func (p *faultProxy) summary() string {
	c, reqs := p.faulted()
	var parts []string
	total := 0
	for k, v := range c {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		total += v
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d of %d requests faulted (%s)", total, reqs, strings.Join(parts, " "))
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	f := p.f
	p.requests++
	p.mu.Unlock()
	q := r.URL.Query()
	isLease := strings.HasSuffix(r.URL.Path, "/_tierd/lease")
	isMarker := strings.Contains(r.URL.Path, "/_tierd/")
	isPart := r.Method == http.MethodPut && q.Has("partNumber")
	isComplete := r.Method == http.MethodPost && q.Has("uploadId")
	isCreate := r.Method == http.MethodPost && q.Has("uploads")
	isPut := r.Method == http.MethodPut && !isPart && r.ContentLength != 0
	switch {
	case f.down:
		p.count("down")
		cut(w)
		return
	case f.hangLease && isLease, f.hangParts && isPart, f.hangGets && r.Method == http.MethodGet && !isMarker && !q.Has("uploads") && !q.Has("list-type"):
		p.count("hung")
		p.hold(r)
		return
	}
	if p.chance(f.hang, "hung") {
		p.hold(r)
		return
	}
	if f.latency > 0 && p.chance(f.latency, "latency") {
		select {
		case <-time.After(f.latencyOf):
		case <-r.Context().Done():
			return
		}
	}
	if p.chance(f.slowDown, "503_slowdown") {
		s3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
		return
	}
	if p.chance(f.internal, "500_internal") {
		s3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	}
	if r.Method == http.MethodHead && !isMarker {
		p.mu.Lock()
		at, ok := p.committed[r.URL.Path]
		p.mu.Unlock()
		if ok && time.Since(at) < time.Second && p.chance(f.staleHead, "stale_head_404") {
			w.WriteHeader(http.StatusNotFound)
			return
		}
	}
	if (isPart || isPut) && (r.ContentLength > 1024 || r.ContentLength < 0) && p.chance(f.resetUpload, "reset_mid_upload") {
		_, _ = io.CopyN(io.Discard, r.Body, max(r.ContentLength/2, 512)) // (aws-chunked bodies have no length)
		cut(w)
		return
	}
	resp, err := p.forward(r)
	if err != nil {
		s3Error(w, http.StatusBadGateway, "BadGateway", err.Error())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 && (isComplete || isPut) && !isLease {
		p.mu.Lock()
		p.committed[r.URL.Path] = time.Now()
		p.mu.Unlock()
	}
	lose := resp.StatusCode/100 == 2 && !isLease &&
		((isComplete || isPut) && p.chance(f.lostCommit, "lost_commit_reply") ||
			isCreate && p.chance(f.lostCreate, "lost_create_reply"))
	if lose {
		_, _ = io.Copy(io.Discard, resp.Body) // the store did it; the client never hears
		cut(w)
		return
	}
	for k, vs := range resp.Header {
		w.Header()[k] = slices.Clone(vs)
	}
	if r.Method == http.MethodGet && resp.StatusCode/100 == 2 && resp.ContentLength > 1024 && p.chance(f.resetDownload, "reset_mid_download") {
		w.WriteHeader(resp.StatusCode)
		_, _ = io.CopyN(w, resp.Body, resp.ContentLength/2)
		w.(http.Flusher).Flush()
		cut(w)
		return
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// forward sends r to the store, Host header kept.
func (p *faultProxy) forward(r *http.Request) (*http.Response, error) {
	u := *p.target
	u.Path, u.RawPath, u.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
	var body io.Reader = r.Body
	if r.ContentLength == 0 {
		body = http.NoBody
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), body)
	if err != nil {
		return nil, err
	}
	out.Header = r.Header.Clone()
	out.Host = r.Host
	out.ContentLength = r.ContentLength
	out.TransferEncoding = r.TransferEncoding
	return p.tr.RoundTrip(out)
}

// hold keeps a request unanswered until its client gives up (or the proxy closes).
func (p *faultProxy) hold(r *http.Request) {
	p.mu.Lock()
	if p.firstHung.IsZero() {
		p.firstHung = time.Now()
	}
	p.mu.Unlock()
	<-r.Context().Done()
}

// cut ends the connection under a request without a reply (the server closes it).
func cut(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset, not a polite close
			}
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>fault-proxy</RequestId></Error>`, code, msg)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", fmt.Sprint(b.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}
