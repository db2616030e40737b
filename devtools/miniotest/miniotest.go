package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
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

// Server is a running MinIO server, started by Launch (a program: the caller stops it
// with Close) or by Start/StartWith (a test: stopped when the test finishes).
type Server struct {
	Endpoint  string // "http://127.0.0.1:PORT" (https with TLS)
	Bucket    string // created at start
	Region    string
	AccessKey string
	SecretKey string
	// KMSKeyID names the server's built-in KMS key, so SSE-S3 and SSE-KMS work.
	KMSKeyID string
	// CAFile is the PEM of the CA that signed the server's certificate ("" without TLS).
	CAFile string

	t       testing.TB // the test that started the server, or nil (Launch)
	bin     string
	addr    string
	dir     string // everything of this server: data (unless Options.DataDir), certs, log
	dataDir string
	certDir string
	logFile string
	kmsKey  string
	roots   *x509.CertPool // the CA, with TLS

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Options change what Launch and StartWith set up.
type Options struct {
	TLS    bool   // serve https with a certificate signed by a generated CA
	Bucket string // default "tierd-test"
	// Dir is where Launch makes the server's own directory (removed by Close); default the
	// system's temporary directory. StartWith uses the test's temporary directory.
	Dir string
	// DataDir is where a directory for the server's data is made (and removed at Close);
	// default the server's own directory. Benchmarks short of disk space may use a tmpfs.
	DataDir string
}

// ErrNoBinary means a MinIO binary (server or client) was not found.
var ErrNoBinary = errors.New("no MinIO binary")

// Start runs a MinIO server for t; see StartWith.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith runs a MinIO server for t (Launch), and stops it when t finishes. Without a
// server binary it skips t, or fails it under CI=true; any other failure fails t.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	if _, err := FindBin("TIERD_MINIO_BIN", "minio"); err != nil {
		skipOrFail(t, err)
	}
	o.Dir = t.TempDir()
	s, err := Launch(o)
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	s.t = t
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("miniotest: %v", err)
		}
	})
	return s
}

// skipOrFail skips t for a missing binary, or fails it under CI=true.
func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(err)
	}
	t.Skip(err)
}

