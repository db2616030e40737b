// Package config loads, defaults and validates tierd's YAML configuration.
//
// Loading is strict and complete: Parse walks the YAML tree against the Go structs itself,
// so one pass reports every problem at once — unknown keys (with a did-you-mean), values of
// the wrong type, duplicate keys, keys that belong to another tier type or source layout,
// unset environment variables, missing required fields, bad values and cross-field
// conflicts — each with its field path (tiers[1].bucket) and YAML line, in one *Error.
// Parse never panics, whatever the input (FuzzParse).
//
// Values are typed: Size (bytes: 64MiB, 10MB, 4096), Duration (30s, 1h30m, 7d, and "never"
// where allowed), Percent (90%), Rate (200MiB/s, "unlimited") and Secret, which renders as
// "[redacted]" through fmt, encoding/json, YAML and zap and is read only with Reveal. A
// parsed Config carries every default (see Example, the annotated reference config), so
// consumers never re-implement a default. Marshalling a Config to JSON gives the effective
// configuration with secrets redacted, in the same shape as the YAML.
package config
