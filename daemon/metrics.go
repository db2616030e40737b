package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/internal/buildinfo"
)

// metrics are the daemon's Prometheus series, registered on their own registry.
type metrics struct {
	reg        *prometheus.Registry
	collectors []prometheus.Collector // every collector registered on reg

	offloadedBytes    *prometheus.CounterVec
	offloadedSegments *prometheus.CounterVec
	errors            *prometheus.CounterVec
	retries           *prometheus.CounterVec
	inFlight          *prometheus.GaugeVec
	tierUsed          *prometheus.GaugeVec
	tierPaused        *prometheus.GaugeVec
	sealed            *prometheus.GaugeVec
	skippedFiles      *prometheus.GaugeVec
	scanSeconds       prometheus.Histogram
	deletedLocal      *prometheus.CounterVec
	expired           *prometheus.CounterVec
	recoveryPending   prometheus.Gauge
	scrub             *prometheus.CounterVec
	scanErrors        *prometheus.CounterVec
	scanFailing       *prometheus.GaugeVec
}

// scrubOutcomes are the values of tierd_scrub_objects_total's outcome label.
var scrubOutcomes = []string{"checked", "unreadable", "marker_rewritten", "repaired", "no_good_copy"}

// expiredWhy are the values of tierd_expired_objects_total's why label.
var expiredWhy = []string{"retain_for", "max_bytes"}

func newMetrics(d *Daemon, pool *bufpool.Pool) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) {
		m.reg.MustRegister(c)
		m.collectors = append(m.collectors, c)
	}
	m.offloadedBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tierd_offloaded_bytes_total", Help: "Bytes of segments offloaded to a tier (as stored on the tier)."}, []string{"tier"})
	m.offloadedSegments = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tierd_offloaded_segments_total", Help: "Segments offloaded to a tier."}, []string{"tier"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tierd_offload_errors_total", Help: "Offload attempts that failed."}, []string{"tier"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tierd_offload_retries_total", Help: "Offload attempts that were retries."}, []string{"tier"})
	m.inFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tierd_jobs_in_flight", Help: "Offload jobs running now."}, []string{"tier"})
	m.tierUsed = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tierd_tier_used_ratio", Help: "Used fraction of a posix tier's filesystem."}, []string{"tier"})
	m.tierPaused = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tierd_tier_paused", Help: "1 while a tier is paused because its filesystem is fuller than max_used (an alarm)."}, []string{"tier"})
	m.sealed = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tierd_sealed_segments", Help: "Sealed segments found in a source by the last scan."}, []string{"source"})
	m.skippedFiles = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tierd_skipped_files", Help: "Files in a source skipped by the last scan as foreign or corrupt."}, []string{"source"})
	m.scanSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tierd_scan_duration_seconds", Help: "Time to scan all sources.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)})
	m.deletedLocal = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tierd_local_deleted_segments_total", Help: "Local segments deleted by the local delete policy."}, []string{"source"})
	m.expired = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tierd_expired_objects_total", Help: "Objects deleted from a tier by retention (why: retain_for or max_bytes)."}, []string{"tier", "why"})
	m.recoveryPending = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tierd_recovery_pending", Help: "Interrupted jobs of the previous run not settled yet, plus tiers not reconciled yet after a crash (their store could not be reached, or their lease was not ours)."})
	m.scanErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tierd_scan_errors_total", Help: "Scans of a source that failed (the source's directory could not be read or listed)."}, []string{"source"})
	m.scanFailing = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tierd_source_scan_failing", Help: "1 while the last scan of a source failed."}, []string{"source"})
	build := buildinfo.Get()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{Name: "tierd_build_info", Help: "Always 1; the labels say which build of tierd runs.",
		ConstLabels: prometheus.Labels{"version": build.Version, "commit": build.CommitLabel(), "go_version": build.GoVersion}})
	buildInfo.Set(1)
	m.scrub = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tierd_scrub_objects_total", Help: "Objects the periodic scrub looked at, by outcome: checked, unreadable, marker_rewritten, repaired (bad bytes removed, offloaded again), no_good_copy (bad bytes and no good copy left: an alarm)."}, []string{"tier", "outcome"})
	for _, c := range []prometheus.Collector{m.scrub, m.recoveryPending, m.expired, m.offloadedBytes, m.offloadedSegments, m.errors, m.retries, m.inFlight, m.tierUsed, m.tierPaused, m.sealed, m.skippedFiles, m.scanSeconds, m.deletedLocal, m.scanErrors, m.scanFailing, buildInfo} {
		f(c)
	}
	f(poolCollector{pool})
	f(tierCollector{d})
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// initSeries creates every labelled series at 0 for the configured tiers and sources, so
// that a counter exists (and an alert on its rate or increase works) before its first
// event, and a dashboard shows 0 rather than no data.
func (m *metrics) initSeries(tiers []*tierState, sources []string) {
	for _, t := range tiers {
		for _, v := range []*prometheus.CounterVec{m.offloadedBytes, m.offloadedSegments, m.errors, m.retries} {
			v.WithLabelValues(t.Name)
		}
		for _, v := range []*prometheus.GaugeVec{m.inFlight, m.tierPaused} {
			v.WithLabelValues(t.Name)
		}
		if t.Usage != nil {
			m.tierUsed.WithLabelValues(t.Name)
		}
		for _, outcome := range scrubOutcomes {
			m.scrub.WithLabelValues(t.Name, outcome)
		}
		for _, why := range expiredWhy {
			m.expired.WithLabelValues(t.Name, why)
		}
	}
	for _, s := range sources {
		m.deletedLocal.WithLabelValues(s)
		m.scanErrors.WithLabelValues(s)
		m.scanFailing.WithLabelValues(s)
		m.sealed.WithLabelValues(s)
		m.skippedFiles.WithLabelValues(s)
	}
}

