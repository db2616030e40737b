package config

import (
	"strings"
	"testing"
)

func TestExpandEnv(t *testing.T) {
	env := envMap(map[string]string{"A": "alpha", "EMPTY": "", "B_2": "b", "PCT": "90%"})
	f := func(in, want string) {
		t.Helper()
		got, err := expandEnv(in, env)
		if err != nil || got != want {
			t.Fatalf("expandEnv(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	f("", "")
	f("plain", "plain")
	f("${A}", "alpha")
	f("x${A}y${B_2}z", "xalphaybz")
	f("${EMPTY}", "")
	f("${UNSET:-dflt}", "dflt")
	f("${EMPTY:-dflt}", "dflt") // as in the shell: :- also replaces an empty value
	f("${A:-dflt}", "alpha")
	f("${UNSET:-}", "")
	f("${UNSET:-a:-b}", "a:-b")
	f("$$", "$")
	f("$${A}", "${A}")
	f("a$$$${A}", "a$${A}")
	f("$$$${A}", "$${A}")
	f("pa$word", "pa$word")
	f("cost: 5$", "cost: 5$")
	f("$", "$")
	f("${PCT}", "90%")

	bad := func(in, want string) {
		t.Helper()
		got, err := expandEnv(in, env)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("expandEnv(%q) = %q, %v; want an error containing %q", in, got, err, want)
		}
	}
	bad("${UNSET}", "environment variable UNSET is not set")
	bad("x${A}${UNSET}", "UNSET is not set")
	bad("${A", "unterminated ${")
	bad("${}", "bad variable reference ${}")
	bad("${1A}", "bad variable reference")
	bad("${A B}", "bad variable reference")
	bad("${A:?err}", "bad variable reference")
	bad("${A-x}", "bad variable reference")
	bad("${${A}}", "bad variable reference")
}

func TestParseEnv(t *testing.T) {
	env := envMap(map[string]string{
		"NODE":   "broker-7",
		"POOL":   "128MiB",
		"LOCK":   "true",
		"BAD":    "64 MiBs",
		"KEY":    "AKIAEXAMPLE",
		"SECRET": "s3cr3t: {not yaml} # really",
		"TIERS":  "- {name: x}",
	})
	c := mustParse(t, complete(`node: ${NODE}
state_dir: /var/lib/${NODE}
memory: {buffer_pool: "${POOL}", lock: "${LOCK}"}
workers: ${WORKERS:-8}
log: {level: "${LOG_LEVEL:-debug}"}
tiers:
  - {name: s3, type: s3, bucket: bkt, prefix: "a$$b$${NOT_EXPANDED}", access_key: "${KEY}", secret_key: "${SECRET}"}
`), env)
	if c.Node != "broker-7" || c.StateDir != "/var/lib/broker-7" || c.Memory.BufferPool != 128*MiB ||
		!c.Memory.Lock || c.Workers != 8 || c.Log.Level != "debug" {
		t.Fatalf("expanded: %s", jsonOf(t, c))
	}
	s := c.Tiers[0].S3
	// A value can never change the document's structure: expansion follows parsing.
	if s.AccessKey.Reveal() != "AKIAEXAMPLE" || s.SecretKey.Reveal() != "s3cr3t: {not yaml} # really" {
		t.Fatalf("secrets: %q %q", s.AccessKey.Reveal(), s.SecretKey.Reveal())
	}

	f := func(yml, path, msg string) {
		t.Helper()
		hasProblem(t, yml, env, path, msg)
	}
	f("memory: {buffer_pool: '${BAD}'}\n", "memory.buffer_pool", `"64 MiBs" is not a size (e.g. 4096, 512KiB, 64MiB, 1.5GiB, 10MB): unknown unit "MiBs" (expanded from "${BAD}")`)
	f("tiers:\n  - {name: t, type: s3, bucket: bkt, access_key: '${NOPE}'}\n", "tiers[0].access_key", "environment variable NOPE is not set")
	f("workers: ${W}\n", "workers", "environment variable W is not set")
	f("pacing: {device: '${DEV'}\n", "pacing.device", "unterminated ${")
	// The variable's value is parsed for the field: keys are never expanded.
	f("${NODE}: 1\n", "${NODE}", "unknown key")
	f("tiers: ${TIERS}\n", "tiers", "expected a list, got a scalar")
	if s.Prefix != "a$b${NOT_EXPANDED}" {
		t.Fatalf("$$ escape: %q", s.Prefix)
	}
}
