package config

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	f := func(in string, want Size) {
		t.Helper()
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Fatalf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	f("0", 0)
	f("123", 123)
	f("4096B", 4096)
	f("512KiB", 512<<10)
	f("64MiB", 64<<20)
	f("8MiB", 8<<20)
	f("1GiB", 1<<30)
	f("1.5GiB", 3<<29)
	f("2TiB", 2<<40)
	f("1PiB", 1<<50)
	f("10MB", 10_000_000)
	f("1kB", 1000)
	f("1KB", 1000)
	f("3GB", 3_000_000_000)
	f("64 MiB", 64<<20)
	f("64mib", 64<<20)
	f("0.5KiB", 512)
	f("9223372036854775807", math.MaxInt64)
	f("7.99EiB"[:0]+"8191PiB", 8191<<50)

	bad := func(in, why string) {
		t.Helper()
		got, err := ParseSize(in)
		if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "is not a size") {
			t.Fatalf("ParseSize(%q) = %d, %v; want an error containing %q", in, got, err, why)
		}
	}
	bad("", "no number")
	bad("MiB", "no number")
	bad("-1", "negative")
	bad("-1MiB", "negative")
	bad("64 MiBs", `unknown unit "MiBs"`)
	bad("64M", `unknown unit "M"`)
	bad("64Mi", `unknown unit "Mi"`)
	bad("64  MiB", "unknown unit")
	bad("1.5B", "not a whole number of bytes")
	bad("0.3KiB", "not a whole number of bytes")
	bad("1.", "no number")
	bad(".5MiB", "no number")
	bad("1.2.3MiB", "no number")
	bad("1e6", `unknown unit "e6"`)
	bad("0x10", `unknown unit "x10"`)
	bad("9223372036854775808", "too large")
	bad("8192PiB", "too large")
	bad(strings.Repeat("1", 65), "too long")
}

func TestSizeString(t *testing.T) {
	f := func(in Size, want string) {
		t.Helper()
		if got := in.String(); got != want {
			t.Fatalf("Size(%d).String() = %q, want %q", int64(in), got, want)
		}
		if back, err := ParseSize(want); err != nil || back != in {
			t.Fatalf("ParseSize(%q) = %d, %v; want %d", want, back, err, int64(in))
		}
	}
	f(0, "0B")
	f(1, "1B")
	f(4097, "4097B")
	f(4096, "4KiB")
	f(64*MiB, "64MiB")
	f(3<<29, "1536MiB")
	f(GiB, "1GiB")
	f(10_000_000, "10MB")
	f(6_000_000, "6MB")
	f(1000, "1kB")
	f(PiB, "1PiB")
	f(math.MaxInt64, "9223372036854775807B")
}

func TestParseRate(t *testing.T) {
	f := func(in string, want Rate) {
		t.Helper()
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Fatalf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
		if back, err := ParseRate(got.String()); err != nil || back != got {
			t.Fatalf("ParseRate(%q) = %d, %v; want %d", got.String(), back, err, got)
		}
	}
	f("unlimited", Unlimited)
	f("0", Unlimited)
	f("1048576", Rate(MiB))
	f("200MiB/s", Rate(200*MiB))
	f("50MB/s", 50_000_000)
	f("1.5GiB/s", Rate(3<<29))
	f("0/s", Unlimited)

	bad := func(in string) {
		t.Helper()
		if got, err := ParseRate(in); err == nil || !strings.Contains(err.Error(), "is not a rate") {
			t.Fatalf("ParseRate(%q) = %d, %v; want an error", in, got, err)
		}
	}
	bad("")
	bad("200MiB")
	bad("200MiB/h")
	bad("-1")
	bad("-1MiB/s")
	bad("/s")
	bad("fast")
	bad("Unlimited")
	bad("1.5")

	if s := Rate(200 * MiB).String(); s != "200MiB/s" {
		t.Fatalf("String = %q", s)
	}
	if Unlimited.String() != "unlimited" || !Unlimited.IsUnlimited() || !math.IsInf(Unlimited.BytesPerSecond(), 1) {
		t.Fatal("Unlimited is not unlimited")
	}
	if Rate(5).BytesPerSecond() != 5 {
		t.Fatal("BytesPerSecond")
	}
}

