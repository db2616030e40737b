package s3

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// transportConfig sets up the HTTP transport both drivers use: keep-alive connections for
// every part in flight, no transparent gzip (ranged GETs must return raw bytes), HTTP/1.1
// (one request per connection spreads parts over connections), and the trusted roots.
type transportConfig struct {
	roots *x509.CertPool // nil: the system's
	conns int
}

func (c transportConfig) apply(tr *http.Transport) {
	tr.Proxy = http.ProxyFromEnvironment
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.ForceAttemptHTTP2 = false
	tr.MaxIdleConns = max(c.conns, 16)
	tr.MaxIdleConnsPerHost = max(c.conns, 16)
	tr.IdleConnTimeout = 90 * time.Second
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.ResponseHeaderTimeout = 5 * time.Minute // Complete of a large upload can take a while
	tr.DisableCompression = true
	tr.WriteBufferSize = 64 << 10 // fewer, larger writes per part
	tr.ReadBufferSize = 64 << 10
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	tr.TLSClientConfig.MinVersion = tls.VersionTLS12
	if c.roots != nil {
		tr.TLSClientConfig.RootCAs = c.roots
	}
}

// loadRoots returns the system roots plus the PEM certificates in caFile, or nil (the
// system roots) when caFile is "".
func loadRoots(caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %q holds no PEM certificate", caFile)
	}
	return roots, nil
}
