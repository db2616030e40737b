package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.0",
		Main:      debug.Module{Path: "github.com/tierd/tierd", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.modified", Value: "true"},
			{Key: "vcs.time", Value: "2026-12-03T14:00:00Z"},
		},
	}
	got := fromBuildInfo(bi, "")
	if got.Version != "dev" || got.Commit != "0123456789abcdef0123456789abcdef01234567" || !got.Modified ||
		got.CommitTime != "2026-12-03T14:00:00Z" || got.GoVersion != "go1.26.0" {
		t.Fatalf("%+v", got)
	}
	if got.CommitLabel() != "0123456789abcdef0123456789abcdef01234567-modified" {
		t.Fatalf("commit label %q", got.CommitLabel())
	}
	if v := fromBuildInfo(bi, "v1.2.3").Version; v != "v1.2.3" {
		t.Fatalf("link-time version ignored: %q", v)
	}
	bi.Main.Version = "v0.4.0"
	bi.Settings = nil
	if got := fromBuildInfo(bi, ""); got.Version != "v0.4.0" || got.Commit != "unknown" || got.Modified {
		t.Fatalf("module version build: %+v", got)
	}
	if got := fromBuildInfo(nil, ""); got.Version != "dev" || got.Commit != "unknown" || got.GoVersion == "" {
		t.Fatalf("no build info: %+v", got)
	}
}
