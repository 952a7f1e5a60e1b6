"""virtstack's reusable Pulumi components.

Each is a ``ComponentResource`` of type ``virtstack:<module>:<Name>`` with a typed args
class; they know nothing of the spec or the CLI and can be used from any Pulumi program.
"""

from virtstack_components.container_host import ContainerHost, ContainerHostArgs
from virtstack_components.network import Network, NetworkArgs
from virtstack_components.placement import (
    DockerPlacement,
    GuestImageIds,
    LibvirtHost,
    LibvirtPlacement,
)
from virtstack_components.registry import Registry, RegistryArgs
from virtstack_components.service import (
    DataVolume,
    HealthCheck,
    Publish,
    ServiceStack,
    ServiceStackArgs,
    ServiceTier,
    ServiceTierArgs,
    StackTier,
    TierArgs,
)
from virtstack_components.vm import (
    BaseImage,
    BaseImageArgs,
    DataDisk,
    GuestImage,
    VirtualMachine,
    VirtualMachineArgs,
)

__all__ = [
    "BaseImage",
    "BaseImageArgs",
    "ContainerHost",
    "ContainerHostArgs",
    "DataDisk",
    "DataVolume",
    "DockerPlacement",
    "GuestImage",
    "GuestImageIds",
    "HealthCheck",
    "LibvirtHost",
    "LibvirtPlacement",
    "Network",
    "NetworkArgs",
    "Publish",
    "Registry",
    "RegistryArgs",
    "ServiceStack",
    "ServiceStackArgs",
    "ServiceTier",
    "ServiceTierArgs",
    "StackTier",
    "TierArgs",
    "VirtualMachine",
    "VirtualMachineArgs",
]
