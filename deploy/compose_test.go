package deploy_test

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The subset of the Compose file format docker-compose.yml uses; decoding is strict, so
// a misspelt key fails the test.
type compose struct {
	Name     string              `yaml:"name"`
	Services map[string]service  `yaml:"services"`
	Volumes  map[string]struct{} `yaml:"volumes"`
}

type service struct {
	Image       string               `yaml:"image"`
	Build       string               `yaml:"build"`
	Entrypoint  []string             `yaml:"entrypoint"`
	Command     []string             `yaml:"command"`
	Environment map[string]string    `yaml:"environment"`
	Ports       []string             `yaml:"ports"`
	Volumes     []string             `yaml:"volumes"`
	DependsOn   map[string]dependsOn `yaml:"depends_on"`
	Healthcheck *struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
		Timeout  string   `yaml:"timeout"`
		Retries  int      `yaml:"retries"`
	} `yaml:"healthcheck"`
	Restart string `yaml:"restart"`
}

type dependsOn struct {
	Condition string `yaml:"condition"`
}

// The parts of tierd's configuration the demo wiring depends on.
type tierdConfig struct {
	Node     string `yaml:"node"`
	StateDir string `yaml:"state_dir"`
	Memory   struct {
		BufferPool string `yaml:"buffer_pool"`
		BufferSize string `yaml:"buffer_size"`
	} `yaml:"memory"`
	Sources []map[string]string `yaml:"sources"`
	Tiers   []map[string]string `yaml:"tiers"`
	Local   map[string]string   `yaml:"local"`
	HTTP    struct {
		Listen string `yaml:"listen"`
	} `yaml:"http"`
}

const root = ".."

