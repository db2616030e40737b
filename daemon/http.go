package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Handler serves /healthz (the process answers), /readyz (200 once recovered, while no
// tier is failing and every source can be scanned; 503 with the reasons otherwise),
// /status (Status as JSON), /catalog (every catalog record, as JSON lines; what `tierd ls`
// reads while the daemon holds the catalog) and /metrics (Prometheus).
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		st := d.Status()
		if !st.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			for _, reason := range st.Reasons {
				fmt.Fprintln(w, reason)
			}
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(d.Status())
	})
	mux.HandleFunc("GET /catalog", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		if err := d.cfg.Catalog.Dump(w); err != nil {
			d.log.Error("serve catalog", zap.Error(err))
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.m.reg, promhttp.HandlerOpts{}))
	return mux
}

// serveHTTP starts the HTTP server on cfg.Listen (none if empty) and returns its stop.
func (d *Daemon) serveHTTP() (stop func(), err error) {
	if d.cfg.Listen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", d.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (http.listen): %w", d.cfg.Listen, err)
	}
	d.mu.Lock()
	d.httpAddr = ln.Addr().String()
	d.mu.Unlock()
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second}
	d.log.Info("serving status and metrics", zap.String("addr", ln.Addr().String()))
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http server", zap.Error(err))
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// Addr returns the address the HTTP server listens on ("" before Run starts it).
func (d *Daemon) Addr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.httpAddr
}
