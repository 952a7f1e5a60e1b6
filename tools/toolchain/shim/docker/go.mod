// Our shim exposing the SDKv2 provider of the upstream Terraform Docker provider.
// Its path sits under the upstream module path so that Go's internal-package rule
// (which goes by import path) lets it import .../internal/provider.
module github.com/terraform-providers/terraform-provider-docker/shim

go 1.25

require github.com/terraform-providers/terraform-provider-docker v0.0.0

replace github.com/terraform-providers/terraform-provider-docker => github.com/kreuzwerker/terraform-provider-docker v0.0.0-20260916201441-96d331c98ff4
