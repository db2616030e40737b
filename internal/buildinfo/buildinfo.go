// Package buildinfo says which build of tierd is running: the version (set at link time,
// else the module's), the VCS commit Go stamped into the binary, and the Go version. The
// CLI's version command and the daemon's tierd_build_info metric both read it.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Version is set at build time with
// -ldflags "-X github.com/tierd/tierd/internal/buildinfo.Version=v1.2.3"; when it is
// empty, the module version from the build info is used, else "dev".
var Version string

// Info describes the running binary.
type Info struct {
	Version    string `json:"version"`
	Commit     string `json:"commit"`      // vcs.revision, or "unknown" (built without VCS info, e.g. go run or -buildvcs=false)
	Modified   bool   `json:"modified"`    // vcs.modified: the working tree had uncommitted changes
	CommitTime string `json:"commit_time"` // vcs.time (RFC 3339, UTC), or "" when unknown
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

// Get returns the running binary's Info.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi, Version)
}

func fromBuildInfo(bi *debug.BuildInfo, version string) Info {
	info := Info{Version: version, Commit: "unknown", GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi == nil {
		if info.Version == "" {
			info.Version = "dev"
		}
		return info
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	if info.Version == "" {
		info.Version = bi.Main.Version
	}
	if info.Version == "" || info.Version == "(devel)" {
		info.Version = "dev"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if s.Value != "" {
				info.Commit = s.Value
			}
		case "vcs.modified":
			info.Modified = s.Value == "true"
		case "vcs.time":
			info.CommitTime = s.Value
		}
	}
	return info
}

// CommitLabel is the commit as one word: the revision, with "-modified" when the tree
// had uncommitted changes.
func (i Info) CommitLabel() string {
	if i.Modified {
		return i.Commit + "-modified"
	}
	return i.Commit
}
