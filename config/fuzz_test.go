package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func FuzzParse(f *testing.F) {
	f.Add(Example)
	f.Add([]byte(minimal))
	f.Add([]byte(complete("tiers:\n  - {name: t, type: s3, bucket: bkt, access_key: '${AK:-x}', secret_key: $$y}\n")))
	f.Add([]byte("memory: &m {<<: [*m, {buffer_pool: 1MiB}]}\nsources: &s [*s]\n"))
	f.Add([]byte("tiers:\n  - <<: {type: posix}\n    path: /t\n    bukket: x\n    max_used: 0.9\n"))
	f.Add([]byte("node: a\n---\nnode: b\n"))
	f.Add([]byte("? [a]\n: b\n"))
	f.Add([]byte{})
	env := envMap(map[string]string{"AK": "access", "SK": "secret", "EMPTY": ""})
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang is a bug too: crash, so that the fuzzer keeps the input.
		watchdog := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("Parse hangs on %q", data)) })
		defer watchdog.Stop()
		c, err := Parse(data, env)
		if err == nil {
			if c == nil {
				t.Fatal("nil config without error")
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Parse accepted what Validate refuses: %v", err)
			}
			if _, err := json.Marshal(c); err != nil {
				t.Fatalf("marshal: %v", err)
			}
			return
		}
		var e *Error
		if c != nil || !errors.As(err, &e) || len(e.Problems) == 0 {
			t.Fatalf("Parse = %v, %v", c, err)
		}
		for _, p := range e.Problems {
			if p.Msg == "" || p.Line < 0 {
				t.Fatalf("bad problem %+v", p)
			}
		}
		if _, err2 := Parse(data, env); err2 == nil || err2.Error() != err.Error() {
			t.Fatalf("not deterministic:\n%v\n---\n%v", err, err2)
		}
	})
}

// Every value that parses renders back to text that parses to the same value.
func FuzzValues(f *testing.F) {
	for _, s := range []string{"64MiB", "1.5GiB", "10MB", "4096", "30s", "1h30m", "7d", "never", "90%", "0.5%", "200MiB/s", "unlimited", "1d1ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := ParseSize(s); err == nil {
			if back, err := ParseSize(v.String()); err != nil || back != v || v < 0 {
				t.Fatalf("size %q -> %d -> %q -> %d, %v", s, v, v.String(), back, err)
			}
		} else if !strings.Contains(err.Error(), "is not a size") {
			t.Fatalf("size error %v", err)
		}
		if v, err := ParseDuration(s); err == nil {
			if back, err := ParseDuration(v.String()); err != nil || back != v || v < 0 {
				t.Fatalf("duration %q -> %d -> %q -> %d, %v", s, v, v.String(), back, err)
			}
		}
		if v, err := ParsePercent(s); err == nil {
			if back, err := ParsePercent(v.String()); err != nil || v < 0 || v != v {
				t.Fatalf("percent %q -> %v -> %q -> %v, %v", s, float64(v), v.String(), float64(back), err)
			}
		}
		if v, err := ParseRate(s); err == nil {
			if back, err := ParseRate(v.String()); err != nil || back != v || v < 0 {
				t.Fatalf("rate %q -> %d -> %q -> %d, %v", s, v, v.String(), back, err)
			}
		}
		if _, err := expandEnv(s, noEnv); err == nil && strings.Contains(s, "${") && !strings.Contains(s, "$$") && !strings.Contains(s, ":-") {
			t.Fatalf("expandEnv(%q) expanded an unset variable", s)
		}
	})
}
