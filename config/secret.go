package config

import (
	"fmt"
	"log/slog"
	"strconv"
)

// Secret is a string that never prints: fmt (every verb, %#v included), encoding/json,
// encoding.TextMarshaler users, YAML, log/slog and zap all render it as "[redacted]", or "" when it
// is empty, so whether a secret is set stays visible. Reveal returns the value for the one
// place that hands it to a client library.
//
// The value sits behind an unexported pointer: reflection-based encoders cannot reach an
// unexported field, and fmt, when it prints a struct without calling methods (as it does
// under a bad verb, such as %s on a Config), shows a nested pointer only as an address.
type Secret struct{ p *string }

const redacted = "[redacted]"

// NewSecret wraps s.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{&s}
}

// Reveal returns the secret value. Call it only where the value is handed to the code that
// authenticates with it, never to build a message.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s.p != nil }

// String returns "[redacted]", or "" for an empty secret.
func (s Secret) String() string {
	if s.p == nil {
		return ""
	}
	return redacted
}

// GoString is what %#v prints: the same as String, quoted.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format renders s as String does for every fmt verb.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		_, _ = f.Write([]byte(strconv.Quote(s.String())))
	case 'v':
		if f.Flag('#') {
			_, _ = f.Write([]byte(s.GoString()))
			return
		}
		_, _ = f.Write([]byte(s.String()))
	default:
		_, _ = f.Write([]byte(s.String()))
	}
}

// MarshalText renders s as String does (encoding/json and most encoders use it).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON renders s as a JSON string holding String().
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// LogValue renders s as String does for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalYAML renders s as String does.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

func (s *Secret) parseScalar(text string) error {
	*s = NewSecret(text)
	return nil
}
