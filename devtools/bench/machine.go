package bench

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Machine describes where a benchmark ran, for the top of a report.
type Machine struct {
	When      time.Time `json:"when"`
	Host      string    `json:"host"`
	CPU       string    `json:"cpu"`
	Cores     int       `json:"cores"`
	MemTotal  int64     `json:"mem_total"`
	MemAvail  int64     `json:"mem_available"`
	Kernel    string    `json:"kernel"`
	GoVersion string    `json:"go_version"`
	// Dir is the bench directory; FS, Device and MountOpts describe its filesystem.
	Dir       string `json:"dir"`
	FS        string `json:"fs"`
	Device    string `json:"device"`
	MountOpts string `json:"mount_opts"`
	DiskSize  int64  `json:"disk_size"`
	DiskFree  int64  `json:"disk_free"`
	// Tools are the versions of the baselines (first line of their version output).
	Tools map[string]string `json:"tools"`
}

// DescribeMachine describes this machine and the filesystem of dir. Whatever cannot be
// found out is left empty.
func DescribeMachine(dir string) Machine {
	m := Machine{When: time.Now().UTC(), Cores: runtime.NumCPU(), GoVersion: runtime.Version(), Dir: dir, Tools: map[string]string{}}
	m.Host, _ = os.Hostname()
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	m.MemTotal, m.MemAvail = meminfo("MemTotal"), meminfo("MemAvailable")
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
	}
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) == nil {
		m.DiskSize = int64(st.Blocks) * st.Bsize
		m.DiskFree = int64(st.Bavail) * st.Bsize
	}
	m.FS, m.Device, m.MountOpts = mountOf(dir)
	return m
}

// meminfo returns a field of /proc/meminfo in bytes, 0 if unknown.
func meminfo(field string) int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// MemAvailable returns the kernel's estimate of memory available without swapping.
func MemAvailable() int64 { return meminfo("MemAvailable") }

// mountOf finds the mount holding dir in /proc/self/mountinfo: its filesystem type,
// source device and mount options.
func mountOf(dir string) (fsType, dev, opts string) {
	abs, err := filepath.EvalSymlinks(dir)
	if err != nil {
		abs = dir
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", ""
	}
	defer f.Close()
	best := -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 6 || len(b) < 2 {
			continue
		}
		mp := a[4]
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > best {
			best, fsType, dev, opts = len(mp), b[0], b[1], a[5]
		}
	}
	return fsType, dev, opts
}

// LoadAvg returns the 1, 5 and 15 minute load averages.
func LoadAvg() [3]float64 {
	var l [3]float64
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(data))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}

// ToolVersion returns the module and version a Go program was built from (go install
// builds report no better version), else the first line of `name args...`, or why
// neither could be found.
func ToolVersion(name string, args ...string) string {
	if path, err := exec.LookPath(name); err == nil {
		if bi, err := buildinfo.ReadFile(path); err == nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Path + " " + bi.Main.Version
		}
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	line, _, _ := bytes.Cut(bytes.TrimSpace(out), []byte("\n"))
	if err != nil {
		return fmt.Sprintf("unavailable (%v)", err)
	}
	return string(line)
}
