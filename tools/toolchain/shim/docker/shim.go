// Package shim hands the upstream Terraform Docker provider (SDKv2 part) to the
// Pulumi bridge; upstream keeps it in an internal package.
package shim

import (
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
	"github.com/terraform-providers/terraform-provider-docker/internal/provider"
)

// NewProvider returns the upstream SDKv2 provider; version goes into its user agent.
func NewProvider(version string) *schema.Provider {
	return provider.New(version)()
}
