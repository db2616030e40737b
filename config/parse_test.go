package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest valid config: only required keys.
const minimal = `
node: n1
state_dir: /var/lib/tierd
sources:
  - {name: rmq, layout: rocketmq, path: /data/store}
tiers:
  - {name: hdd, type: posix, path: /mnt/hdd}
`

func noEnv(string) (string, bool) { return "", false }

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func mustParse(t *testing.T, yml string, env func(string) (string, bool)) *Config {
	t.Helper()
	c, err := Parse([]byte(yml), env)
	if err != nil {
		t.Fatalf("Parse:\n%v\n--- input:\n%s", err, yml)
	}
	return c
}

// problems parses yml and returns its problems; it fails the test when there are none.
func problems(t *testing.T, yml string, env func(string) (string, bool)) []Problem {
	t.Helper()
	c, err := Parse([]byte(yml), env)
	var e *Error
	if !errors.As(err, &e) || c != nil {
		t.Fatalf("Parse = %v, %v; want a nil config and *Error\n--- input:\n%s", c, err, yml)
	}
	return e.Problems
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, minimal+`
  - {name: s3, type: s3, bucket: bkt}
  - {name: minio, type: s3, bucket: bkt, endpoint: "http://127.0.0.1:9000"}
`, noEnv)
	yes, no := true, false
	want := &Config{
		Node:            "n1",
		StateDir:        "/var/lib/tierd",
		Memory:          Memory{BufferPool: 64 * MiB, BufferSize: 8 * MiB, Codecs: 2},
		Workers:         4,
		ScanInterval:    Duration(30 * time.Second),
		ShutdownTimeout: Duration(30 * time.Second),
		Retry:           Retry{Initial: Duration(time.Second), Max: Duration(5 * time.Minute)},
		Sources: []Source{{
			Name: "rmq", Layout: LayoutRocketMQ, Path: "/data/store",
			SealGrace: Duration(30 * time.Second), ReadMode: ReadFadvise,
			RocketMQ: &RocketMQSource{
				CommitLogFileSize: GiB, ConsumeQueueFileSize: 6_000_000,
				IndexHashSlots: 5_000_000, IndexItems: 20_000_000,
			},
		}},
		Tiers: []Tier{
			{
				Name: "hdd", Type: TierPosix, RetainFor: Never, SupersededRetainFor: DefaultSupersededRetainFor, Concurrency: 2, Compression: CompressionNone,
				Posix: &PosixTier{Path: "/mnt/hdd", WriteMode: WriteDirect, MaxUsed: 0.9},
			},
			{
				Name: "s3", Type: TierS3, RetainFor: Never, SupersededRetainFor: DefaultSupersededRetainFor, Concurrency: 2, Compression: CompressionNone,
				S3: &S3Tier{
					Driver: DriverAWS, Region: "us-east-1", Bucket: "bkt", PathStyle: &no, SSE: SSENone,
					PartSize: 8 * MiB, PartConcurrency: 4, ReapAfter: Duration(24 * time.Hour), RequestTimeout: Duration(30 * time.Second), MinTransferRate: 1 << 20,
				},
			},
			{
				Name: "minio", Type: TierS3, RetainFor: Never, SupersededRetainFor: DefaultSupersededRetainFor, Concurrency: 2, Compression: CompressionNone,
				S3: &S3Tier{
					Driver: DriverAWS, Endpoint: "http://127.0.0.1:9000", Region: "us-east-1", Bucket: "bkt",
					PathStyle: &yes, SSE: SSENone,
					PartSize: 8 * MiB, PartConcurrency: 4, ReapAfter: Duration(24 * time.Hour), RequestTimeout: Duration(30 * time.Second), MinTransferRate: 1 << 20,
				},
			},
		},
		Local:  Local{DeleteAfter: Never},
		HTTP:   HTTP{Listen: "127.0.0.1:9464"},
		Log:    Log{Level: "info", Format: "auto"},
		Pacing: Pacing{},
		Scrub:  Scrub{Every: Never, Rate: Rate(10 * MiB)},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults:\n got %s\nwant %s", jsonOf(t, c), jsonOf(t, want))
	}
	if !c.Tiers[2].S3.UsePathStyle() || c.Tiers[1].S3.UsePathStyle() {
		t.Fatal("UsePathStyle")
	}
	if c.Source("rmq") != &c.Sources[0] || c.Tier("minio") != &c.Tiers[2] || c.Tier("nope") != nil || c.Source("nope") != nil {
		t.Fatal("Source/Tier lookup")
	}
}

