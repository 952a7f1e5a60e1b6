"""virtstack's reusable Pulumi components.

Each is a ``ComponentResource`` of type ``virtstack:<module>:<Name>`` with a typed args
class; they know nothing of the spec or the CLI and can be used from any Pulumi program.
"""

from components.container_host import ContainerHost, ContainerHostArgs
from components.network import Network, NetworkArgs
from components.placement import (
    DockerPlacement,
    GuestImageIds,
    LibvirtHost,
    LibvirtPlacement,
)
from components.registry import Registry, RegistryArgs
from components.service import (
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
from components.vm import (
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
