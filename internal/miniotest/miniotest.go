package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Server is a running MinIO server owned by one test.
type Server struct {
	Endpoint  string // "http://127.0.0.1:PORT" (https with TLS)
	Bucket    string // created at Start
	Region    string
	AccessKey string
	SecretKey string
	// KMSKeyID names the server's built-in KMS key, so SSE-S3 and SSE-KMS work.
	KMSKeyID string
	// CAFile is the PEM of the CA that signed the server's certificate ("" without TLS).
	CAFile string

	t       testing.TB
	bin     string
	addr    string
	dataDir string
	certDir string
	logFile string
	kmsKey  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Options change what Start sets up.
type Options struct {
	TLS    bool   // serve https with a certificate signed by a generated CA
	Bucket string // default "tierd-test"
	// DataDir is where a directory for the server's data is made (and removed at cleanup);
	// default the test's temporary directory. Benchmarks short of disk space may use a
	// tmpfs.
	DataDir string
}

// Start runs a MinIO server for t; see StartWith.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith runs a MinIO server for t, waits until it is ready, creates the bucket, and
// stops the server when t finishes.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	bin := find(t, "TIERD_MINIO_BIN", "minio")
	dir := t.TempDir()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	s := &Server{
		Bucket:    o.Bucket,
		Region:    "us-east-1",
		AccessKey: "tierdtest",
		SecretKey: "tierdtest-" + base64.RawURLEncoding.EncodeToString(secret[:12]),
		KMSKeyID:  "tierd-test-key",
		t:         t,
		bin:       bin,
		addr:      "127.0.0.1:" + strconv.Itoa(freePort(t)),
		dataDir:   filepath.Join(dir, "data"),
		logFile:   filepath.Join(dir, "minio.log"),
		kmsKey:    "tierd-test-key:" + base64.StdEncoding.EncodeToString(secret),
	}
	if s.Bucket == "" {
		s.Bucket = "tierd-test"
	}
	if o.DataDir != "" {
		d, err := os.MkdirTemp(o.DataDir, "miniotest-")
		if err != nil {
			t.Fatalf("miniotest: data directory: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		s.dataDir = d
	}
	scheme := "http"
	if o.TLS {
		scheme = "https"
		s.certDir = filepath.Join(dir, "certs")
		s.CAFile = filepath.Join(dir, "ca.pem")
		if err := os.MkdirAll(s.certDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := writeCerts(s.certDir, s.CAFile); err != nil {
			t.Fatalf("miniotest: make TLS certificates: %v", err)
		}
	}
	s.Endpoint = scheme + "://" + s.addr
	t.Cleanup(s.Stop)
	if err := s.start(); err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Client().MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatalf("miniotest: make bucket %s: %v", s.Bucket, err)
	}
	return s
}

// find returns the binary named by env, else name on PATH, else GOPATH/bin/name. It
// skips the test when there is none, or fails it under CI=true.
func find(t testing.TB, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil && isMinIOTool(p) {
		return p
	}
	p := filepath.Join(build.Default.GOPATH, "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	msg := fmt.Sprintf("miniotest: no %s binary ($%s, PATH, %s); `make test` installs it", name, env, p)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// isMinIOTool tells MinIO's binaries from namesakes (mc is also Midnight Commander).
func isMinIOTool(path string) bool {
	out, _ := exec.Command(path, "--version").CombinedOutput()
	return bytes.Contains(bytes.ToLower(out), []byte("minio"))
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("miniotest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) start() error {
	args := []string{"server", "--quiet", "--address", s.addr, s.dataDir}
	if s.certDir != "" {
		args = append(args, "--certs-dir", s.certDir)
	}
	log, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_KMS_SECRET_KEY="+s.kmsKey,
		"MINIO_BROWSER=off", // no console listener
		"MINIO_UPDATE=off",
		"MINIO_CONFIG_ENV_FILE=",
	)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test binary
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return s.waitReady(done)
}

// waitReady polls the readiness endpoint until it answers 200, the server exits, or 60 s
// pass.
func (s *Server) waitReady(done chan struct{}) error {
	hc := s.HTTPClient()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("minio exited while starting:\n%s", s.logTail())
		default:
		}
		resp, err := hc.Get(s.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("minio not ready after 60s:\n%s", s.logTail())
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logFile)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// PID returns the server process's id, or 0 while it is stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop kills the server at once (SIGKILL, as a crash would) and waits for it to exit.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.t.Errorf("miniotest: minio pid %d did not exit after SIGKILL", cmd.Process.Pid)
	}
}

// Restart stops the server if it runs and starts it again on the same address with the
// same data, and waits until it is ready.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("miniotest: restart: %v", err)
	}
}

// HTTPClient returns a client that trusts the server's certificate.
func (s *Server) HTTPClient() *http.Client {
	return &http.Client{Transport: s.transport(), Timeout: 10 * time.Second}
}

func (s *Server) transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			s.t.Fatalf("miniotest: %v", err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return tr
}

// Client returns a minio-go client for the server's root user.
func (s *Server) Client() *minio.Client {
	c, err := minio.New(s.addr, &minio.Options{
		Creds:     credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure:    s.CAFile != "",
		Transport: s.transport(),
		Region:    s.Region,
	})
	if err != nil {
		s.t.Fatalf("miniotest: client: %v", err)
	}
	return c
}

// Alias is the name under which MC reaches the server: "tierdtest/<bucket>/<key>".
const Alias = "tierdtest"

// MCBin returns the MinIO client binary ($TIERD_MC_BIN, PATH, GOPATH/bin/mc), skipping
// or failing t as for the server when there is none.
func MCBin(t testing.TB) string {
	t.Helper()
	return find(t, "TIERD_MC_BIN", "mc")
}

// MCCommand returns an mc command against the server (alias Alias, configured through
// MC_HOST_tierdtest) with its own config directory. The caller runs it.
func (s *Server) MCCommand(args ...string) *exec.Cmd {
	s.t.Helper()
	bin := MCBin(s.t)
	scheme, hostport, _ := strings.Cut(s.Endpoint, "://")
	cmd := exec.Command(bin, append([]string{"--no-color", "--config-dir", filepath.Join(s.t.TempDir(), "mc")}, args...)...)
	cmd.Env = append(os.Environ(), "MC_HOST_"+Alias+"="+scheme+"://"+s.AccessKey+":"+s.SecretKey+"@"+hostport)
	if s.CAFile != "" {
		cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+s.CAFile)
	}
	return cmd
}

// MC runs mc against the server and returns its standard output; a failure reports the
// standard error too.
func (s *Server) MC(args ...string) ([]byte, error) {
	s.t.Helper()
	cmd := s.MCCommand(args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("mc %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}
