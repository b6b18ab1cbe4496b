// Package recipes holds the test of the deployment recipes in
// docs/deploy: each parses as what its tool reads, and the flags it gives
// quicksand serve are flags the server takes.
package recipes

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"

	"github.com/quicksand-go/quicksand/server"
)

// serveArgs checks that argv runs quicksand serve with flags it takes.
func serveArgs(t *testing.T, where string, argv []string) {
	t.Helper()
	i := slices.Index(argv, "serve")
	if i < 0 || !strings.HasSuffix(argv[0], "quicksand") {
		t.Fatalf("%s: %q does not run quicksand serve", where, argv)
	}
	opts, _, err := server.ParseArgs(argv[i+1:])
	if err != nil {
		t.Fatalf("%s: quicksand serve refuses %q: %v", where, argv[i+1:], err)
	}
	if !strings.Contains(opts.Listen, "0.0.0.0") || opts.TLSCert == "" || opts.KeysFile == "" {
		t.Fatalf("%s: a cluster's server listens off the loopback, so with TLS and keys: %+v", where, opts)
	}
}

func TestKubernetesManifest(t *testing.T) {
	raw, err := os.ReadFile("../../docs/deploy/kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	kinds := map[string]bool{}
	for {
		var doc struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Metadata   struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Command   []string `yaml:"command"`
							Args      []string `yaml:"args"`
							Resources struct {
								Limits map[string]string `yaml:"limits"`
							} `yaml:"resources"`
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if doc.APIVersion == "" || doc.Kind == "" || doc.Metadata.Name == "" {
			t.Fatalf("a document without apiVersion, kind or name: %+v", doc)
		}
		kinds[doc.Kind] = true
		if doc.Kind == "DaemonSet" {
			c := doc.Spec.Template.Spec.Containers
			if len(c) != 1 || c[0].Resources.Limits["devices.kubevirt.io/kvm"] == "" {
				t.Fatalf("the DaemonSet's container: %+v", c)
			}
			serveArgs(t, "kubernetes.yaml", append(c[0].Command, c[0].Args...))
		}
	}
	for _, k := range []string{"Namespace", "Secret", "DaemonSet", "Service"} {
		if !kinds[k] {
			t.Errorf("no %s in the manifest", k)
		}
	}
}

func TestNomadJob(t *testing.T) {
	raw, err := os.ReadFile("../../docs/deploy/quicksand.nomad.hcl")
	if err != nil {
		t.Fatal(err)
	}
	file, diags := hclsyntax.ParseConfig(raw, "quicksand.nomad.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	// job > group > task > config: command and args, with Nomad's runtime
	// variables standing in.
	block := func(body *hclsyntax.Body, typ string) *hclsyntax.Block {
		for _, b := range body.Blocks {
			if b.Type == typ {
				return b
			}
		}
		t.Fatalf("no %s block", typ)
		return nil
	}
	job := block(file.Body.(*hclsyntax.Body), "job")
	task := block(block(job.Body, "group").Body, "task")
	if d := task.Body.Attributes["driver"]; d == nil {
		t.Fatal("the task has no driver")
	}
	config := block(task.Body, "config").Body
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"NOMAD_SECRETS_DIR": cty.StringVal("/secrets")}}
	command, diags := config.Attributes["command"].Expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	args, diags := config.Attributes["args"].Expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	argv := []string{command.AsString()}
	for _, a := range args.AsValueSlice() {
		argv = append(argv, a.AsString())
	}
	serveArgs(t, "quicksand.nomad.hcl", argv)
}
