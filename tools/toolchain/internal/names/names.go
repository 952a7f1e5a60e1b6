// Package names prints the Pulumi property names a bridged provider uses, so a test
// can compare them with the pinned Python SDK: a name the SDK sends that the
// provider does not know would otherwise be lost without notice.
package names

import (
	"encoding/json"
	"io"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shim "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim"
)

// Flag is the command-line flag under which the provider mains call Dump.
const Flag = "-pulumi-names"

// Tree maps each Pulumi property name to the names inside it (nil for a leaf).
type Tree map[string]Tree

// Dump writes {"resources"|"functions": {token: Tree}} as JSON.
func Dump(w io.Writer, info tfbridge.ProviderInfo) error {
	out := map[string]map[string]Tree{"resources": {}, "functions": {}}
	info.P.ResourcesMap().Range(func(tf string, r shim.Resource) bool {
		if ri, ok := info.Resources[tf]; ok {
			out["resources"][string(ri.Tok)] = tree(r.Schema(), ri.Fields)
		}
		return true
	})
	info.P.DataSourcesMap().Range(func(tf string, r shim.Resource) bool {
		if di, ok := info.DataSources[tf]; ok {
			out["functions"][string(di.Tok)] = tree(r.Schema(), di.Fields)
		}
		return true
	})
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}

func tree(sch shim.SchemaMap, infos map[string]*tfbridge.SchemaInfo) Tree {
	t := Tree{}
	sch.Range(func(key string, s shim.Schema) bool {
		var nested map[string]*tfbridge.SchemaInfo
		if info := infos[key]; info != nil {
			nested = info.Fields
			if info.Elem != nil && info.Elem.Fields != nil {
				nested = info.Elem.Fields
			}
		}
		var sub Tree
		if r, ok := s.Elem().(shim.Resource); ok {
			sub = tree(r.Schema(), nested)
		}
		t[tfbridge.TerraformToPulumiNameV2(key, sch, infos)] = sub
		return true
	})
	return t
}