func TestParseDuration(t *testing.T) {
	f := func(in string, want Duration) {
		t.Helper()
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Fatalf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	f("0", 0)
	f("0s", 0)
	f("250ms", Duration(250*time.Millisecond))
	f("30s", Duration(30*time.Second))
	f("1h30m", Duration(90*time.Minute))
	f("24h", Duration(24*time.Hour))
	f("7d", Duration(7*24*time.Hour))
	f("1d12h", Duration(36*time.Hour))
	f("0d", 0)
	f("never", Never)

	bad := func(in, why string) {
		t.Helper()
		got, err := ParseDuration(in)
		if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "is not a duration") {
			t.Fatalf("ParseDuration(%q) = %v, %v; want an error containing %q", in, got, err, why)
		}
	}
	bad("", "invalid")
	bad("30", "missing unit")
	bad("1.5", "missing unit")
	bad("-5s", "negative")
	bad("1.5d", "days must be a whole number")
	bad("d", "days must be a whole number")
	bad("+1d", "days must be a whole number")
	bad("5m3d", "days must be a whole number")
	bad("1d-5s", "negative")
	bad("1w", "unknown unit")
	bad("Never", "invalid")
	bad("forever", "invalid")
	bad("1d2", "missing unit")
	f("106751d", Duration(106751*24*time.Hour))
	bad("106752d", "too long")
	bad("106750d99999h", "too long")
	bad("3000000h", "invalid")
	bad(strings.Repeat("1", 70)+"s", "too long")
}

func TestDurationString(t *testing.T) {
	f := func(in Duration, want string) {
		t.Helper()
		if got := in.String(); got != want {
			t.Fatalf("Duration(%d).String() = %q, want %q", int64(in), got, want)
		}
		if back, err := ParseDuration(want); err != nil || back != in {
			t.Fatalf("ParseDuration(%q) = %v, %v; want %v", want, back, err, in)
		}
	}
	f(0, "0s")
	f(Duration(30*time.Second), "30s")
	f(Duration(5*time.Minute), "5m")
	f(Duration(time.Hour), "1h")
	f(Duration(90*time.Minute), "1h30m")
	f(Duration(time.Hour+5*time.Second), "1h0m5s")
	f(Duration(24*time.Hour), "24h")
	f(Duration(7*24*time.Hour), "7d")
	f(Duration(250*time.Millisecond), "250ms")
	f(Never, "never")
	if !Never.IsNever() || Duration(0).IsNever() {
		t.Fatal("IsNever")
	}
	if Never.Std() != math.MaxInt64 || Duration(time.Second).Std() != time.Second {
		t.Fatal("Std")
	}
}

func TestParsePercent(t *testing.T) {
	f := func(in string, want Percent, str string) {
		t.Helper()
		got, err := ParsePercent(in)
		if err != nil || math.Abs(float64(got-want)) > 1e-12 {
			t.Fatalf("ParsePercent(%q) = %v, %v; want %v", in, float64(got), err, float64(want))
		}
		if got.String() != str {
			t.Fatalf("ParsePercent(%q).String() = %q, want %q", in, got.String(), str)
		}
		if back, err := ParsePercent(str); err != nil || back != got {
			t.Fatalf("ParsePercent(%q) = %v, %v; want %v", str, back, err, got)
		}
	}
	f("90%", 0.9, "90%")
	f("90", 0.9, "90%")
	f("90 %", 0.9, "90%")
	f("100%", 1, "100%")
	f("0%", 0, "0%")
	f("0", 0, "0%")
	f("1", 0.01, "1%")
	f("0.5%", 0.005, "0.5%")
	f("12.5%", 0.125, "12.5%")
	f("150%", 1.5, "150%") // range is each field's business

	bad := func(in, why string) {
		t.Helper()
		if got, err := ParsePercent(in); err == nil || !strings.Contains(err.Error(), why) {
			t.Fatalf("ParsePercent(%q) = %v, %v; want an error containing %q", in, got, err, why)
		}
	}
	bad("", "not a number")
	bad("%", "not a number")
	bad("ninety", "not a number")
	bad("-5%", "negative")
	bad("0.9", `"0.9" is ambiguous: write "90%" or "0.9%"`)
	bad("1e2%", "not a number")
	bad("NaN%", "not a number")
	bad("Inf", "not a number")
	bad("0x10%", "not a number")
	bad("90%%", "not a number")
}

// The value types marshal as the text they parse from, so JSON output reads like YAML.
func TestValueText(t *testing.T) {
	v := struct {
		S Size
		D Duration
		N Duration
		P Percent
		R Rate
		U Rate
	}{64 * MiB, Duration(90 * time.Minute), Never, 0.9, Rate(200 * MiB), Unlimited}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"S":"64MiB","D":"1h30m","N":"never","P":"90%","R":"200MiB/s","U":"unlimited"}`
	if string(b) != want {
		t.Fatalf("json = %s, want %s", b, want)
	}
	var back struct {
		S Size
		D Duration
		N Duration
		P Percent
		R Rate
		U Rate
	}
	if err := json.Unmarshal(b, &back); err != nil || back != v {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"S":"64 MiBs"}`), &back); err == nil || !strings.Contains(err.Error(), "is not a size") {
		t.Fatalf("bad size through JSON: %v", err)
	}
}
