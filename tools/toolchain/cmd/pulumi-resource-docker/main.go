// Command pulumi-resource-docker serves the Terraform Docker provider to the Pulumi
// engine through pulumi-terraform-bridge, under the tokens and property names of the
// pinned pulumi-docker Python SDK (5.1.0).
//
// Pulumi's own provider module (github.com/pulumi/pulumi-docker/provider/v5) is not
// served by the Go module proxy this project can reach, so this main and its token
// mapping are our own. The version is stamped with -ldflags "-X main.dockerVersion=...".
package main

import (
	"fmt"
	"os"
	"unicode"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	tfbinfo "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/info"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	dockershim "github.com/terraform-providers/terraform-provider-docker/shim"
	"virtstack.local/toolchain/internal/names"
)

// dockerVersion is what the plugin reports to the engine; it must equal the version the
// Python SDK asks for (its pulumi-plugin.json).
var dockerVersion = "0.0.0-dev"

// tokMember builds "docker:index/<camel>:<Name>", the token form the Python SDK uses.
func tokMember(name string) tokens.ModuleMember {
	mod := fmt.Sprintf("%c%s", unicode.ToLower(rune(name[0])), name[1:])
	return tokens.ModuleMember("docker:index/" + mod + ":" + name)
}

func tokType(name string) tokens.Type { return tokens.Type(tokMember(name)) }

func providerInfo() tfbridge.ProviderInfo {
	// Resources the Python SDK declares, keyed by Terraform type. docker_image and
	// docker_config carry other names on the Pulumi side.
	resources := map[string]string{
		"docker_buildx_builder": "BuildxBuilder",
		"docker_config":         "ServiceConfig",
		"docker_container":      "Container",
		"docker_image":          "RemoteImage",
		"docker_network":        "Network",
		"docker_plugin":         "Plugin",
		"docker_registry_image": "RegistryImage",
		"docker_secret":         "Secret",
		"docker_service":        "Service",
		"docker_tag":            "Tag",
		"docker_volume":         "Volume",
	}
	dataSources := map[string]string{
		"docker_image":                    "getRemoteImage",
		"docker_logs":                     "getLogs",
		"docker_network":                  "getNetwork",
		"docker_plugin":                   "getPlugin",
		"docker_registry_image":           "getRegistryImage",
		"docker_registry_image_manifests": "getRegistryImageManifests",
	}

	info := tfbridge.ProviderInfo{
		P:          shimv2.NewProvider(dockershim.NewProvider(dockerVersion)),
		Name:       "docker",
		Version:    dockerVersion,
		GitHubOrg:  "kreuzwerker",
		Repository: "https://github.com/pulumi/pulumi-docker",
		// No bridge metadata is generated at build time; an empty document keeps the
		// runtime's metadata lookups valid.
		MetadataInfo: tfbinfo.NewProviderMetadata([]byte("{}")),
		Config: map[string]*tfbridge.SchemaInfo{
			"host": {Default: &tfbridge.DefaultInfo{
				Value:   "unix:///var/run/docker.sock",
				EnvVars: []string{"DOCKER_HOST"},
			}},
			// A list in Terraform, but the SDK names it in the singular.
			"registry_auth": {Name: "registryAuth"},
		},
		Resources:   map[string]*tfbridge.ResourceInfo{},
		DataSources: map[string]*tfbridge.DataSourceInfo{},
	}
	for tf, name := range resources {
		info.Resources[tf] = &tfbridge.ResourceInfo{Tok: tokType(name)}
	}
	for tf, name := range dataSources {
		info.DataSources[tf] = &tfbridge.DataSourceInfo{Tok: tokMember(name)}
	}

	// Names the SDK keeps singular although Terraform models them as lists.
	container := info.Resources["docker_container"]
	container.DeleteBeforeReplace = true
	container.Fields = map[string]*tfbridge.SchemaInfo{
		"command":           {Name: "command"},
		"networks_advanced": {Name: "networksAdvanced"},
	}
	info.Resources["docker_image"].Fields = map[string]*tfbridge.SchemaInfo{"name": {Name: "name"}}

	// Pulumi names left unset get an auto-name: <resource name>-<random suffix>.
	info.SetAutonaming(255, "-")
	return info
}

// pulumiSchema is the minimal package description served by GetSchema; programs
// use the pinned Python SDK, so no generated schema is embedded.
func pulumiSchema() []byte {
	return []byte(fmt.Sprintf(`{"name":"docker","version":%q}`, dockerVersion))
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == names.Flag {
		if err := names.Dump(os.Stdout, providerInfo()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	tfbridge.Main("docker", dockerVersion, providerInfo(), pulumiSchema())
}