func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestCompose(t *testing.T) {
	var c compose
	decodeStrict(t, "docker-compose.yml", &c)
	for _, name := range []string{"minio", "createbucket", "brokersim", "tierd"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("service %q missing", name)
		}
	}
	for name, s := range c.Services {
		if s.Image == "" && s.Build == "" {
			t.Errorf("service %s has neither image nor build", name)
		}
		if s.Build != "" {
			if _, err := os.Stat(filepath.Join(root, s.Build, "Dockerfile")); err != nil {
				t.Errorf("service %s builds %q, which has no Dockerfile: %v", name, s.Build, err)
			}
		}
		for dep, d := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("service %s depends on unknown service %s", name, dep)
			}
			if !slices.Contains([]string{"service_started", "service_healthy", "service_completed_successfully"}, d.Condition) {
				t.Errorf("service %s: depends_on %s condition %q", name, dep, d.Condition)
			}
			if d.Condition == "service_healthy" && c.Services[dep].Healthcheck == nil {
				t.Errorf("service %s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src, _, ok := strings.Cut(v, ":")
			if !ok {
				t.Errorf("service %s: volume %q has no target", name, v)
				continue
			}
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("service %s mounts %s, which does not exist: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s uses volume %s, which is not declared", name, src)
			}
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("service %s publishes %s beyond loopback", name, p)
			}
		}
	}
	for v := range c.Volumes {
		used := false
		for _, s := range c.Services {
			for _, m := range s.Volumes {
				used = used || strings.HasPrefix(m, v+":")
			}
		}
		if !used {
			t.Errorf("volume %s is declared but unused", v)
		}
	}

	// The Dockerfile builds the commands the services run, and they exist.
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"cmd/tierd", "devtools/cmd/brokersim"} {
		if !bytes.Contains(dockerfile, []byte("./"+cmd)) {
			t.Errorf("Dockerfile does not build ./%s", cmd)
		}
		if _, err := os.Stat(filepath.Join(root, cmd)); err != nil {
			t.Errorf("%s: %v", cmd, err)
		}
	}

	// tierd runs the config file mounted from deploy/compose/tierd.yaml: the command
	// follows the image's ENTRYPOINT.
	td := c.Services["tierd"]
	if got, want := execs(t, td), []string{"tierd", "run", "--config", "/etc/tierd/tierd.yaml"}; !slices.Equal(got, want) {
		t.Fatalf("tierd service execs %q, want %q", got, want)
	}
	if !slices.Contains(td.Volumes, "./deploy/compose/tierd.yaml:/etc/tierd/tierd.yaml:ro") {
		t.Fatalf("tierd does not mount deploy/compose/tierd.yaml at /etc/tierd/tierd.yaml: %q", td.Volumes)
	}
	var cfg tierdConfig
	decodeStrict(t, "deploy/compose/tierd.yaml", &cfg)
	if cfg.Node == "" || cfg.StateDir == "" || len(cfg.Sources) != 1 || len(cfg.Tiers) != 2 || cfg.HTTP.Listen == "" {
		t.Fatalf("tierd.yaml lacks node, state_dir, a source, the two tiers or http.listen: %+v", cfg)
	}

	// The source is the store brokersim writes, through the same volume.
	bs := c.Services["brokersim"]
	storeDir := ""
	for _, a := range strings.Fields(strings.Join(bs.Command, " ")) {
		if v, ok := strings.CutPrefix(a, "--dir="); ok {
			storeDir = v
		}
	}
	if src := cfg.Sources[0]; src["path"] != storeDir || src["layout"] != "rocketmq" {
		t.Errorf("tierd reads %s (%s), brokersim writes rocketmq at %s", src["path"], src["layout"], storeDir)
	}
	if sharedVolume(bs, storeDir) == "" || sharedVolume(bs, storeDir) != sharedVolume(td, storeDir) {
		t.Errorf("brokersim and tierd do not share the volume holding %s", storeDir)
	}
	if !mountedAt(td, cfg.StateDir) {
		t.Errorf("tierd's state_dir %s is not on a volume", cfg.StateDir)
	}

	// The hot tier is a posix tier on a volume of its own.
	if hdd := cfg.Tiers[0]; hdd["type"] != "posix" || !mountedAt(td, hdd["path"]) {
		t.Errorf("first tier %v is not a posix tier on a tierd volume", hdd)
	}
	// The cold tier points at the minio service, with the bucket createbucket makes and
	// the credentials MinIO is started with.
	tier := cfg.Tiers[1]
	u, err := url.Parse(tier["endpoint"])
	if err != nil || u.Hostname() != "minio" || u.Port() != "9000" {
		t.Errorf("tier endpoint %q is not the minio service", tier["endpoint"])
	}
	if tier["type"] != "s3" || !slices.Contains([]string{"aws", "minio"}, tier["driver"]) || tier["path_style"] != "true" {
		t.Errorf("tier %v is not an s3 tier for MinIO", tier)
	}
	if cb := c.Services["createbucket"].Command; !slices.Contains(cb, "local/"+tier["bucket"]) {
		t.Errorf("createbucket runs %q, not making bucket %s", cb, tier["bucket"])
	}
	for key, vars := range map[string][2]string{
		"access_key": {"TIERD_S3_ACCESS_KEY", "MINIO_ROOT_USER"},
		"secret_key": {"TIERD_S3_SECRET_KEY", "MINIO_ROOT_PASSWORD"},
	} {
		if tier[key] != "${"+vars[0]+"}" {
			t.Errorf("tier %s is %q, want ${%s}", key, tier[key], vars[0])
		}
		if v := td.Environment[vars[0]]; v == "" || v != c.Services["minio"].Environment[vars[1]] {
			t.Errorf("tierd's %s is not MinIO's %s", vars[0], vars[1])
		}
	}
	for _, k := range []string{"region", "bucket", "prefix", "part_size", "part_concurrency", "reap_after", "rate_limit", "concurrency", "sse"} {
		if tier[k] == "" {
			t.Errorf("tier key %s missing from the demo config", k)
		}
	}
}

// execs returns the argv a service's container runs: its entrypoint (or the image's, from
// the Dockerfile, for a service built from it) followed by its command.
func execs(t *testing.T, s service) []string {
	t.Helper()
	entry := s.Entrypoint
	if entry == nil && s.Build != "" {
		entry, _ = dockerfileExec(t)
	}
	return append(slices.Clone(entry), s.Command...)
}