// Launch runs a MinIO server on a free loopback port, waits until it is ready and creates
// the bucket. The caller must Close it.
func Launch(o Options) (_ *Server, err error) {
	bin, err := FindBin("TIERD_MINIO_BIN", "minio")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(o.Dir, "miniotest-")
	if err != nil {
		return nil, fmt.Errorf("cannot make the server's directory: %w", err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	s := &Server{
		Bucket:    o.Bucket,
		Region:    "us-east-1",
		AccessKey: "tierdtest",
		SecretKey: "tierdtest-" + base64.RawURLEncoding.EncodeToString(secret[:12]),
		KMSKeyID:  "tierd-test-key",
		bin:       bin,
		addr:      "127.0.0.1:" + strconv.Itoa(port),
		dir:       dir,
		dataDir:   filepath.Join(dir, "data"),
		logFile:   filepath.Join(dir, "minio.log"),
		kmsKey:    "tierd-test-key:" + base64.StdEncoding.EncodeToString(secret),
	}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if s.Bucket == "" {
		s.Bucket = "tierd-test"
	}
	if o.DataDir != "" {
		d, err := os.MkdirTemp(o.DataDir, "miniotest-")
		if err != nil {
			return nil, fmt.Errorf("cannot make a data directory in %q: %w", o.DataDir, err)
		}
		s.dataDir = d
	}
	scheme := "http"
	if o.TLS {
		scheme = "https"
		s.certDir = filepath.Join(dir, "certs")
		s.CAFile = filepath.Join(dir, "ca.pem")
		if err := os.MkdirAll(s.certDir, 0o700); err != nil {
			return nil, err
		}
		if err := writeCerts(s.certDir, s.CAFile); err != nil {
			return nil, fmt.Errorf("make TLS certificates: %w", err)
		}
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, err
		}
		s.roots = x509.NewCertPool()
		s.roots.AppendCertsFromPEM(pem)
	}
	s.Endpoint = scheme + "://" + s.addr
	if err := s.start(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Client().MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		return nil, fmt.Errorf("make bucket %s: %w", s.Bucket, err)
	}
	return s, nil
}

// Close stops the server and removes its directories.
func (s *Server) Close() error {
	err := s.Stop()
	if s.dataDir != filepath.Join(s.dir, "data") {
		err = errors.Join(err, os.RemoveAll(s.dataDir))
	}
	return errors.Join(err, os.RemoveAll(s.dir))
}

// FindBin returns the binary named by env, else name on PATH, else GOPATH/bin/name, or an
// error wrapping ErrNoBinary that says how to install it.
func FindBin(env, name string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil && isMinIOTool(p) {
		return p, nil
	}
	p := filepath.Join(build.Default.GOPATH, "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("miniotest: %w: no %s binary ($%s, PATH, %s); `make tools` installs it", ErrNoBinary, name, env, p)
}

// isMinIOTool tells MinIO's binaries from namesakes (mc is also Midnight Commander).
func isMinIOTool(path string) bool {
	out, _ := exec.Command(path, "--version").CombinedOutput()
	return bytes.Contains(bytes.ToLower(out), []byte("minio"))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
func (s *Server) Stop() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
		return nil
	case <-time.After(30 * time.Second):
		err := fmt.Errorf("miniotest: minio pid %d did not exit after SIGKILL", cmd.Process.Pid)
		if s.t != nil {
			s.t.Error(err)
		}
		return err
	}
}

// Restart stops the server if it runs and starts it again on the same address with the
// same data, and waits until it is ready. A server started for a test fails the test if
// it cannot.
func (s *Server) Restart() error {
	if s.t != nil {
		s.t.Helper()
	}
	if err := s.Stop(); err != nil {
		return err
	}
	if err := s.start(); err != nil {
		err = fmt.Errorf("miniotest: restart: %w", err)
		if s.t != nil {
			s.t.Fatal(err)
		}
		return err
	}
	return nil
}

// HTTPClient returns a client that trusts the server's certificate.
func (s *Server) HTTPClient() *http.Client {
	return &http.Client{Transport: s.transport(), Timeout: 10 * time.Second}
}

func (s *Server) transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if s.roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS12}
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
		// minio.New fails only for an invalid endpoint, and the endpoint is ours.
		panic(fmt.Sprintf("miniotest: client for %s: %v", s.addr, err))
	}
	return c
}

// Alias is the name under which MC reaches the server: "tierdtest/<bucket>/<key>".
const Alias = "tierdtest"

// MCBin returns the MinIO client binary ($TIERD_MC_BIN, PATH, GOPATH/bin/mc), skipping
// or failing t as for the server when there is none.
func MCBin(t testing.TB) string {
	t.Helper()
	bin, err := FindBin("TIERD_MC_BIN", "mc")
	if err != nil {
		skipOrFail(t, err)
	}
	return bin
}

// MCCommand returns an mc command against the server (alias Alias, configured through
// MC_HOST_tierdtest) with a config directory in the server's directory. The caller runs
// it; without an mc binary, running it fails with an error wrapping ErrNoBinary.
func (s *Server) MCCommand(args ...string) *exec.Cmd {
	bin, err := FindBin("TIERD_MC_BIN", "mc")
	scheme, hostport, _ := strings.Cut(s.Endpoint, "://")
	cmd := exec.Command(bin, append([]string{"--no-color", "--config-dir", filepath.Join(s.dir, "mc")}, args...)...)
	if err != nil {
		cmd.Err = err
	}
	cmd.Env = append(os.Environ(), "MC_HOST_"+Alias+"="+scheme+"://"+s.AccessKey+":"+s.SecretKey+"@"+hostport)
	if s.CAFile != "" {
		cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+s.CAFile)
	}
	return cmd
}

// MC runs mc against the server and returns its standard output; a failure reports the
// standard error too.
func (s *Server) MC(args ...string) ([]byte, error) {
	cmd := s.MCCommand(args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("mc %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}
