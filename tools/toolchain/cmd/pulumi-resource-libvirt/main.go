// Command pulumi-resource-libvirt serves the Terraform libvirt provider
// (dmacvicar/terraform-provider-libvirt, pure Go) to the Pulumi engine through
// pulumi-terraform-bridge, under the tokens and property names of the pinned
// pulumi-libvirt Python SDK (0.5.4).
//
// Pulumi's own provider module (github.com/pulumi/pulumi-libvirt/provider) is not
// served by the Go module proxy this project can reach, so this main and its token
// mapping are our own. The version is stamped with -ldflags "-X main.libvirtVersion=...".
package main

import (
	"fmt"
	"os"

	"github.com/dmacvicar/terraform-provider-libvirt/libvirt"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	tfbinfo "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/info"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"virtstack.local/toolchain/internal/names"
)

// libvirtVersion is what the plugin reports to the engine; it must equal the version the
// Python SDK asks for (its pulumi-plugin.json).
var libvirtVersion = "0.0.0-dev"

func providerInfo() tfbridge.ProviderInfo {
	// Resources and functions the Python SDK declares, keyed by Terraform type.
	resources := map[string]string{
		"libvirt_cloudinit_disk": "cloudInitDisk:CloudInitDisk",
		"libvirt_combustion":     "combustion:Combustion",
		"libvirt_domain":         "domain:Domain",
		"libvirt_ignition":       "ignition:Ignition",
		"libvirt_network":        "network:Network",
		"libvirt_pool":           "pool:Pool",
		"libvirt_volume":         "volume:Volume",
	}
	dataSources := map[string]string{
		"libvirt_network_dns_host_template":        "getNetworkDnsHostTemplate",
		"libvirt_network_dns_srv_template":         "getNetworkDnsSrvTemplate",
		"libvirt_network_dnsmasq_options_template": "getNetworkDnsmasqOptionsTemplate",
		"libvirt_node_device_info":                 "getNodeDeviceInfo",
		"libvirt_node_devices":                     "getNodeDevices",
		"libvirt_node_info":                        "getNodeInfo",
	}

	info := tfbridge.ProviderInfo{
		P:          shimv2.NewProvider(libvirt.Provider()),
		Name:       "libvirt",
		Version:    libvirtVersion,
		GitHubOrg:  "dmacvicar",
		Repository: "https://github.com/pulumi/pulumi-libvirt",
		// No bridge metadata is generated at build time; an empty document keeps the
		// runtime's metadata lookups valid.
		MetadataInfo: tfbinfo.NewProviderMetadata([]byte("{}")),
		Resources:    map[string]*tfbridge.ResourceInfo{},
		DataSources:  map[string]*tfbridge.DataSourceInfo{},
	}
	for tf, tok := range resources {
		info.Resources[tf] = &tfbridge.ResourceInfo{Tok: tokens.Type("libvirt:index/" + tok)}
	}
	for tf, fn := range dataSources {
		info.DataSources[tf] = &tfbridge.DataSourceInfo{
			Tok: tokens.ModuleMember("libvirt:index/" + fn + ":" + fn),
		}
	}

	// Pulumi names left unset get an auto-name: <resource name>-<random suffix>.
	info.SetAutonaming(255, "-")
	return info
}

// pulumiSchema is the minimal package description served by GetSchema; programs
// use the pinned Python SDK, so no generated schema is embedded.
func pulumiSchema() []byte {
	return []byte(fmt.Sprintf(`{"name":"libvirt","version":%q}`, libvirtVersion))
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == names.Flag {
		if err := names.Dump(os.Stdout, providerInfo()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	tfbridge.Main("libvirt", libvirtVersion, providerInfo(), pulumiSchema())
}
