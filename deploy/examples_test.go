package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
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
// config comes from the ConfigMap, credentials from the Secret, and the probes hit
// /healthz and /readyz on the port tierd listens on.
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
				v = v.(map[string]any)[k]
			case int:
				v = v.([]any)[k]
			}
		}
		return v
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
	if get(tierd, "livenessProbe", "httpGet", "path") != "/healthz" || get(tierd, "readinessProbe", "httpGet", "path") != "/readyz" {
		t.Fatal("probes must use /healthz and /readyz")
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

// The systemd unit runs tierd run with the config, stops it with SIGTERM with more time
// than the default shutdown_timeout, and checks the config before starting.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "deploy/systemd/tierd.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	for _, want := range []string{
		"ExecStart=/usr/local/bin/tierd run --config /etc/tierd/tierd.yaml",
		"ExecStartPre=/usr/local/bin/tierd config check --config /etc/tierd/tierd.yaml",
		"KillSignal=SIGTERM", "TimeoutStopSec=60", "[Install]",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
}