// Explicit values win over defaults, including the zero values that differ from them.
func TestExplicitZeroes(t *testing.T) {
	c := mustParse(t, `
node: n1
state_dir: /var/lib/tierd
shutdown_timeout: 0s
http: {listen: ""}
sources:
  - {name: rmq, layout: rocketmq, path: /data/store, seal_grace: 0s}
tiers:
  - {name: s3, type: s3, bucket: bkt, endpoint: "http://h:9000", path_style: false, part_size: 16MiB, superseded_retain_for: 0s}
local: {delete_after: 0s}
`, noEnv)
	s := c.Tiers[0].S3
	if c.ShutdownTimeout != 0 || c.Tiers[0].SupersededRetainFor != 0 || c.Local.DeleteAfter.IsNever() || c.HTTP.Listen != "" || c.Sources[0].SealGrace != 0 || c.Local.DeleteAfter != 0 ||
		*s.PathStyle || s.UsePathStyle() || s.PartSize != 16*MiB {
		t.Fatalf("explicit values lost: %s", jsonOf(t, c))
	}
}

// An empty value means the default, also for a whole section.
func TestNullIsDefault(t *testing.T) {
	c := mustParse(t, minimal+`
memory:
  # buffer_pool: 128MiB
retry: ~
workers:
log: {level: }
`, noEnv)
	if c.Memory.BufferPool != 64*MiB || c.Workers != 4 || c.Retry.Max != Duration(5*time.Minute) || c.Log.Level != "info" {
		t.Fatalf("defaults not kept: %s", jsonOf(t, c))
	}
}