// tierCollector exports each tier's state at scrape time, so that what it shows moves
// whatever the tier's state (failing, fenced, or with no job finishing for a while): the
// lag is the age of the oldest due segment at the last plan, measured now.
type tierCollector struct{ d *Daemon }

var (
	tierOldestPending = prometheus.NewDesc("tierd_oldest_pending_seconds", "Age of the oldest sealed segment that is due on a tier and not there yet: the data at risk if the broker's disk fails.", []string{"tier"}, nil)
	tierPending       = prometheus.NewDesc("tierd_pending_segments", "Sealed segments due on a tier and not there yet.", []string{"tier"}, nil)
	tierFailing       = prometheus.NewDesc("tierd_tier_failing", "1 while a tier is failing: its last job failed (an error or a request past its deadline), or its store cannot be asked for the node's lease.", []string{"tier"}, nil)
	tierOverdue       = prometheus.NewDesc("tierd_overdue_seconds", "How late a tier is: the age of its oldest due segment past the tier's offload_after (0 when nothing is due). tierd_oldest_pending_seconds includes offload_after; this does not.", []string{"tier"}, nil)
	tierFenced        = prometheus.NewDesc("tierd_tier_fenced", "1 while a tier is not offloaded to because the node's lease on it is not known to be ours (another installation holds it, or it expired unrenewed).", []string{"tier"}, nil)
)

func (c tierCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tierOldestPending
	ch <- tierPending
	ch <- tierFailing
	ch <- tierFenced
	ch <- tierOverdue
}

func (c tierCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.d.cfg.Now()
	for _, t := range c.d.tiers {
		fenced := t.fenced(now)
		t.mu.Lock()
		lag, overdue := 0.0, 0.0
		if !t.oldestDue.IsZero() {
			lag = max(now.Sub(t.oldestDue).Seconds(), 0)
			overdue = max(now.Sub(t.oldestDue.Add(t.OffloadAfter)).Seconds(), 0)
		}
		due := t.due
		failing := t.failing || (t.fence.err != nil && !t.fence.held)
		t.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(tierOldestPending, prometheus.GaugeValue, lag, t.Name)
		ch <- prometheus.MustNewConstMetric(tierPending, prometheus.GaugeValue, float64(due), t.Name)
		ch <- prometheus.MustNewConstMetric(tierFailing, prometheus.GaugeValue, b2f(failing), t.Name)
		ch <- prometheus.MustNewConstMetric(tierFenced, prometheus.GaugeValue, b2f(fenced), t.Name)
		ch <- prometheus.MustNewConstMetric(tierOverdue, prometheus.GaugeValue, overdue, t.Name)
	}
}

// poolCollector exports the buffer pool's counters at scrape time.
type poolCollector struct{ p *bufpool.Pool }

var (
	poolInUse    = prometheus.NewDesc("tierd_pool_buffers_in_use", "Pool buffers handed out now.", nil, nil)
	poolCapacity = prometheus.NewDesc("tierd_pool_buffers", "Pool buffers in all (the budget).", nil, nil)
	poolBufBytes = prometheus.NewDesc("tierd_pool_buffer_bytes", "Size of one pool buffer.", nil, nil)
	poolWaits    = prometheus.NewDesc("tierd_pool_waits_total", "Buffer requests that had to wait for a free buffer.", nil, nil)
	poolWaitSecs = prometheus.NewDesc("tierd_pool_wait_seconds_total", "Time spent waiting for pool buffers.", nil, nil)
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolInUse
	ch <- poolCapacity
	ch <- poolBufBytes
	ch <- poolWaits
	ch <- poolWaitSecs
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Stats()
	ch <- prometheus.MustNewConstMetric(poolInUse, prometheus.GaugeValue, float64(s.InUse))
	ch <- prometheus.MustNewConstMetric(poolCapacity, prometheus.GaugeValue, float64(s.Capacity))
	ch <- prometheus.MustNewConstMetric(poolBufBytes, prometheus.GaugeValue, float64(s.BufferSize))
	ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(s.Waits))
	ch <- prometheus.MustNewConstMetric(poolWaitSecs, prometheus.CounterValue, s.WaitTime.Seconds())
}
