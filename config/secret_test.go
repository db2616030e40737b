package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v3"
)

func TestSecretRendering(t *testing.T) {
	s := NewSecret("hunter2")
	if s.Reveal() != "hunter2" || !s.IsSet() || (Secret{}).IsSet() {
		t.Fatal("Reveal/IsSet")
	}
	f := func(format string, want string) {
		t.Helper()
		if got := fmt.Sprintf(format, s); got != want {
			t.Fatalf("Sprintf(%q) = %q, want %q", format, got, want)
		}
	}
	f("%v", "[redacted]")
	f("%+v", "[redacted]")
	f("%#v", `"[redacted]"`)
	f("%s", "[redacted]")
	f("%q", `"[redacted]"`)
	f("%x", "[redacted]")
	f("%d", "[redacted]")
	f("%10s", "[redacted]")
	if got := fmt.Sprintf("%v|%#v|%q", Secret{}, Secret{}, Secret{}); got != `|""|""` {
		t.Fatalf("empty secret renders %q", got)
	}
	if got := fmt.Sprint(s) + fmt.Sprintln(s); got != "[redacted][redacted]\n" {
		t.Fatalf("Sprint = %q", got)
	}
}

// No way of printing or encoding a whole Config shows a secret.
func TestConfigNeverShowsSecrets(t *testing.T) {
	const ak, sk, tok = "AKIA-ACCESS-KEY-VALUE", "SECRET-KEY-VALUE", "SESSION-TOKEN-VALUE"
	c := mustParse(t, complete(`
tiers:
  - {name: a, type: s3, bucket: bkt, access_key: "${AK}", secret_key: "${SK}", session_token: `+tok+`}
`), envMap(map[string]string{"AK": ak, "SK": sk}))
	s3 := c.Tiers[0].S3
	if s3.AccessKey.Reveal() != ak || s3.SecretKey.Reveal() != sk || s3.SessionToken.Reveal() != tok {
		t.Fatal("secrets not parsed")
	}

	var outputs []string
	add := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, what)
	}
	for _, v := range []any{c, *c, c.Tiers, c.Tiers[0], s3, *s3} {
		add(fmt.Sprintf("%v %+v %#v %s %d %x %q %t", v, v, v, v, v, v, v, v), nil)
		b, err := json.Marshal(v)
		add(string(b), err)
		y, err := yaml.Marshal(v)
		add(string(y), err)
	}

	var buf bytes.Buffer
	for _, enc := range []zapcore.Encoder{
		zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()),
	} {
		log := zap.New(zapcore.NewCore(enc, zapcore.AddSync(&buf), zapcore.DebugLevel))
		log.Info("config",
			zap.Any("config", c), zap.Any("tier", c.Tiers[0]), zap.Any("s3", s3),
			zap.Any("secret", s3.SecretKey), zap.Stringer("stringer", s3.SecretKey),
			zap.Reflect("reflect", c), zap.Reflect("s3r", *s3))
		log.Sugar().Infow("sugar", "config", c, "s3", *s3, "secret", s3.AccessKey)
		log.Sugar().Infof("config %v %+v %v", c, *s3, s3.SessionToken)
	}
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		log := slog.New(h)
		log.Info("config", "config", c, "s3", s3, "secret", s3.SecretKey, "token", s3.SessionToken)
	}
	add(buf.String(), nil)

	all := strings.Join(outputs, "\n")
	for _, secret := range []string{ak, sk, tok} {
		if strings.Contains(all, secret) {
			i := strings.Index(all, secret)
			t.Fatalf("secret %q leaked: ...%s...", secret, all[max(0, i-300):min(len(all), i+100)])
		}
	}
	if !strings.Contains(all, `"secret_key":"[redacted]"`) || !strings.Contains(all, "secret_key: '[redacted]'") ||
		!strings.Contains(buf.String(), `"secret":"[redacted]"`) || !strings.Contains(buf.String(), `"stringer":"[redacted]"`) || !strings.Contains(buf.String(), `token=[redacted]`) {
		t.Fatalf("redacted secrets not rendered as expected:\n%s", all)
	}
}
