package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidateValues(t *testing.T) {
	f := func(yml, path, msg string) {
		t.Helper()
		hasProblem(t, yml, noEnv, path, msg)
	}
	s3 := func(kv string) string { return "tiers:\n  - {name: t, type: s3, bucket: bkt, " + kv + "}\n" }
	posix := func(kv string) string { return "tiers:\n  - {name: t, type: posix, path: /t, " + kv + "}\n" }
	src := func(kv string) string { return "sources:\n  - {name: s, layout: rocketmq, path: /s, " + kv + "}\n" }

	f("node: ''\nstate_dir: /x\n", "node", "required")
	f("node: a/b\nstate_dir: /x\n", "node", `"a/b": use 1 to 64 of`)
	f("node: ..\nstate_dir: /x\n", "node", "not . or ..")
	f("node: "+strings.Repeat("n", 65)+"\nstate_dir: /x\n", "node", "use 1 to 64")
	f("node: n\n", "state_dir", "required")
	f("node: n\nstate_dir: var/lib\n", "state_dir", `"var/lib": must be an absolute path`)

	f("memory: {buffer_size: 5000000}\n", "memory.buffer_size", "must be a positive multiple of 4KiB")
	f("memory: {buffer_size: 0}\n", "memory.buffer_size", "must be a positive multiple of 4KiB")
	f("memory: {buffer_pool: 8MiB}\n", "memory.buffer_pool", "8MiB: must hold at least 2 buffers of memory.buffer_size 8MiB, so at least 16MiB")
	f("memory: {buffer_size: 4MiB}\n"+s3(""), "memory.buffer_size", "4MiB: must be at least 5MiB, S3's minimum part size, since tiers[0] is an s3 tier")
	f("memory: {codecs: 0}\n", "memory.codecs", "0: must be 1..64")
	f(posix("compression: lz4"), "tiers[0].compression", `"lz4" is not one of none, zstd`)
	f(posix("encryption: {key_file: keys}"), "tiers[0].encryption.key_file", `"keys": must be an absolute path`)
	f(posix("encryption: {keyfile: /k}"), "tiers[0].encryption.keyfile", "")
	f("workers: 0\n", "workers", "0: must be 1..256")
	f("workers: 257\n", "workers", "257: must be 1..256")
	f("scan_interval: 0s\n", "scan_interval", "0s: must be longer than 0")
	f("scan_interval: never\n", "scan_interval", `"never" is not allowed here`)
	f("shutdown_timeout: never\n", "shutdown_timeout", `"never" is not allowed here`)
	f("retry: {initial: 0s}\n", "retry.initial", "must be longer than 0")
	f("retry: {max: never}\n", "retry.max", `"never" is not allowed`)
	f("retry: {initial: 1h}\n", "retry.initial", "1h is longer than retry.max 5m")

	f("sources: []\n", "sources", "at least one source is required")
	f("sources:\n  - {layout: kafka, path: /k}\n", "sources[0].name", "required")
	f("sources:\n  - {name: a.b, layout: kafka, path: /k}\n", "sources[0].name", `"a.b": use 1 to 64 of A-Z a-z 0-9 _ -`)
	f("sources:\n  - {name: _tierd, layout: kafka, path: /k}\n", "sources[0].name", `"_tierd" is reserved`)
	f("sources:\n  - {name: k, path: /k}\n", "sources[0].layout", "required: one of rocketmq, kafka")
	f("sources:\n  - {name: k, layout: Kafka, path: /k}\n", "sources[0].layout", `"Kafka" is not one of rocketmq, kafka (did you mean "kafka"?)`)
	f("sources:\n  - {name: k, layout: kafka}\n", "sources[0].path", "required")
	f("sources:\n  - {name: k, layout: kafka, path: data}\n", "sources[0].path", "must be an absolute path")
	f("sources:\n  - {name: k, layout: kafka, path: /k, read_mode: mmap}\n", "sources[0].read_mode", `"mmap" is not one of fadvise, direct`)
	f(src("commitlog_file_size: 0"), "sources[0].commitlog_file_size", "0B: must be positive: set the broker's mappedFileSizeCommitLog")
	f(src("commitlog_file_size: 3GiB"), "sources[0].commitlog_file_size", "3GiB: over RocketMQ's limit of 2147483647 bytes")
	f(src("consumequeue_file_size: 0"), "sources[0].consumequeue_file_size", "0: must be positive: set the broker's mappedFileSizeConsumeQueue rounded up to a multiple of 20")
	f(src("consumequeue_file_size: 6000001"), "sources[0].consumequeue_file_size", "6000001: must be a multiple of 20 (the consume-queue entry size): the broker rounds mappedFileSizeConsumeQueue up to one, so set consumequeue_file_size: 6000020")
	f(src("index_hash_slots: 0"), "sources[0].index_hash_slots", "0: must be 1..2147483647")
	f(src("index_items: 200000000"), "sources[0].index_items", "index files would be 4020000040 bytes")

	f("tiers: []\n", "tiers", "at least one tier is required")
	f("tiers:\n  - {name: a, type: posix, path: /a}\n  - {name: a, type: posix, path: /b}\n", "tiers[1].name", `"a" is already the name of tiers[0]`)
	f("tiers:\n  - {name: 'a b', type: posix, path: /a}\n", "tiers[0].name", "use 1 to 64")
	f(posix("offload_after: never"), "tiers[0].offload_after", `"never" is not allowed here`)
	f(posix("retain_for: 0s"), "tiers[0].retain_for", "0s: must be longer than 0")
	f(posix("offload_after: 2h, retain_for: 1h"), "tiers[0].retain_for", "1h is not longer than offload_after 2h")
	f(posix("superseded_retain_for: -1s"), "tiers[0].superseded_retain_for", "negative")
	f(posix("superseded_retain_for: 3"), "tiers[0].superseded_retain_for", "missing unit")
	f(posix("concurrency: 0"), "tiers[0].concurrency", "0: must be 1..256")
	f(posix("max_used: 0%"), "tiers[0].max_used", "0%: must be 1%..100%")
	f(posix("max_used: 101%"), "tiers[0].max_used", "101%: must be 1%..100%")
	f(posix("write_mode: odirect"), "tiers[0].write_mode", `"odirect" is not one of direct, mmap, buffered`)
	f("tiers:\n  - {name: t, type: posix}\n", "tiers[0].path", "required")

	f("tiers:\n  - {name: t, type: s3}\n", "tiers[0].bucket", "required")
	for _, b := range []string{"ab", "Bucket", "my_bucket", "-bkt", "bkt-", "a..b", "192.168.1.1", "xn--bkt", "bkt-s3alias", strings.Repeat("b", 64)} {
		f("tiers:\n  - {name: t, type: s3, bucket: '"+b+"'}\n", "tiers[0].bucket", "is not a valid bucket name")
	}
	f(s3("driver: gcs"), "tiers[0].driver", `"gcs" is not one of aws, minio`)
	f(s3("endpoint: 127.0.0.1:9000"), "tiers[0].endpoint", "must be an http:// or https:// URL")
	f(s3("endpoint: ftp://h"), "tiers[0].endpoint", "must be an http:// or https:// URL")
	f(s3("endpoint: 'http://h:9000/bucket'"), "tiers[0].endpoint", "must be scheme://host[:port] with no path")
	f(s3("endpoint: 'http://u:p@h'"), "tiers[0].endpoint", "no path, user or query")
	f(s3("endpoint: 'http://h?x=1'"), "tiers[0].endpoint", "no path, user or query")
	f(s3("endpoint: 'http://'"), "tiers[0].endpoint", "no path, user or query")
	f(s3("endpoint: 'http://h:0'"), "tiers[0].endpoint", "port must be 1..65535")
	f(s3("region: ''"), "tiers[0].region", "must be a region name")
	f(s3("region: 'us east'"), "tiers[0].region", "must be a region name")
	for _, p := range []string{"/a", "a/", "a//b", "a/../b", "./a", "a\\b"} {
		f(s3("prefix: '"+p+"'"), "tiers[0].prefix", "")
	}
	f(s3("access_key: k"), "tiers[0].secret_key", "required when access_key is set")
	f(s3("secret_key: k"), "tiers[0].access_key", "required when secret_key is set")
	f(s3("session_token: k"), "tiers[0].session_token", "only with access_key and secret_key")
	f(s3("ca_file: /etc/ca.pem"), "tiers[0].ca_file", "only with an https:// endpoint")
	f(s3("endpoint: 'https://h', ca_file: ca.pem"), "tiers[0].ca_file", "must be an absolute path")
	f(s3("endpoint: 'https://h', ca_file: /nonexistent/ca.pem"), "tiers[0].ca_file", "cannot read CA bundle")
	f(s3("sse: aes"), "tiers[0].sse", `"aes" is not one of none, s3, kms`)
	f(s3("sse: kms"), "tiers[0].sse_kms_key_id", "required when sse is kms")
	f(s3("sse_kms_key_id: k"), "tiers[0].sse_kms_key_id", "only when sse is kms")
	f(s3("part_size: 4MiB"), "tiers[0].part_size", "4MiB: must be between 5MiB and 5GiB")
	f(s3("part_size: 6GiB"), "tiers[0].part_size", "must be between 5MiB and 5GiB")
	f(s3("part_size: 128MiB"), "tiers[0].part_size", "128MiB is larger than memory.buffer_pool 64MiB")
	f(s3("part_concurrency: 65"), "tiers[0].part_concurrency", "65: must be 1..64")
	f(s3("reap_after: 30s"), "tiers[0].reap_after", "must be at least 1m")
	f(s3("reap_after: never"), "tiers[0].reap_after", `"never" is not allowed`)
	f(s3("request_timeout: 500ms"), "tiers[0].request_timeout", "must be 1s..1h")
	f(s3("request_timeout: never"), "tiers[0].request_timeout", `"never" is not allowed`)
	f(s3("min_transfer_rate: 1KiB/s"), "tiers[0].min_transfer_rate", "must be at least 16KiB/s")
	f(s3("min_transfer_rate: unlimited"), "tiers[0].min_transfer_rate", "must be at least 16KiB/s")
	f(s3("rate_limit: 4MiB/s"), "tiers[0].min_transfer_rate", "each may get only 512KiB/s")

	f("local: {delete_after: -1s}\n", "local.delete_after", "negative")
	f("http: {listen: ':0'}\n", "http.listen", "port must be 1..65535")
	f("http: {listen: 'h:http'}\n", "http.listen", "port must be 1..65535")
	f("http: {listen: '9464'}\n", "http.listen", "must be host:port")
	f("log: {format: text}\n", "log.format", `"text" is not one of auto, json, console`)
	f("pacing: {disk_busy: 101%}\n", "pacing.disk_busy", "101%: must be 0%..100%")
	f("pacing: {device: /dev/vda}\n", "pacing.device", "not a path")
}

