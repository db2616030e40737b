package config

import (
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Validate checks c as Parse does after decoding and returns an *Error listing every
// problem with its field path, or nil. It applies no defaults, and its problems have no
// line (a Config built in Go has none). It reads the filesystem for one thing only: that
// each s3 tier's ca_file is a PEM bundle.
func (c *Config) Validate() error {
	return newError(c.validate(nil))
}

type checker struct {
	lines    map[string]int
	problems []Problem
}

// add records a problem at path; its line is the line of path or of its nearest ancestor
// that has one (a missing key is reported at the mapping that lacks it).
func (ck *checker) add(path, format string, args ...any) {
	line := 0
	if ck.lines != nil {
		for p := path; ; {
			if l, ok := ck.lines[p]; ok {
				line = l
				break
			}
			i := strings.LastIndexAny(p, ".[")
			if i < 0 {
				line = ck.lines[""]
				break
			}
			p = p[:i]
		}
	}
	ck.problems = append(ck.problems, Problem{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

var (
	nodeRE   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	deviceRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
)

// Limits on list lengths, far above any real deployment, that keep validation cheap.
const (
	maxSources = 256
	maxTiers   = 64
)

// markerDir is the name under <prefix>/<node>/ that holds marker objects, so no source may
// use it as its name.
const markerDir = "_tierd"

func (c *Config) validate(lines map[string]int) []Problem {
	ck := &checker{lines: lines}
	ck.enums("", reflect.ValueOf(c).Elem())

	switch {
	case c.Node == "":
		ck.add("node", "required")
	case !nodeRE.MatchString(c.Node) || c.Node == "." || c.Node == "..":
		ck.add("node", "%q: use 1 to 64 of A-Z a-z 0-9 . _ - (it is part of every object key), not . or ..", c.Node)
	}
	ck.absPath("state_dir", c.StateDir)

	m := c.Memory
	bufOK := m.BufferSize > 0 && m.BufferSize%(4*KiB) == 0
	if !bufOK {
		ck.add("memory.buffer_size", "%v: must be a positive multiple of 4KiB (O_DIRECT alignment)", m.BufferSize)
	}
	if bufOK && m.BufferPool < 2*m.BufferSize {
		ck.add("memory.buffer_pool", "%v: must hold at least 2 buffers of memory.buffer_size %v, so at least %v", m.BufferPool, m.BufferSize, 2*m.BufferSize)
	}
	ck.intRange("memory.codecs", m.Codecs, 1, 64)
	ck.intRange("workers", c.Workers, 1, 256)
	ck.duration("scan_interval", c.ScanInterval, false, 1)
	ck.duration("shutdown_timeout", c.ShutdownTimeout, false, 0)
	ck.duration("retry.initial", c.Retry.Initial, false, 1)
	ck.duration("retry.max", c.Retry.Max, false, 1)
	if c.Retry.Initial > c.Retry.Max && !c.Retry.Max.IsNever() {
		ck.add("retry.initial", "%v is longer than retry.max %v", c.Retry.Initial, c.Retry.Max)
	}

	if len(c.Sources) == 0 {
		ck.add("sources", "at least one source is required")
	}
	if len(c.Sources) > maxSources {
		ck.add("sources", "%d sources: at most %d", len(c.Sources), maxSources)
	}
	if len(c.Tiers) > maxTiers {
		ck.add("tiers", "%d tiers: at most %d", len(c.Tiers), maxTiers)
	}
	names := map[string]string{}
	for i := range c.Sources {
		ck.source(fmt.Sprintf("sources[%d]", i), &c.Sources[i], names)
	}
	if len(c.Tiers) == 0 {
		ck.add("tiers", "at least one tier is required")
	}
	names = map[string]string{}
	for i := range c.Tiers {
		ck.tier(fmt.Sprintf("tiers[%d]", i), &c.Tiers[i], c, names)
	}

	for i, t := range c.Tiers {
		if t.Type == TierS3 && bufOK && m.BufferSize < s3MinPartSize {
			ck.add("memory.buffer_size", "%v: must be at least %v, S3's minimum part size, since tiers[%d] is an s3 tier", m.BufferSize, s3MinPartSize, i)
			break
		}
	}
	ck.duration("local.delete_after", c.Local.DeleteAfter, true, 0)
	if c.HTTP.Listen != "" {
		ck.hostPort("http.listen", c.HTTP.Listen)
	}
	if ck.duration("scrub.every", c.Scrub.Every, true, 1) && c.Scrub.Every < Duration(time.Minute) {
		ck.add("scrub.every", "%v: must be at least 1m (or never)", c.Scrub.Every)
	}
	if c.Scrub.Rate < 0 {
		ck.add("scrub.rate", "must not be negative")
	}
	ck.percent("pacing.disk_busy", c.Pacing.DiskBusy, 0, 1)
	if d := c.Pacing.Device; d != "" && !deviceRE.MatchString(d) {
		ck.add("pacing.device", "%q: a block device name as in /proc/diskstats (e.g. vda, nvme0n1), not a path", d)
	}
	if len(c.Sources) <= maxSources && len(c.Tiers) <= maxTiers {
		ck.nesting(c) // quadratic
	}
	return ck.problems
}

func (ck *checker) source(path string, s *Source, names map[string]string) {
	switch {
	case s.Name == "":
		ck.add(path+".name", "required")
	case !nameRE.MatchString(s.Name):
		ck.add(path+".name", "%q: use 1 to 64 of A-Z a-z 0-9 _ -", s.Name)
	case s.Name == markerDir:
		ck.add(path+".name", "%q is reserved: tierd keeps its marker objects under that name", s.Name)
	case names[s.Name] != "":
		ck.add(path+".name", "%q is already the name of %s", s.Name, names[s.Name])
	default:
		names[s.Name] = path
	}
	ck.absPath(path+".path", s.Path)
	ck.duration(path+".seal_grace", s.SealGrace, false, 0)
	switch {
	case s.Layout == LayoutRocketMQ && s.RocketMQ == nil:
		ck.add(path, "layout rocketmq needs its settings (Source.RocketMQ is nil)")
	case s.Layout != LayoutRocketMQ && s.RocketMQ != nil:
		ck.add(path, "rocketmq settings on a source of layout %q", s.Layout)
	case s.RocketMQ != nil:
		r := s.RocketMQ
		switch {
		case r.CommitLogFileSize <= 0:
			ck.add(path+".commitlog_file_size", "%v: must be positive: set the broker's mappedFileSizeCommitLog (default 1GiB; commit-log files are named by offset, so it is the gap between two names)", r.CommitLogFileSize)
		case r.CommitLogFileSize > rocketMQIndexMax:
			ck.add(path+".commitlog_file_size", "%v: over RocketMQ's limit of %d bytes (mappedFileSizeCommitLog is a Java int): set the broker's mappedFileSizeCommitLog", r.CommitLogFileSize, rocketMQIndexMax)
		}
		switch cq := int64(r.ConsumeQueueFileSize); {
		case cq <= 0:
			ck.add(path+".consumequeue_file_size", "%d: must be positive: set the broker's mappedFileSizeConsumeQueue rounded up to a multiple of 20 (default 6000000: 300,000 entries of 20 bytes)", cq)
		case cq%20 != 0:
			ck.add(path+".consumequeue_file_size", "%d: must be a multiple of 20 (the consume-queue entry size): the broker rounds mappedFileSizeConsumeQueue up to one, so set consumequeue_file_size: %d", cq, (cq+19)/20*20)
		case cq > rocketMQIndexMax:
			ck.add(path+".consumequeue_file_size", "%d: over RocketMQ's limit of %d bytes (mappedFileSizeConsumeQueue is a Java int)", cq, rocketMQIndexMax)
		}
		slotsOK := ck.intRange(path+".index_hash_slots", r.IndexHashSlots, 1, rocketMQIndexMax)
		itemsOK := ck.intRange(path+".index_items", r.IndexItems, 1, rocketMQIndexMax)
		if size := 40 + 4*int64(r.IndexHashSlots) + 20*int64(r.IndexItems); slotsOK && itemsOK && size > rocketMQIndexMax {
			ck.add(path+".index_items", "index files would be %d bytes (40 + 4 x index_hash_slots + 20 x index_items), over RocketMQ's limit of %d", size, rocketMQIndexMax)
		}
	}
}

// rocketMQIndexMax is the largest RocketMQ file: sizes and counts are Java ints.
const rocketMQIndexMax = 1<<31 - 1

func (ck *checker) tier(path string, t *Tier, c *Config, names map[string]string) {
	switch {
	case t.Name == "":
		ck.add(path+".name", "required")
	case !nameRE.MatchString(t.Name):
		ck.add(path+".name", "%q: use 1 to 64 of A-Z a-z 0-9 _ -", t.Name)
	case names[t.Name] != "":
		ck.add(path+".name", "%q is already the name of %s", t.Name, names[t.Name])
	default:
		names[t.Name] = path
	}
	ck.duration(path+".offload_after", t.OffloadAfter, false, 0)
	if ck.duration(path+".retain_for", t.RetainFor, true, 1) && !t.RetainFor.IsNever() && t.RetainFor <= t.OffloadAfter {
		ck.add(path+".retain_for", "%v is not longer than offload_after %v: segments would be deleted as soon as they arrive", t.RetainFor, t.OffloadAfter)
	}
	ck.duration(path+".superseded_retain_for", t.SupersededRetainFor, true, 0)
	if t.MaxBytes < 0 {
		ck.add(path+".max_bytes", "must not be negative")
	}
	if t.RateLimit < 0 {
		ck.add(path+".rate_limit", "must not be negative")
	}
	ck.intRange(path+".concurrency", t.Concurrency, 1, 256)
	if t.Encryption.KeyFile != "" {
		ck.absPath(path+".encryption.key_file", t.Encryption.KeyFile)
	}

	if t.Type != TierPosix && t.Posix != nil {
		ck.add(path, "posix settings on a tier of type %q", t.Type)
	}
	if t.Type != TierS3 && t.S3 != nil {
		ck.add(path, "s3 settings on a tier of type %q", t.Type)
	}
	switch t.Type {
	case TierPosix:
		if t.Posix == nil {
			ck.add(path, "type posix needs its settings (Tier.Posix is nil)")
			return
		}
		ck.absPath(path+".path", t.Posix.Path)
		ck.percent(path+".max_used", t.Posix.MaxUsed, 0.01, 1)
	case TierS3:
		if t.S3 == nil {
			ck.add(path, "type s3 needs its settings (Tier.S3 is nil)")
			return
		}
		ck.s3(path, t, t.S3, c)
	}
}

func (ck *checker) s3(path string, t *Tier, s *S3Tier, c *Config) {
	https := false
	if s.Endpoint != "" {
		https = ck.endpoint(path+".endpoint", s.Endpoint)
	}
	if s.Region == "" || strings.ContainsFunc(s.Region, func(r rune) bool { return r <= ' ' || r == '/' }) {
		ck.add(path+".region", "%q: must be a region name such as us-east-1", s.Region)
	}
	switch b := s.Bucket; {
	case b == "":
		ck.add(path+".bucket", "required")
	case !bucketRE.MatchString(b) || strings.Contains(b, "..") || net.ParseIP(b) != nil ||
		strings.HasPrefix(b, "xn--") || strings.HasPrefix(b, "sthree-") ||
		strings.HasSuffix(b, "-s3alias") || strings.HasSuffix(b, "--ol-s3"):
		ck.add(path+".bucket", "%q is not a valid bucket name: 3 to 63 of a-z 0-9 . -, starting and ending with a letter or digit, not an IP address", b)
	}
	if why := badPrefix(s.Prefix); why != "" {
		ck.add(path+".prefix", "%q: %s", s.Prefix, why)
	}
	if s.AccessKey.IsSet() != s.SecretKey.IsSet() {
		if s.AccessKey.IsSet() {
			ck.add(path+".secret_key", "required when access_key is set")
		} else {
			ck.add(path+".access_key", "required when secret_key is set")
		}
	}
	if s.SessionToken.IsSet() && !s.AccessKey.IsSet() {
		ck.add(path+".session_token", "only with access_key and secret_key")
	}
	if s.CAFile != "" {
		if !https {
			ck.add(path+".ca_file", "only with an https:// endpoint")
		}
		if ck.absPath(path+".ca_file", s.CAFile) {
			if err := checkPEM(s.CAFile); err != nil {
				ck.add(path+".ca_file", "%v", err)
			}
		}
	}
	switch {
	case s.SSE == SSEKMS && s.SSEKMSKeyID == "":
		ck.add(path+".sse_kms_key_id", "required when sse is kms")
	case s.SSE != SSEKMS && s.SSEKMSKeyID != "":
		ck.add(path+".sse_kms_key_id", "only when sse is kms")
	}
	switch {
	case s.PartSize == c.Memory.BufferSize && s.PartSize < s3MinPartSize:
		// The default part size, too small: reported once, at memory.buffer_size.
	case s.PartSize < s3MinPartSize || s.PartSize > s3MaxPartSize:
		ck.add(path+".part_size", "%v: must be between %v and %v (S3's part size limits)", s.PartSize, s3MinPartSize, s3MaxPartSize)
	case s.PartSize > c.Memory.BufferPool:
		ck.add(path+".part_size", "%v is larger than memory.buffer_pool %v", s.PartSize, c.Memory.BufferPool)
	}
	ck.intRange(path+".part_concurrency", s.PartConcurrency, 1, 64)
	if ck.duration(path+".reap_after", s.ReapAfter, false, 1) && s.ReapAfter < Duration(time.Minute) {
		ck.add(path+".reap_after", "%v: must be at least 1m; keep it well above the longest upload, whose parts it would abort", s.ReapAfter)
	}
	if ck.duration(path+".request_timeout", s.RequestTimeout, false, 1) && (s.RequestTimeout < Duration(time.Second) || s.RequestTimeout > Duration(time.Hour)) {
		ck.add(path+".request_timeout", "%v: must be 1s..1h (the deadline of one request to the store)", s.RequestTimeout)
	}
	switch {
	case s.MinTransferRate < 16<<10:
		ck.add(path+".min_transfer_rate", "%v: must be at least 16KiB/s", s.MinTransferRate)
	case !t.RateLimit.IsUnlimited() && int64(s.MinTransferRate)*int64(max(t.Concurrency, 1))*int64(max(s.PartConcurrency, 1)) > int64(t.RateLimit):
		ck.add(path+".min_transfer_rate", "%v: with rate_limit %v shared by concurrency × part_concurrency = %d transfers, each may get only %v: "+
			"set min_transfer_rate at most that, or transfers would miss their deadline", s.MinTransferRate, t.RateLimit,
			max(t.Concurrency, 1)*max(s.PartConcurrency, 1), Rate(int64(t.RateLimit)/int64(max(t.Concurrency, 1)*max(s.PartConcurrency, 1))))
	}
}

// endpoint checks an S3 endpoint URL and reports whether it is https.
func (ck *checker) endpoint(path, s string) bool {
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https"):
		ck.add(path, "%q: must be an http:// or https:// URL", s)
		return false
	case u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		ck.add(path, "%q: must be scheme://host[:port] with no path, user or query", s)
	case u.Port() != "":
		if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
			ck.add(path, "%q: port must be 1..65535", s)
		}
	}
	return u.Scheme == "https"
}

// badPrefix says why p cannot prefix object keys, or "".
func badPrefix(p string) string {
	if p == "" {
		return ""
	}
	switch {
	case len(p) > 512:
		return "longer than 512 bytes"
	case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/"):
		return "no leading or trailing slash"
	case strings.ContainsAny(p, "\x00\\") || !utf8.ValidString(p):
		return "must be UTF-8 without NUL or backslash"
	}
	for c := range strings.SplitSeq(p, "/") {
		if c == "" || c == "." || c == ".." {
			return "no empty, . or .. path components"
		}
	}
	return ""
}

func checkPEM(path string) error {
	// Stat first: opening a FIFO named by mistake would block.
	if fi, err := os.Stat(path); err != nil {
		return fmt.Errorf("cannot read CA bundle: %w", err)
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("cannot read CA bundle: %s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read CA bundle: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4<<20))
	if err != nil {
		return fmt.Errorf("cannot read CA bundle: %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	return nil
}

// absPath checks that a required path is set and absolute, and reports whether it is.
func (ck *checker) absPath(path, p string) bool {
	switch {
	case p == "":
		ck.add(path, "required")
	case !filepath.IsAbs(p):
		ck.add(path, "%q: must be an absolute path", p)
	case strings.ContainsRune(p, 0):
		ck.add(path, "must not contain NUL")
	default:
		return true
	}
	return false
}

func (ck *checker) intRange(path string, v, lo, hi int) bool {
	if v < lo || v > hi {
		ck.add(path, "%d: must be %d..%d", v, lo, hi)
		return false
	}
	return true
}

// duration checks d >= lo, and that it is not never unless allowed; it reports whether
// d passed.
func (ck *checker) duration(path string, d Duration, neverOK bool, lo Duration) bool {
	switch {
	case d.IsNever() && !neverOK:
		ck.add(path, `"never" is not allowed here`)
	case d.IsNever():
	case d < lo && lo == 0:
		ck.add(path, "must not be negative")
	case d < lo:
		ck.add(path, "%v: must be longer than 0", d)
	default:
		return true
	}
	return false
}

func (ck *checker) percent(path string, p, lo, hi Percent) {
	if p < lo || p > hi || p != p {
		ck.add(path, "%v: must be %v..%v", p, lo, hi)
	}
}

func (ck *checker) hostPort(path, s string) {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		ck.add(path, "%q: must be host:port, e.g. 127.0.0.1:9464 or :9464", s)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		ck.add(path, "%q: port must be 1..65535", s)
	}
}

// enums checks every field tagged oneof, anywhere in v.
func (ck *checker) enums(path string, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			ck.enums(path, v.Elem())
		}
	case reflect.Slice:
		for i := range v.Len() {
			ck.enums(fmt.Sprintf("%s[%d]", path, i), v.Index(i))
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			key := f.Tag.Get("yaml")
			if !f.IsExported() || key == "" {
				continue
			}
			p := path
			if key != ",inline" {
				p = join(path, key)
			}
			if disc, value, ok := strings.Cut(f.Tag.Get("when"), "="); ok && discValue(v, &variant{disc: disc}) != value {
				continue // settings of another type: reported as such
			}
			oneof := f.Tag.Get("oneof")
			if oneof == "" {
				ck.enums(p, v.Field(i))
				continue
			}
			allowed := strings.Split(oneof, "|")
			s := v.Field(i).String()
			switch {
			case s == "":
				ck.add(p, "required: one of %s", strings.Join(allowed, ", "))
			case !contains(allowed, s):
				ck.add(p, "%q is not one of %s%s", truncate(s, 40), strings.Join(allowed, ", "), suggest(s, allowed))
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// nesting reports directories that contain one another: a tier inside a broker directory
// would be scanned as broker data, a broker directory inside a tier would be listed as
// tier data, and state_dir must be neither.
func (ck *checker) nesting(c *Config) {
	type dir struct{ path, p string }
	var dirs []dir
	add := func(path, p string) {
		if filepath.IsAbs(p) {
			dirs = append(dirs, dir{path, filepath.Clean(p)})
		}
	}
	add("state_dir", c.StateDir)
	for i, s := range c.Sources {
		add(fmt.Sprintf("sources[%d].path", i), s.Path)
	}
	for i, t := range c.Tiers {
		if t.Type == TierPosix && t.Posix != nil {
			add(fmt.Sprintf("tiers[%d].path", i), t.Posix.Path)
		}
	}
	for i, a := range dirs {
		for _, b := range dirs[:i] {
			switch {
			case a.p == b.p:
				ck.add(a.path, "%q is the same directory as %s%s", a.p, b.path, nestingWhy)
			case within(a.p, b.p):
				ck.add(a.path, "%q is inside %s %q%s", a.p, b.path, b.p, nestingWhy)
			case within(b.p, a.p):
				ck.add(a.path, "%q contains %s %q%s", a.p, b.path, b.p, nestingWhy)
			}
		}
	}
}

const nestingWhy = "; sources, tiers and state_dir must not overlap"

// within reports whether clean absolute path a is strictly below b.
func within(a, b string) bool {
	if b == "/" {
		return a != "/"
	}
	return strings.HasPrefix(a, b+"/")
}
