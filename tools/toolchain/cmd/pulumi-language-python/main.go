// Command pulumi-language-python is virtstack's own Python language host for the
// Pulumi engine.
//
// Pulumi's language host module is not served by the Go module proxy this project
// can reach, so this is a small replacement written against the public gRPC
// interface of github.com/pulumi/pulumi/sdk/v3. It runs programs through the
// `pulumi-language-python-exec` script shipped in that same sdk module (copied
// next to this binary by tools/toolchain.sh) and finds the Python interpreter from
// the project's runtime options (virtualenv), $PULUMI_PYTHON_CMD or PATH.
//
// It deliberately does not create virtualenvs or install packages: the project's
// own tooling (uv / pip) owns the environment.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// bailExitCode is what the exec script exits with after it already reported a
// user-facing error through the engine; the engine must not print another one.
const bailExitCode = 32

// execScriptName is the runner shipped in the sdk/v3 module (python/cmd/).
const execScriptName = "pulumi-language-python-exec"

// pluginListScript prints the Pulumi plugins that the installed Python packages ask
// for, as JSON. Each Pulumi provider SDK ships a pulumi-plugin.json at the top of its
// package, so a glob over the import path finds them; reading every distribution's file
// list (importlib.metadata) instead took several times longer, before every run.
const pluginListScript = `
import glob, json, os, sys
seen, out = set(), []
for entry in sys.path:
    pattern = os.path.join(glob.escape(entry or "."), "*", "pulumi-plugin.json")
    for path in sorted(glob.glob(pattern)):
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        if not data.get("resource") or not data.get("name"):
            continue
        key = (data["name"], data.get("version", ""))
        if key in seen:
            continue
        seen.add(key)
        out.append({"name": data["name"], "version": data.get("version", ""),
                    "server": data.get("server", ""),
                    "parameterization": data.get("parameterization")})
print(json.dumps(out))
`

// distListScript prints every installed distribution as JSON (name, version).
const distListScript = `
import json, importlib.metadata as md
print(json.dumps(sorted({(d.metadata["Name"] or "", d.version) for d in md.distributions()})))
`

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	engineAddress string
	execScript    string
}

func main() {
	// Flags the engine may pass to every plugin (-v and -logtostderr come from glog,
	// which the sdk links in), and legacy flags of Pulumi's own Python host: all
	// accepted, none used.
	for _, name := range []string{"tracing", "root", "virtualenv", "typechecker", "toolchain"} {
		if flag.Lookup(name) == nil {
			flag.String(name, "", "accepted for compatibility; ignored")
		}
	}
	flag.Parse()

	self, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	h := &host{
		engineAddress: flag.Arg(0),
		execScript:    filepath.Join(filepath.Dir(self), execScriptName),
	}
	if _, err := os.Stat(h.execScript); err != nil {
		fatal(fmt.Errorf("missing executor %s next to the language host: run tools/toolchain.sh", h.execScript))
	}

	cancel := make(chan bool)
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancel,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, h)
			return nil
		},
		Options: rpcutil.OpenTracingServerInterceptorOptions(nil),
	})
	if err != nil {
		fatal(err)
	}
	// The engine reads the port from the first line of stdout.
	fmt.Println(handle.Port)
	if err := <-handle.Done; err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
	os.Exit(1)
}

// python returns the interpreter for a program: the project's virtualenv when its
// runtime options name one (uv's default .venv when toolchain is uv), else
// $PULUMI_PYTHON_CMD, else python3 from PATH.
func python(info *pulumirpc.ProgramInfo) (string, error) {
	var opts map[string]any
	root := ""
	if info != nil {
		root = info.GetRootDirectory()
		if info.GetOptions() != nil {
			opts = info.GetOptions().AsMap()
		}
	}
	venv, _ := opts["virtualenv"].(string)
	if venv == "" {
		if tc, _ := opts["toolchain"].(string); tc == "uv" {
			venv = ".venv"
		}
	}
	if venv != "" {
		if !filepath.IsAbs(venv) {
			venv = filepath.Join(root, venv)
		}
		exe := filepath.Join(venv, "bin", "python")
		if _, err := os.Stat(exe); err != nil {
			return "", fmt.Errorf("virtualenv %s has no bin/python: create it first", venv)
		}
		return exe, nil
	}
	if cmd := os.Getenv("PULUMI_PYTHON_CMD"); cmd != "" {
		return exec.LookPath(cmd)
	}
	return exec.LookPath("python3")
}

// runScript runs a short Python snippet with the program's interpreter.
func runScript(ctx context.Context, info *pulumirpc.ProgramInfo, script string) ([]byte, error) {
	exe, err := python(info)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "-c", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", exe, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (h *host) Handshake(
	_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.engineAddress = req.GetEngineAddress()
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

type pythonPlugin struct {
	Name             string `json:"name"`
	Version          string `json:"version"`
	Server           string `json:"server"`
	Parameterization *struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Value   []byte `json:"value"`
	} `json:"parameterization"`
}

