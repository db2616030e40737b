package reliability

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tierd/tierd/devtools/miniotest"
)

// defaultListen is where tierd's HTTP endpoint listens when the config does not say.
const defaultListen = "127.0.0.1:9464"

// TestSecurity runs tierd against MinIO over TLS (a certificate signed by a CA of the
// test's, given as ca_file) with debug logging, and checks that the S3 secret appears in
// no log line, no HTTP answer and no output (plain or --json) of any command, not even
// in the error of a command given a wrong secret; that every socket tierd listens on is
// on 127.0.0.1, with http.listen configured and by default; and that restore and cat
// refuse keys that would escape their target.
func TestSecurity(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	srv := miniotest.StartWith(t, miniotest.Options{TLS: true})
	if !strings.HasPrefix(srv.Endpoint, "https://") || srv.CAFile == "" {
		t.Fatalf("MinIO without TLS: %s", srv.Endpoint)
	}
	w := newWorld(t, srv, worldConf{
		name:     "security",
		tiers:    []tierConf{{name: "hdd", yaml: "write_mode: buffered"}, {name: "s3", s3: true, yaml: "driver: aws"}},
		logLevel: "debug",
	})
	w.startBroker(s, 1500, 0)
	p := w.start("daemon")
	if !p.waitFor(time.Minute, func() bool { return w.tierStatus("s3").Segments >= 3 }) {
		t.Fatalf("nothing reached MinIO over TLS in a minute:\n%s", p.tail())
	}
	outputs := map[string]string{}
	for _, path := range []string{"/status", "/metrics", "/readyz", "/healthz"} {
		_, body := httpGet(w.addr, path)
		outputs["GET "+path] = body
	}
	run := func(wantCode int, args ...string) cliResult {
		res := w.cli(args...)
		outputs["tierd "+strings.Join(args, " ")] = res.out + res.errOut
		if res.code != wantCode {
			t.Errorf("tierd %s: exit %d, want %d: %s", strings.Join(args, " "), res.code, wantCode, res.errOut)
		}
		return res
	}
	run(0, "status")
	run(0, "status", "--json")
	checkLoopbackOnly(t, p, w.addr)
	if code := p.term(30 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.tail())
	}
	recs := w.checkStopped(ctx) // TLS end to end: verify re-reads every object
	for _, args := range [][]string{
		{"ls"}, {"ls", "--json"}, {"scan"}, {"scan", "--json"}, {"verify"}, {"verify", "--json"},
		{"reconcile"}, {"reconcile", "--json"}, {"reap", "--older-than", "0s"}, {"config", "check"},
	} {
		run(0, args...)
	}
	// A wrong secret: the commands fail, and say so without the secret they were given.
	wrong := "wrong-" + srv.SecretKey[len(srv.SecretKey)/2:]
	env := w.env
	w.env = append(append([]string(nil), env...), "RELIABILITY_S3_SECRET="+wrong)
	for _, args := range [][]string{{"verify", "--json"}, {"reap", "--older-than", "0s"}, {"config", "check"}} {
		res := w.cli(args...)
		if strings.Contains(res.out+res.errOut, wrong) {
			t.Errorf("tierd %s with a wrong secret shows it: %s%s", strings.Join(args, " "), res.out, res.errOut)
		}
		if failed := res.code != 0; failed != (args[0] != "config") {
			t.Errorf("tierd %s with a wrong secret: exit %d: %s", strings.Join(args, " "), res.code, res.errOut)
		}
	}
	w.env = env

	// Keys that would escape the target directory (restore) or the node's space (cat).
	to := t.TempDir()
	for _, bad := range []string{node + "/src/../../../etc/passwd", "../x", "/etc/passwd", node + "/src/commitlog/.."} {
		if res := run(2, "restore", bad, "--to", to); !strings.Contains(res.errOut, "refusing") {
			t.Errorf("restore %q: %s", bad, res.errOut)
		}
		run(2, "cat", bad)
	}
	if ents, err := os.ReadDir(to); err != nil || len(ents) != 0 {
		t.Errorf("restores that were refused wrote %d entries (%v)", len(ents), err)
	}

	// Logs (debug level) and outputs: the secret is nowhere.
	logs, _ := filepath.Glob(filepath.Join(w.logs, "*"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		outputs["log "+filepath.Base(l)] = string(b)
	}
	lines := 0
	for what, out := range outputs {
		lines += strings.Count(out, "\n")
		if strings.Contains(out, srv.SecretKey) {
			t.Errorf("the S3 secret appears in %s", what)
		}
	}
	if lines < 100 {
		t.Errorf("only %d lines of logs and outputs searched: the search proves nothing", lines)
	}
	t.Logf("secret searched in %d logs and outputs (%d lines); %d records over TLS verified", len(outputs), lines, len(recs))

	// Without http.listen in the config, tierd listens on loopback only.
	if l, err := net.Listen("tcp", defaultListen); err != nil {
		t.Logf("default listen not checked: %s is taken (%v)", defaultListen, err)
	} else {
		l.Close()
		dw := newWorld(t, nil, worldConf{name: "default-listen", tiers: []tierConf{{name: "hdd"}}, defaultHTTP: true})
		dp := dw.start("daemon")
		if !dp.waitFor(30*time.Second, func() bool { code, _ := httpGet(defaultListen, "/healthz"); return code == 200 }) {
			t.Fatalf("no /healthz at %s:\n%s", defaultListen, dp.tail())
		}
		checkLoopbackOnly(t, dp, defaultListen)
		if code := dp.term(30 * time.Second); code != 0 {
			t.Fatalf("exit %d after SIGTERM:\n%s", code, dp.tail())
		}
	}
}

// checkLoopbackOnly checks that the process listens on want and on no address other
// than 127.0.0.1 or ::1.
func checkLoopbackOnly(t *testing.T, p *proc, want string) {
	t.Helper()
	addrs, err := listening(p.cmd.Process.Pid)
	if err != nil {
		t.Fatalf("sockets of tierd: %v", err)
	}
	found := false
	for _, a := range addrs {
		if !a.Addr().IsLoopback() {
			t.Errorf("tierd listens on %s, not on loopback", a)
		}
		found = found || a.String() == want
	}
	if !found {
		t.Errorf("tierd listens on %v, not on %s", addrs, want)
	}
}

// listening returns the TCP addresses process pid listens on: its socket inodes
// (/proc/PID/fd) matched with the LISTEN entries of /proc/PID/net/tcp and tcp6.
func listening(pid int) ([]netip.AddrPort, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var out []netip.AddrPort
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: TCP_LISTEN
				continue
			}
			a, err := parseProcAddr(f[1])
			if err != nil {
				return nil, fmt.Errorf("%s: %q: %w", table, f[1], err)
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// parseProcAddr parses a local_address of /proc/net/tcp{,6}: the address as 32-bit words
// in host (little-endian) order, in hex, a colon, and the port in hex.
func parseProcAddr(s string) (netip.AddrPort, error) {
	host, portHex, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("no port")
	}
	raw, err := hex.DecodeString(host)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address")
	}
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(raw[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}