// Directories tierd reads, writes and keeps state in must not contain one another; the
// problem names both.
func TestNesting(t *testing.T) {
	f := func(yml, path, msg string) {
		t.Helper()
		hasProblem(t, yml, noEnv, path, msg)
	}
	f("tiers:\n  - {name: t, type: posix, path: /data/store/tier}\n", "tiers[0].path", `"/data/store/tier" is inside sources[0].path "/data/store"`)
	f("tiers:\n  - {name: t, type: posix, path: /data}\n", "tiers[0].path", `"/data" contains sources[0].path "/data/store"`)
	f("tiers:\n  - {name: t, type: posix, path: /data/store/}\n", "tiers[0].path", `"/data/store" is the same directory as sources[0].path`)
	f("tiers:\n  - {name: t, type: posix, path: /}\n", "tiers[0].path", `"/" contains state_dir "/var/lib/tierd"`)
	f("node: n\nstate_dir: /data/store/.tierd\n", "sources[0].path", `"/data/store" contains state_dir "/data/store/.tierd"`)
	f("sources:\n  - {name: a, layout: kafka, path: /k}\n  - {name: b, layout: kafka, path: /k/../k/sub}\n", "sources[1].path", `"/k/sub" is inside sources[0].path "/k"`)
	f("tiers:\n  - {name: a, type: posix, path: /t}\n  - {name: b, type: posix, path: /t/b}\n", "tiers[1].path", `is inside tiers[0].path "/t"`)
	// Siblings sharing a name prefix do not collide.
	mustParse(t, complete("tiers:\n  - {name: t, type: posix, path: /data/store2}\n"), noEnv)
}

func TestCAFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "ca.pem")
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(good, selfSignedPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tier := func(ca string) string {
		return "tiers:\n  - {name: t, type: s3, bucket: bkt, endpoint: 'https://s3.local:9000', ca_file: '" + ca + "'}\n"
	}
	c := mustParse(t, complete(tier(good)), noEnv)
	if c.Tiers[0].S3.CAFile != good {
		t.Fatal("ca_file lost")
	}
	hasProblem(t, tier(bad), noEnv, "tiers[0].ca_file", "holds no PEM certificate")
	hasProblem(t, tier(dir), noEnv, "tiers[0].ca_file", "cannot read CA bundle")
}

func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tierd test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// Validate works on a Config built in Go: no lines, and the per-type settings must match
// the type.
func TestValidateProgrammatic(t *testing.T) {
	c := mustParse(t, minimal, noEnv)
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate of a parsed config: %v", err)
	}
	c.Workers = 0
	c.Tiers = append(c.Tiers,
		Tier{Name: "x", Type: TierS3, RetainFor: Never, Concurrency: 1, Compression: CompressionNone},
		Tier{Name: "y", Type: TierPosix, RetainFor: Never, Concurrency: 1, Compression: CompressionNone, Posix: &PosixTier{Path: "/y", WriteMode: WriteMmap, MaxUsed: 0.5}, S3: &S3Tier{}},
	)
	c.Sources[0].Layout = LayoutKafka
	err := c.Validate()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Validate = %v", err)
	}
	want := []Problem{
		{Path: "sources[0]", Msg: `rocketmq settings on a source of layout "kafka"`},
		{Path: "tiers[1]", Msg: "type s3 needs its settings (Tier.S3 is nil)"},
		{Path: "tiers[2]", Msg: `s3 settings on a tier of type "posix"`},
		{Path: "workers", Msg: "0: must be 1..256"},
	}
	if !reflect.DeepEqual(e.Problems, want) {
		t.Fatalf("problems:\n%swant:\n%s", list(e.Problems), list(want))
	}
	if got := err.Error(); got != "sources[0]: rocketmq settings on a source of layout \"kafka\"\ntiers[1]: type s3 needs its settings (Tier.S3 is nil)\ntiers[2]: s3 settings on a tier of type \"posix\"\nworkers: 0: must be 1..256" {
		t.Fatalf("Error() = %q", got)
	}
}
