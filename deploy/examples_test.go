package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tierd/tierd/config"
)

// env provides the variables the deployment examples expect from their environment.
func env(name string) (string, bool) {
	v, ok := map[string]string{
		"POD_NAME": "rocketmq-broker-0", "S3_ENDPOINT": "https://s3.us-east-1.amazonaws.com",
		"TIERD_S3_ACCESS_KEY": "AKIA", "TIERD_S3_SECRET_KEY": "secret",
	}[name]
	return v, ok
}

// The tierd configs of every deployment example are valid tierd configs.
func TestExampleConfigsValidate(t *testing.T) {
	f := func(name string, data []byte) {
		t.Helper()
		if _, err := config.Parse(data, env); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	compose, err := os.ReadFile(filepath.Join(root, "deploy/compose/tierd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f("deploy/compose/tierd.yaml", compose)
	for _, doc := range k8sDocs(t) {
		if doc["kind"] == "ConfigMap" {
			data := doc["data"].(map[string]any)
			f("kubernetes ConfigMap tierd.yaml", []byte(data["tierd.yaml"].(string)))
		}
	}
}

func k8sDocs(t *testing.T) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "deploy/kubernetes/tierd-sidecar.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for {
		var d map[string]any
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	return docs
}

// The Kubernetes example: broker and tierd share the data volume (tierd read-only), the
// config comes from the ConfigMap, credentials from the Secret; the container execs
// `tierd run`; only a liveness probe on /healthz (a readiness probe on a sidecar takes the
// broker's pod out of its Service); every container runs as the image's non-root uid,
// which is the broker's, with fsGroup giving it the volumes.
func TestKubernetesSidecar(t *testing.T) {
	var kinds []string
	var sts map[string]any
	for _, d := range k8sDocs(t) {
		kinds = append(kinds, d["kind"].(string))
		if d["kind"] == "StatefulSet" {
			sts = d
		}
	}
	if strings.Join(kinds, ",") != "ConfigMap,Secret,StatefulSet" {
		t.Fatalf("kinds %v", kinds)
	}
	get := func(v any, path ...any) any {
		for _, p := range path {
			switch k := p.(type) {
			case string:
				m, _ := v.(map[string]any)
				v = m[k]
			case int:
				l, _ := v.([]any)
				if k >= len(l) {
					return nil
				}
				v = l[k]
			}
		}
		return v
	}
	strs := func(v any) []string {
		var out []string
		for _, s := range asList(v) {
			out = append(out, s.(string))
		}
		return out
	}
	containers := get(sts, "spec", "template", "spec", "containers").([]any)
	var broker, tierd map[string]any
	for _, c := range containers {
		switch c := c.(map[string]any); c["name"] {
		case "broker":
			broker = c
		case "tierd":
			tierd = c
		}
	}
	if broker == nil || tierd == nil {
		t.Fatal("want a broker and a tierd container")
	}
	mounts := map[string]map[string]any{}
	for _, m := range tierd["volumeMounts"].([]any) {
		m := m.(map[string]any)
		mounts[m["name"].(string)] = m
	}
	if get(broker, "volumeMounts", 0, "name") != "store" || mounts["store"] == nil || mounts["store"]["readOnly"] != true {
		t.Fatal("tierd must share the broker's store volume, read-only")
	}
	if mounts["tierd-config"]["mountPath"] != "/etc/tierd" || mounts["tierd-state"] == nil {
		t.Fatal("tierd needs its config mounted at /etc/tierd and a state volume")
	}
	if get(tierd, "livenessProbe", "httpGet", "path") != "/healthz" {
		t.Error("the liveness probe must be GET /healthz")
	}
	for _, p := range []string{"readinessProbe", "startupProbe"} {
		if tierd[p] != nil {
			t.Errorf("tierd has a %s: it would gate the broker's pod", p)
		}
	}

	// The container execs `tierd run --config /etc/tierd/tierd.yaml`: its command, or
	// else the image's ENTRYPOINT, then its args (or else the image's CMD).
	entry, cmd := dockerfileExec(t)
	if c := strs(tierd["command"]); c != nil {
		entry, cmd = c, nil
	}
	if a := strs(tierd["args"]); a != nil {
		cmd = a
	}
	if got, want := append(entry, cmd...), []string{"tierd", "run", "--config", "/etc/tierd/tierd.yaml"}; !slices.Equal(got, want) {
		t.Errorf("tierd container execs %q, want %q", got, want)
	}

	uid, gid := imageUser(t)
	pod := get(sts, "spec", "template", "spec", "securityContext")
	for key, want := range map[string]any{"runAsUser": uid, "runAsGroup": gid, "fsGroup": gid, "runAsNonRoot": true} {
		if got := get(pod, key); got != want {
			t.Errorf("pod securityContext.%s = %v, want %v (the image's USER %d:%d, the broker's)", key, got, want, uid, gid)
		}
	}
	if get(tierd, "securityContext", "runAsUser") != nil {
		t.Error("tierd overrides the pod's runAsUser: it must run as the broker's uid")
	}
	if get(tierd, "securityContext", "allowPrivilegeEscalation") != false {
		t.Error("tierd must not allow privilege escalation")
	}
	secretRefs := 0
	for _, e := range tierd["env"].([]any) {
		if ref := get(e, "valueFrom"); ref != nil {
			if s, ok := ref.(map[string]any)["secretKeyRef"]; ok && s.(map[string]any)["name"] == "tierd-s3" {
				secretRefs++
			}
		}
	}
	if secretRefs != 2 {
		t.Fatalf("%d credentials from the Secret, want 2", secretRefs)
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

// unitFile parses a systemd unit: section -> key -> values (a key may repeat).
func unitFile(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string]map[string][]string{}
	section := ""
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if unit[section] != nil {
				t.Fatalf("%s:%d: section [%s] twice", path, i+1, section)
			}
			unit[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, "\\") {
				t.Fatalf("%s:%d: %q is not a key=value line in a section", path, i+1, line)
			}
			unit[section][k] = append(unit[section][k], v)
		}
	}
	return unit
}

// The systemd unit runs tierd run with the config, stops it with SIGTERM with more time
// than the default shutdown_timeout, and checks the config before starting; a reload does
// not stop it (tierd has no reload); RocketMQ's default ~/store stays visible.
func TestSystemdUnit(t *testing.T) {
	unit := unitFile(t, "deploy/systemd/tierd.service")
	svc := unit["Service"]
	one := func(k string) string {
		if len(svc[k]) != 1 {
			t.Errorf("[Service] %s set %d times, want once", k, len(svc[k]))
			return ""
		}
		return svc[k][0]
	}
	for k, want := range map[string]string{
		"ExecStart":      "/usr/local/bin/tierd run --config /etc/tierd/tierd.yaml",
		"ExecStartPre":   "/usr/local/bin/tierd config check --config /etc/tierd/tierd.yaml",
		"KillSignal":     "SIGTERM",
		"TimeoutStopSec": "60",
		"Type":           "simple",
	} {
		if got := one(k); got != want {
			t.Errorf("[Service] %s=%q, want %q", k, got, want)
		}
	}
	if unit["Install"]["WantedBy"] == nil {
		t.Error("no [Install] WantedBy: systemctl enable would do nothing")
	}
	// tierd handles no SIGHUP or reload: any ExecReload would either do nothing tierd
	// knows of or stop it (kill -TERM exits 0, which Restart=on-failure does not restart).
	if r := svc["ExecReload"]; r != nil {
		t.Errorf("ExecReload=%q: tierd has no reload", r)
	}
	// ProtectHome=true (or tmpfs) hides /home, where RocketMQ keeps ~/store by default.
	for _, v := range svc["ProtectHome"] {
		if !slices.Contains([]string{"read-only", "false", "no"}, v) {
			t.Errorf("ProtectHome=%s hides RocketMQ's default store /home/rocketmq/store; use read-only", v)
		}
	}
	// With ProtectSystem=strict, the state dir and the tier must be writable.
	if one("ProtectSystem") == "strict" {
		rw := strings.Fields(strings.Join(svc["ReadWritePaths"], " "))
		if !slices.Contains(rw, "/var/lib/tierd") && one("StateDirectory") != "tierd" {
			t.Error("ProtectSystem=strict without /var/lib/tierd writable")
		}
	}
}