func (h *host) pythonPlugins(ctx context.Context, info *pulumirpc.ProgramInfo) ([]pythonPlugin, error) {
	out, err := runScript(ctx, info, pluginListScript)
	if err != nil {
		return nil, err
	}
	var plugins []pythonPlugin
	if err := json.Unmarshal(out, &plugins); err != nil {
		return nil, fmt.Errorf("reading plugin list: %w", err)
	}
	return plugins, nil
}

func (h *host) GetRequiredPlugins(
	ctx context.Context, req *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	plugins, err := h.pythonPlugins(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetRequiredPluginsResponse{}
	for _, p := range plugins {
		resp.Plugins = append(resp.Plugins, &pulumirpc.PluginDependency{
			Name: p.Name, Kind: "resource", Version: p.Version, Server: p.Server,
		})
	}
	return resp, nil
}

func (h *host) GetRequiredPackages(
	ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	plugins, err := h.pythonPlugins(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetRequiredPackagesResponse{}
	for _, p := range plugins {
		dep := &pulumirpc.PackageDependency{
			Name: p.Name, Kind: "resource", Version: p.Version, Server: p.Server,
		}
		if p.Parameterization != nil {
			dep.Parameterization = &pulumirpc.PackageParameterization{
				Name:    p.Parameterization.Name,
				Version: p.Parameterization.Version,
				Value:   p.Parameterization.Value,
			}
		}
		resp.Packages = append(resp.Packages, dep)
	}
	return resp, nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	info := req.GetInfo()
	exe, err := python(info)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}

	// The program is the entry point inside the program directory: "." (the
	// directory's __main__.py) or a file name.
	program := req.GetProgram()
	if info != nil {
		entry := info.GetEntryPoint()
		if entry == "" {
			entry = "."
		}
		program = filepath.Join(info.GetProgramDirectory(), entry)
	}

	engine := h.engineAddress
	args := []string{"-u", h.execScript,
		"--monitor", req.GetMonitorAddress(),
		"--engine", engine,
		"--project", req.GetProject(),
		"--stack", req.GetStack(),
		"--pwd", req.GetPwd(),
		"--dry_run", strconv.FormatBool(req.GetDryRun()),
		"--parallel", strconv.Itoa(int(req.GetParallel())),
	}
	if org := req.GetOrganization(); org != "" {
		args = append(args, "--organization", org)
	}
	if info != nil && info.GetRootDirectory() != "" {
		args = append(args, "--root_directory", info.GetRootDirectory())
	}
	args = append(args, program)
	args = append(args, req.GetArgs()...)

	// The SDK parses these as a JSON object and array: never send null.
	configMap, keys := req.GetConfig(), req.GetConfigSecretKeys()
	if configMap == nil {
		configMap = map[string]string{}
	}
	if keys == nil {
		keys = []string{}
	}
	config, err := json.Marshal(configMap)
	if err != nil {
		return nil, err
	}
	secretKeys, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}

	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir = req.GetPwd()
	// The engine relays this plugin's stdout/stderr to the user.
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(),
		"PULUMI_CONFIG="+string(config),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys),
		"PYTHONUNBUFFERED=1",
	)
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.ExitStatus() == bailExitCode {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{
				Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode()),
			}, nil
		}
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// InstallDependencies only reports which interpreter will run the program: the
// environment is created and filled by the project's own tooling.
func (h *host) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest,
	stream grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	exe, err := python(req.GetInfo())
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("Using %s; dependencies are managed by the project, not installed by Pulumi.\n", exe)
	return stream.Send(&pulumirpc.InstallDependenciesResponse{Stdout: []byte(msg)})
}

func (h *host) RuntimeOptionsPrompts(
	context.Context, *pulumirpc.RuntimeOptionsRequest,
) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

func (h *host) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	exe, err := python(req.GetInfo())
	if err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, exe, "--version").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", exe, err)
	}
	v := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "Python"))
	return &pulumirpc.AboutResponse{Executable: exe, Version: v}, nil
}

func (h *host) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	out, err := runScript(ctx, req.GetInfo(), distListScript)
	if err != nil {
		return nil, err
	}
	var pairs [][2]string
	if err := json.Unmarshal(out, &pairs); err != nil {
		return nil, fmt.Errorf("reading distribution list: %w", err)
	}
	resp := &pulumirpc.GetProgramDependenciesResponse{}
	for _, p := range pairs {
		resp.Dependencies = append(resp.Dependencies, &pulumirpc.DependencyInfo{Name: p[0], Version: p[1]})
	}
	return resp, nil
}

// Pack and the code generators are not needed to deploy programs.
func (h *host) Pack(context.Context, *pulumirpc.PackRequest) (*pulumirpc.PackResponse, error) {
	return nil, status.Error(codes.Unimplemented, "virtstack's language host does not pack SDKs")
}