// One document with many different mistakes: every one is reported, with its path and
// line, in one error, sorted by line.
func TestEveryProblemReported(t *testing.T) {
	const yml = `node: broker-a
state_dir: /var/lib/tierd
memory:
  buffer_pool: 64 MiBs
  buffer_size: 8MiB
workers: four
sources:
  - name: rmq
    layout: rocketmq
    path: /data/store
    seal_grace: never
  - name: rmq
    layout: kafak
    path: /data/kafka
tiers:
  - name: hdd
    type: posix
    path: /data/store/tier
    bucket: tier
  - name: cold
    type: s3
    bukket: tier
    region: us-east-1
    region: eu-west-1
    access_key: ${TIERD_S3_ACCESS_KEY}
    sse: kms
    part_concurrency: [4]
  - type: posix
retry: {initial: 10m, max: 5m}
http: {listen: "localhost"}
`
	got := problems(t, yml, noEnv)
	want := []Problem{
		{"memory.buffer_pool", 4, `"64 MiBs" is not a size (e.g. 4096, 512KiB, 64MiB, 1.5GiB, 10MB): unknown unit "MiBs"`},
		{"workers", 6, `"four" is not an integer`},
		{"sources[0].seal_grace", 11, `"never" is not allowed here`},
		{"sources[1].name", 12, `"rmq" is already the name of sources[0]`},
		{"sources[1].layout", 13, `"kafak" is not one of rocketmq, kafka (did you mean "kafka"?)`},
		{"tiers[0].path", 18, `"/data/store/tier" is inside sources[0].path "/data/store"; sources, tiers and state_dir must not overlap`},
		{"tiers[0].bucket", 19, "only for type s3"},
		{"tiers[1].bucket", 20, "required"},
		{"tiers[1].sse_kms_key_id", 20, "required when sse is kms"},
		{"tiers[1].bukket", 22, `unknown key (did you mean "bucket"?)`},
		{"tiers[1].region", 24, "duplicate key (first at line 23)"},
		{"tiers[1].access_key", 25, "environment variable TIERD_S3_ACCESS_KEY is not set (use ${TIERD_S3_ACCESS_KEY:-default} for a default)"},
		{"tiers[1].part_concurrency", 27, "expected an integer, got a list"},
		{"tiers[2].name", 28, "required"},
		{"tiers[2].path", 28, "required"},
		{"retry.initial", 29, "10m is longer than retry.max 5m"},
		{"http.listen", 30, `"localhost": must be host:port, e.g. 127.0.0.1:9464 or :9464`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("problems:\n%s\nwant:\n%s", list(got), list(want))
	}
	_, err := Parse([]byte(yml), noEnv)
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) || lines[0] != `line 4: memory.buffer_pool: "64 MiBs" is not a size (e.g. 4096, 512KiB, 64MiB, 1.5GiB, 10MB): unknown unit "MiBs"` {
		t.Fatalf("Error():\n%v", err)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func list(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// hasProblem checks that yml yields a problem at path whose message contains msg. Missing
// node and state_dir, sources or tiers are taken from minimal, so that yml can be just the
// keys under test.
func hasProblem(t *testing.T, yml string, env func(string) (string, bool), path, msg string) {
	t.Helper()
	yml = complete(yml)
	ps := problems(t, yml, env)
	for _, p := range ps {
		if p.Path == path && strings.Contains(p.Msg, msg) {
			return
		}
	}
	t.Fatalf("no problem %s: %q among:\n%s--- input:\n%s", path, msg, list(ps), yml)
}

var topKeyRE = regexp.MustCompile(`(?m)^(node|sources|tiers):`)

// complete adds to yml whichever of minimal's parts it lacks.
func complete(yml string) string {
	has := map[string]bool{}
	for _, m := range topKeyRE.FindAllStringSubmatch(yml, -1) {
		has[m[1]] = true
	}
	if !has["node"] {
		yml = "node: n1\nstate_dir: /var/lib/tierd\n" + yml
	}
	if !has["sources"] {
		yml += "\nsources:\n  - {name: rmq, layout: rocketmq, path: /data/store}\n"
	}
	if !has["tiers"] {
		yml += "\ntiers:\n  - {name: hdd, type: posix, path: /mnt/hdd}\n"
	}
	return yml
}

func TestStructure(t *testing.T) {
	f := func(yml, path, msg string) {
		t.Helper()
		hasProblem(t, yml, noEnv, path, msg)
	}
	f("workerz: 4\n", "workerz", `unknown key (did you mean "workers"?)`)
	f("Workers: 4\n", "Workers", `unknown key (did you mean "workers"?)`)
	f("memory: {buffer-pool: 1GiB}\n", "memory.buffer-pool", `unknown key (did you mean "buffer_pool"?)`)
	f("memory: {bufferpool: 1GiB}\n", "memory.bufferpool", `(did you mean "buffer_pool"?)`)
	f("frobnicate: 1\n", "frobnicate", "unknown key")
	f("buffer_pool: 1GiB\n", "buffer_pool", "unknown key (it belongs in memory)")
	f("memory: {workers: 4}\n", "memory.workers", "unknown key (it belongs at the top level)")
	f("tiers:\n  - {name: t, type: s3, bucket: bkt, read_mode: direct}\n", "tiers[0].read_mode", "unknown key (it belongs in sources[])")
	f("memory: 64MiB\n", "memory", "expected a mapping, got a scalar")
	f("memory: [64MiB]\n", "memory", "expected a mapping, got a list")
	f("workers: 2.5\n", "workers", `"2.5" is not an integer`)
	f("workers: 99999999999999999999\n", "workers", "is not an integer")
	f("memory: {lock: yes}\n", "memory.lock", `"yes" is not true or false`)
	f("memory: {buffer_pool: {a: 1}}\n", "memory.buffer_pool", "expected a size, got a mapping")
	f("scan_interval: 30\n", "scan_interval", "missing unit")
	f("scan_interval: [1]\n", "scan_interval", "expected a duration, got a list")
	f("node: [a]\n", "node", "expected a string, got a list")
	f("workers: 1\nworkers: 2\n", "workers", "duplicate key (first at line")
	f("? [a]\n: 1\n", "", "keys must be strings, got a list")
	f("http:\n  listen: a:1\n  listen: b:2\n", "http.listen", "duplicate key")
	f("sources: {name: x}\n", "sources", "expected a list, got a mapping")
	f("sources:\n  - rmq\n", "sources[0]", "expected a mapping, got a scalar")
	f("sources:\n  -\n", "sources[0].name", "required")
	f("tiers:\n  - {name: t, type: posix, path: /t, driver: aws}\n", "tiers[0].driver", "only for type s3")
	f("tiers:\n  - {name: t, type: s3, bucket: bkt, write_mode: direct}\n", "tiers[0].write_mode", "only for type posix")
	f("sources:\n  - {name: k, layout: kafka, path: /k, commitlog_file_size: 1GiB}\n", "sources[0].commitlog_file_size", "only for layout rocketmq")
	// With an unknown type, keys of either type are still type-checked.
	f("tiers:\n  - {name: t, type: ftp, max_used: lots}\n", "tiers[0].max_used", "is not a percentage")
	f("tiers:\n  - {name: t, type: ftp, max_used: lots}\n", "tiers[0].type", `"ftp" is not one of posix, s3`)
	f("tiers:\n  - {name: t, path: /t}\n", "tiers[0].type", "required: one of posix, s3")
}

func TestYAMLSyntax(t *testing.T) {
	f := func(yml string, want Problem) {
		t.Helper()
		ps := problems(t, yml, noEnv)
		if len(ps) != 1 || ps[0] != want {
			t.Fatalf("problems:\n%swant %v", list(ps), want)
		}
	}
	f("node: a\nworkers: 1\n  bad: 2\n", Problem{Line: 3, Msg: "yaml: mapping values are not allowed in this context"})
	f("node: a\n\tworkers: 1\n", Problem{Line: 2, Msg: "yaml: found a tab character that violates indentation"})
	f("node: a\nworkers: *nope\n", Problem{Msg: "yaml: unknown anchor 'nope' referenced"})
	f(minimal+"---\nnode: b\n", Problem{Line: 8, Msg: "a second YAML document (---): a config is one document"})
	f(strings.Repeat("#", maxFileSize+1), Problem{Msg: "larger than 1048576 bytes: not a tierd config"})
}

func TestEmptyDocument(t *testing.T) {
	for _, yml := range []string{"", "# nothing\n", "---\n", "~\n"} {
		ps := problems(t, yml, noEnv)
		var paths []string
		for _, p := range ps {
			paths = append(paths, p.Path)
		}
		if got := strings.Join(paths, " "); got != "node sources state_dir tiers" {
			t.Fatalf("%q: problems at %s\n%s", yml, got, list(ps))
		}
	}
	ps := problems(t, "just a string\n", noEnv)
	if ps[0] != (Problem{Line: 1, Msg: "expected a mapping, got a scalar"}) {
		t.Fatalf("problems:\n%s", list(ps))
	}
}

// Anchors, aliases and merge keys work, and cannot blow up.
func TestAliases(t *testing.T) {
	c := mustParse(t, `
node: n1
state_dir: /var/lib/tierd
sources:
  - &src {name: a, layout: kafka, path: /data/a}
  - {<<: *src, name: b, path: /data/b}
tiers:
  - &s3 {name: t1, type: s3, bucket: shared, region: eu-west-1}
  - <<: [*s3, {bucket: other, prefix: p}]
    name: t2
    region: us-west-2
`, noEnv)
	if c.Sources[1].Layout != LayoutKafka || c.Sources[1].Path != "/data/b" {
		t.Fatalf("merged source: %s", jsonOf(t, c.Sources[1]))
	}
	s := c.Tiers[1].S3
	if c.Tiers[1].Name != "t2" || s.Bucket != "shared" || s.Prefix != "p" || s.Region != "us-west-2" {
		t.Fatalf("merged tier: %s", jsonOf(t, c.Tiers[1]))
	}

	hasProblem(t, "tiers: &a [*a]\n", noEnv, "tiers[0]", "expected a mapping, got a list")
	hasProblem(t, "memory: &m {<<: *m}\n", noEnv, "memory", "<< must merge a mapping")
	hasProblem(t, "memory: {<<: 5}\n", noEnv, "memory", "<< must merge a mapping")
	// A billion laughs: each level refers to the one below ten times.
	var b strings.Builder
	b.WriteString("l0: &l0 {buffer_pool: 1MiB}\n")
	for i := 1; i < 10; i++ {
		b.WriteString("l" + string(rune('0'+i)) + ": &l" + string(rune('0'+i)) + " {<<: [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*l" + string(rune('0'+i-1)))
		}
		b.WriteString("]}\n")
	}
	b.WriteString("memory: {<<: *l9}\n")
	start := time.Now()
	hasProblem(t, b.String(), noEnv, "", "document too large or too deeply aliased")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("alias bomb took %v", d)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tierd.yaml")
	if err := os.WriteFile(path, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(path); err != nil || c.Node != "n1" {
		t.Fatalf("Load = %v, %v", c, err)
	}

	if err := os.WriteFile(path, []byte(minimal+"workerz: 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	var e *Error
	if !errors.As(err, &e) || e.File != path || err.Error() != path+`:8: workerz: unknown key (did you mean "workers"?)` {
		t.Fatalf("Load = %v", err)
	}

	t.Setenv("TIERD_TEST_NODE", "from-env")
	if err := os.WriteFile(path, []byte(strings.Replace(minimal, "node: n1", "node: ${TIERD_TEST_NODE}", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(path); err != nil || c.Node != "from-env" {
		t.Fatalf("Load with env = %v, %v", c, err)
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) = %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, maxFileSize+10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "not a tierd config") {
		t.Fatalf("Load(big) = %v", err)
	}
}
