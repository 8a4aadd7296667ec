// Package kubernetes holds the Kubernetes manifests; this test is all
// there is of it in Go. No cluster runs here, and kubectl validates
// against a server's schemas only, so the test checks what a cluster
// would take for granted and nothing else catches: every manifest decodes
// strictly into the fields it may have, the selectors pick the pods, the
// ports and probes name what exists (the probe paths answer on a real
// server), every secret the pods read is in the Secret, and the
// configuration in the ConfigMap passes `aero2 check`. `kubectl kustomize`
// (offline) builds the whole.
package kubernetes

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
)

// The parts of the Kubernetes API the manifests use, decoded strictly
// (KnownFields): a misspelt or misplaced key fails here, as the API
// server would refuse it.

type meta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type selector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type portRef = yaml.Node // a number or a name

type probe struct {
	HTTPGet *struct {
		Path string  `yaml:"path"`
		Port portRef `yaml:"port"`
	} `yaml:"httpGet"`
	TCPSocket *struct {
		Port portRef `yaml:"port"`
	} `yaml:"tcpSocket"`
	InitialDelaySeconds int `yaml:"initialDelaySeconds"`
	PeriodSeconds       int `yaml:"periodSeconds"`
	FailureThreshold    int `yaml:"failureThreshold"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	StartupProbe   *probe `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type podSpec struct {
	TerminationGracePeriodSeconds int  `yaml:"terminationGracePeriodSeconds"`
	AutomountServiceAccountToken  bool `yaml:"automountServiceAccountToken"`
	SecurityContext               struct {
		RunAsNonRoot   bool `yaml:"runAsNonRoot"`
		RunAsUser      int  `yaml:"runAsUser"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	TopologySpreadConstraints []struct {
		MaxSkew           int      `yaml:"maxSkew"`
		TopologyKey       string   `yaml:"topologyKey"`
		WhenUnsatisfiable string   `yaml:"whenUnsatisfiable"`
		LabelSelector     selector `yaml:"labelSelector"`
	} `yaml:"topologySpreadConstraints"`
	Containers []container `yaml:"containers"`
	Volumes    []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type podTemplate struct {
	Metadata meta    `yaml:"metadata"`
	Spec     podSpec `yaml:"spec"`
}

type workload struct {
	Replicas *int     `yaml:"replicas"`
	Selector selector `yaml:"selector"`
	Strategy struct {
		Type          string `yaml:"type"`
		RollingUpdate struct {
			MaxUnavailable int `yaml:"maxUnavailable"`
			MaxSurge       int `yaml:"maxSurge"`
		} `yaml:"rollingUpdate"`
	} `yaml:"strategy"`
	ServiceName          string      `yaml:"serviceName"`
	Template             podTemplate `yaml:"template"`
	VolumeClaimTemplates []struct {
		Metadata meta `yaml:"metadata"`
		Spec     struct {
			AccessModes []string `yaml:"accessModes"`
			Resources   struct {
				Requests map[string]string `yaml:"requests"`
			} `yaml:"resources"`
		} `yaml:"spec"`
	} `yaml:"volumeClaimTemplates"`
}

type serviceSpec struct {
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Name       string  `yaml:"name"`
		Port       int     `yaml:"port"`
		TargetPort portRef `yaml:"targetPort"`
	} `yaml:"ports"`
}

type ingressSpec struct {
	IngressClassName string `yaml:"ingressClassName"`
	TLS              []struct {
		Hosts      []string `yaml:"hosts"`
		SecretName string   `yaml:"secretName"`
	} `yaml:"tls"`
	Rules []struct {
		Host string `yaml:"host"`
		HTTP struct {
			Paths []struct {
				Path     string `yaml:"path"`
				PathType string `yaml:"pathType"`
				Backend  struct {
					Service struct {
						Name string `yaml:"name"`
						Port struct {
							Name   string `yaml:"name"`
							Number int    `yaml:"number"`
						} `yaml:"port"`
					} `yaml:"service"`
				} `yaml:"backend"`
			} `yaml:"paths"`
		} `yaml:"http"`
	} `yaml:"rules"`
}

type pdbSpec struct {
	MinAvailable   *int     `yaml:"minAvailable"`
	MaxUnavailable *int     `yaml:"maxUnavailable"`
	Selector       selector `yaml:"selector"`
}

type serviceMonitorSpec struct {
	Selector  selector `yaml:"selector"`
	Endpoints []struct {
		Port     string `yaml:"port"`
		Path     string `yaml:"path"`
		Interval string `yaml:"interval"`
	} `yaml:"endpoints"`
}

// kinds are the API versions and kinds the manifests may use, each with
// the type its spec decodes into.
var kinds = map[string]func() any{
	"v1/ConfigMap":                            nil, // data, not spec
	"v1/Secret":                               nil,
	"v1/Service":                              func() any { return new(serviceSpec) },
	"apps/v1/Deployment":                      func() any { return new(workload) },
	"apps/v1/StatefulSet":                     func() any { return new(workload) },
	"networking.k8s.io/v1/Ingress":            func() any { return new(ingressSpec) },
	"policy/v1/PodDisruptionBudget":           func() any { return new(pdbSpec) },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return new(serviceMonitorSpec) },
}

type object struct {
	file, kind string
	meta       meta
	spec       any
	data       map[string]string // ConfigMap data, Secret stringData
}

func decodeStrict(t *testing.T, where string, n *yaml.Node, into any) {
	t.Helper()
	var buf bytes.Buffer
	if err := yaml.NewEncoder(&buf).Encode(n); err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil {
		t.Errorf("%s: %v", where, err)
	}
}

// load reads every object of the manifests named.
func load(t *testing.T, files ...string) []object {
	t.Helper()
	var out []object
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc yaml.Node
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var top struct {
				APIVersion string            `yaml:"apiVersion"`
				Kind       string            `yaml:"kind"`
				Metadata   yaml.Node         `yaml:"metadata"`
				Spec       yaml.Node         `yaml:"spec"`
				Type       string            `yaml:"type"`
				Data       map[string]string `yaml:"data"`
				StringData map[string]string `yaml:"stringData"`
			}
			decodeStrict(t, f, &doc, &top)
			kind := top.APIVersion + "/" + top.Kind
			newSpec, known := kinds[kind]
			if !known {
				t.Errorf("%s: unexpected %s", f, kind)
				continue
			}
			o := object{file: filepath.Base(f), kind: top.Kind}
			decodeStrict(t, f+" metadata", &top.Metadata, &o.meta)
			if o.meta.Name == "" {
				t.Errorf("%s: %s without metadata.name", f, kind)
			}
			if newSpec != nil {
				o.spec = newSpec()
				decodeStrict(t, f+" "+top.Kind+".spec", &top.Spec, o.spec)
			} else {
				o.data = top.Data
				if top.Kind == "Secret" {
					o.data = top.StringData
				}
			}
			out = append(out, o)
		}
	}
	return out
}

func find[T any](t *testing.T, objs []object, kind, name string) T {
	t.Helper()
	for _, o := range objs {
		if o.kind == kind && o.meta.Name == name {
			if o.spec == nil {
				var zero T
				if d, ok := any(o.data).(T); ok {
					return d
				}
				return zero
			}
			return o.spec.(T)
		}
	}
	t.Fatalf("no %s %q", kind, name)
	var zero T
	return zero
}

// subset reports whether every label of sel is in labels (a selector
// selects what carries its labels), and sel is not empty.
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// resources are the files kustomization.yaml applies.
func resources(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Namespace  string `yaml:"namespace"`
		Labels     []struct {
			Pairs map[string]string `yaml:"pairs"`
		} `yaml:"labels"`
		Resources []string `yaml:"resources"`
		Images    []struct {
			Name    string `yaml:"name"`
			NewName string `yaml:"newName"`
			NewTag  string `yaml:"newTag"`
		} `yaml:"images"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" || k.Namespace == "" {
		t.Errorf("kustomization.yaml: %s %s, namespace %q", k.APIVersion, k.Kind, k.Namespace)
	}
	all, _ := filepath.Glob("*.yaml")
	for _, f := range all {
		if f != "kustomization.yaml" && f != "secret.example.yaml" && !slices.Contains(k.Resources, f) {
			t.Errorf("%s is not among kustomization.yaml's resources", f)
		}
	}
	if slices.Contains(k.Resources, "secret.example.yaml") {
		t.Error("kustomization.yaml applies the example Secret")
	}
	return k.Resources
}

func portName(n portRef) (string, int) {
	if n.Tag == "!!int" {
		i, _ := strconv.Atoi(n.Value)
		return "", i
	}
	return n.Value, 0
}

// containerPort resolves a probe's or Service's port (a name or a
// number) to a container port, or 0.
func containerPort(c container, ref portRef) int {
	name, num := portName(ref)
	for _, p := range c.Ports {
		if (name != "" && p.Name == name) || (num != 0 && p.ContainerPort == num) {
			return p.ContainerPort
		}
	}
	return 0
}

func TestManifests(t *testing.T) {
	objs := load(t, resources(t)...)
	secret := find[map[string]string](t, load(t, "secret.example.yaml"), "Secret", "aero2")

	dep := find[*workload](t, objs, "Deployment", "aero2")
	pod := dep.Template
	if dep.Replicas == nil || *dep.Replicas != 2 {
		t.Errorf("replicas: %v, want 2", dep.Replicas)
	}
	if !subset(dep.Selector.MatchLabels, pod.Metadata.Labels) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", dep.Selector.MatchLabels, pod.Metadata.Labels)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if _, ok := secret[ref.Key]; ref.Name != "aero2" || !ok {
				t.Errorf("env %s reads %s/%s, which the Secret does not have", e.Name, ref.Name, ref.Key)
			}
			// A value of the length `aero2 secret` prints.
			env[e.Name] = "value-of-" + ref.Key + "-0123456789abcdefghijklmnopqrstuvwxyz"
		default:
			env[e.Name] = e.Value
		}
	}
	for name, p := range map[string]*probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no %s probe", name)
			continue
		}
		if want := map[string]string{"readiness": "/readyz", "liveness": "/healthz", "startup": "/healthz"}[name]; p.HTTPGet.Path != want {
			t.Errorf("%s probe on %s, want %s", name, p.HTTPGet.Path, want)
		}
		if containerPort(c, p.HTTPGet.Port) == 0 {
			t.Errorf("%s probe port %q is none of the container's", name, p.HTTPGet.Port.Value)
		}
	}
	if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation || !c.SecurityContext.ReadOnlyRootFilesystem ||
		!slices.Equal(c.SecurityContext.Capabilities.Drop, []string{"ALL"}) || !pod.Spec.SecurityContext.RunAsNonRoot {
		t.Error("the container may escalate, write its root file system, keep capabilities or run as root")
	}

	// The configuration: where the pod mounts it, that the kubelet can
	// update it (no subPath) for watch_config, and that it passes check.
	if len(c.Args) != 3 || c.Args[0] != "serve" || c.Args[1] != "--config" {
		t.Fatalf("args %q", c.Args)
	}
	cfgPath := c.Args[2]
	var cmName string
	for _, m := range c.VolumeMounts {
		if rel, ok := strings.CutPrefix(cfgPath, m.MountPath+"/"); ok {
			if m.SubPath != "" {
				t.Error("the configuration is mounted with subPath: the kubelet never updates it, and watch_config sees no change")
			}
			for _, v := range pod.Spec.Volumes {
				if v.Name == m.Name && v.ConfigMap != nil {
					cmName = v.ConfigMap.Name
				}
			}
			cfgPath = rel
		}
	}
	cm := find[map[string]string](t, objs, "ConfigMap", cmName)
	body, ok := cm[cfgPath]
	if !ok {
		t.Fatalf("ConfigMap %s has no %s", cmName, cfgPath)
	}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`).FindAllStringSubmatch(body, -1) {
		if _, ok := env[m[1]]; !ok {
			t.Errorf("the configuration reads ${%s}, which the container's env does not set", m[1])
		}
	}
	cfg, err := config.Parse("configmap.yaml:"+cfgPath, []byte(body), getenv)
	if err != nil {
		t.Fatalf("the ConfigMap's configuration:\n%v", err)
	}
	if err := server.Check(context.Background(), cfg, nil); err != nil {
		t.Fatalf("aero2 check of the ConfigMap's configuration:\n%v", err)
	}
	if !cfg.Server.WatchConfig || cfg.Store.Type != "redis" {
		t.Errorf("watch_config %v, store %s: two replicas need redis", cfg.Server.WatchConfig, cfg.Store.Type)
	}
	_, listenPort, _ := net.SplitHostPort(cfg.Server.Listen)
	httpPort := containerPort(c, yaml.Node{Kind: yaml.ScalarNode, Value: "http"})
	if listenPort != strconv.Itoa(httpPort) {
		t.Errorf("server.listen %s, container port http %d", cfg.Server.Listen, httpPort)
	}
	if dep.Template.Spec.TerminationGracePeriodSeconds <= int(cfg.Server.ShutdownTimeout.Seconds()) {
		t.Errorf("terminationGracePeriodSeconds %d is not longer than server.shutdown_timeout %s", dep.Template.Spec.TerminationGracePeriodSeconds, cfg.Server.ShutdownTimeout)
	}

	// The Services select the pods and target ports they have.
	svc := find[*serviceSpec](t, objs, "Service", "aero2")
	if !subset(svc.Selector, pod.Metadata.Labels) {
		t.Errorf("Service aero2 selects %v, not the pods %v", svc.Selector, pod.Metadata.Labels)
	}
	svcPorts := map[string]bool{}
	for _, p := range svc.Ports {
		svcPorts[p.Name] = true
		if containerPort(c, p.TargetPort) == 0 {
			t.Errorf("Service port %s targets %q, none of the container's ports", p.Name, p.TargetPort.Value)
		}
	}
	var svcLabels map[string]string
	for _, o := range objs {
		if o.kind == "Service" && o.meta.Name == "aero2" {
			svcLabels = o.meta.Labels
		}
	}
	ing := find[*ingressSpec](t, objs, "Ingress", "aero2")
	hosts := map[string]bool{}
	for _, r := range ing.Rules {
		hosts[r.Host] = true
		for _, p := range r.HTTP.Paths {
			port := p.Backend.Service.Port
			if p.Backend.Service.Name != "aero2" || port.Name != "http" || port.Number != 0 {
				t.Errorf("Ingress %s%s goes to %s port %+v, not the Service's http port", r.Host, p.Path, p.Backend.Service.Name, port)
			}
		}
	}
	// Every host Aero2 answers for reaches it: its issuers and routes.
	for _, a := range cfg.Apps() {
		host, _, _ := config.IssuerHostPath(a.Issuer)
		if !hosts[host] {
			t.Errorf("the Ingress has no rule for the issuer's host %s", host)
		}
		for _, r := range a.ProxyRoutes() {
			if r.Host != "" && !hosts[r.Host] {
				t.Errorf("the Ingress has no rule for route host %s", r.Host)
			}
		}
	}
	pdb := find[*pdbSpec](t, objs, "PodDisruptionBudget", "aero2")
	if !subset(pdb.Selector.MatchLabels, pod.Metadata.Labels) || pdb.MinAvailable == nil || *pdb.MinAvailable < 1 || *pdb.MinAvailable >= *dep.Replicas {
		t.Errorf("PodDisruptionBudget: selector %v, minAvailable %v of %d replicas", pdb.Selector.MatchLabels, pdb.MinAvailable, *dep.Replicas)
	}
	sm := find[*serviceMonitorSpec](t, objs, "ServiceMonitor", "aero2")
	if !subset(sm.Selector.MatchLabels, svcLabels) || len(sm.Endpoints) == 0 {
		t.Errorf("the ServiceMonitor selects %v, not the Service's labels %v", sm.Selector.MatchLabels, svcLabels)
	}
	for _, e := range sm.Endpoints {
		if !svcPorts[e.Port] || e.Port == "http" || e.Path != "/metrics" {
			t.Errorf("the ServiceMonitor scrapes port %q path %q: the metrics port of the Service, never the public one", e.Port, e.Path)
		}
	}

	// Redis: the address the configuration names is its Service's.
	rsvc := find[*serviceSpec](t, objs, "Service", "redis")
	redis := find[*workload](t, objs, "StatefulSet", "redis")
	if !subset(rsvc.Selector, redis.Template.Metadata.Labels) || subset(rsvc.Selector, pod.Metadata.Labels) {
		t.Errorf("Service redis selects %v", rsvc.Selector)
	}
	want := []string{"redis:" + strconv.Itoa(rsvc.Ports[0].Port)}
	if !slices.Equal(cfg.Store.Redis.Addrs, want) {
		t.Errorf("store.redis.addrs %v, want %v", cfg.Store.Redis.Addrs, want)
	}
	if containerPort(redis.Template.Spec.Containers[0], rsvc.Ports[0].TargetPort) != 6379 {
		t.Error("Service redis does not reach Redis's port")
	}
}

// TestProbePathsAnswer: the paths the Deployment's probes ask answer 200
// on a real server (that /readyz answers 503 without the store is tested
// in server/).
func TestProbePathsAnswer(t *testing.T) {
	c := find[*workload](t, load(t, "deployment.yaml"), "Deployment", "aero2").Template.Spec.Containers[0]
	in := servertest.Start(t, servertest.DevConfig, nil)
	for _, p := range []*probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
		res, err := http.Get(in.URL + p.HTTPGet.Path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p.HTTPGet.Path, res.StatusCode)
		}
	}
}

// TestKustomizeBuilds: kubectl builds the kustomization offline, and
// what it builds is the resources, in the namespace, with the image
// replaced. kubectl is required: ./scripts/test installs it.
func TestKustomizeBuilds(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl is required (./scripts/test installs it): ", err)
	}
	cmd := exec.Command(kubectl, "kustomize", ".")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(t.TempDir(), "none"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
	f := filepath.Join(t.TempDir(), "built.yaml")
	if err := os.WriteFile(f, out, 0o600); err != nil {
		t.Fatal(err)
	}
	objs := load(t, f)
	if len(objs) != 8 {
		t.Errorf("kubectl kustomize built %d objects, want 8", len(objs))
	}
	for _, o := range objs {
		if o.meta.Namespace != "aero2" || o.meta.Labels["app.kubernetes.io/part-of"] != "aero2" {
			t.Errorf("%s %s: namespace %q, labels %v", o.kind, o.meta.Name, o.meta.Namespace, o.meta.Labels)
		}
	}
	dep := find[*workload](t, objs, "Deployment", "aero2")
	if img := dep.Template.Spec.Containers[0].Image; img != "registry.example.com/aero2:latest" {
		t.Errorf("image %q", img)
	}
}