// dockerfileExec returns the final stage's exec-form ENTRYPOINT and CMD.
func dockerfileExec(t *testing.T) (entrypoint, cmd []string) {
	t.Helper()
	for _, line := range dockerfileLines(t) {
		kw, rest, _ := strings.Cut(line, " ")
		var v []string
		switch strings.ToUpper(kw) {
		case "FROM":
			entrypoint, cmd = nil, nil
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				t.Fatalf("Dockerfile: ENTRYPOINT %s is not the exec form: %v", rest, err)
			}
			entrypoint = v
		case "CMD":
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				t.Fatalf("Dockerfile: CMD %s is not the exec form: %v", rest, err)
			}
			cmd = v
		}
	}
	return entrypoint, cmd
}

// dockerfileLines returns the Dockerfile's instructions, continuation lines joined and
// comments dropped.
func dockerfileLines(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	cur := ""
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") || (l == "" && cur == "") {
			continue
		}
		if c, ok := strings.CutSuffix(l, "\\"); ok {
			cur += c + " "
			continue
		}
		lines = append(lines, strings.TrimSpace(cur+l))
		cur = ""
	}
	return lines
}

// The image runs as a non-root numeric user (so Kubernetes' runAsNonRoot can check it),
// and `docker run IMAGE run --config ...` execs `tierd run --config ...`.
func TestDockerfileImage(t *testing.T) {
	entry, cmd := dockerfileExec(t)
	if !slices.Equal(entry, []string{"tierd"}) {
		t.Errorf("ENTRYPOINT %q, want [\"tierd\"] so that arguments are tierd's", entry)
	}
	if len(cmd) == 0 {
		t.Error("no CMD: a bare `docker run` should print tierd's help")
	}
	if uid, _ := imageUser(t); uid == 0 {
		t.Error("the image runs as root")
	}
}

// imageUser returns the final stage's numeric USER.
func imageUser(t *testing.T) (uid, gid int) {
	t.Helper()
	user := ""
	for _, line := range dockerfileLines(t) {
		kw, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(kw) {
		case "FROM":
			user = ""
		case "USER":
			user = strings.TrimSpace(rest)
		}
	}
	u, g, _ := strings.Cut(user, ":")
	uid, err := strconv.Atoi(u)
	if err != nil {
		t.Fatalf("Dockerfile USER %q is not numeric uid:gid", user)
	}
	if gid, err = strconv.Atoi(g); err != nil {
		t.Fatalf("Dockerfile USER %q is not numeric uid:gid", user)
	}
	return uid, gid
}

// A second `docker compose up` works: the brokersim service's command, run twice against
// the same store (with a brokersim that, like the real one, refuses a non-empty --dir),
// succeeds both times and writes the store once.
func TestComposeUpTwice(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to run the service's command with")
	}
	var c compose
	decodeStrict(t, "docker-compose.yml", &c)
	argv := execs(t, c.Services["brokersim"])
	if len(argv) != 3 || argv[0] != "sh" || argv[1] != "-c" {
		t.Fatalf("brokersim execs %q, want sh -c SCRIPT", argv)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	fake := `#!/bin/sh
for a in "$@"; do case "$a" in --dir=*) d="${a#--dir=}";; esac; done
if [ -d "$d" ] && [ -n "$(ls -A "$d")" ]; then echo "$d is not empty" >&2; exit 1; fi
mkdir -p "$d" && echo run >> "$d/../runs" && touch "$d/commitlog"
`
	if err := os.WriteFile(filepath.Join(bin, "brokersim"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	script := strings.ReplaceAll(argv[2], "/data/", dir+"/data/")
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("up #%d: %v\n%s", i+1, err, out)
		}
	}
	runs, err := os.ReadFile(filepath.Join(dir, "data", "runs"))
	if err != nil || string(runs) != "run\n" {
		t.Fatalf("brokersim ran %q times (%v), want once", runs, err)
	}
}

// sharedVolume returns the named volume s mounts at (or above) dir.
func sharedVolume(s service, dir string) string {
	for _, m := range s.Volumes {
		parts := strings.Split(m, ":")
		if len(parts) >= 2 && !strings.HasPrefix(parts[0], ".") && (dir == parts[1] || strings.HasPrefix(dir, parts[1]+"/")) {
			return parts[0]
		}
	}
	return ""
}

func mountedAt(s service, dir string) bool { return sharedVolume(s, dir) != "" }
