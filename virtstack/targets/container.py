"""The container target: tiers as containers on a Docker engine (local, ssh:// or tcp://)."""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from virtstack.configkeys import key
from virtstack.engines.docker import ADAPTER, from_registry
from virtstack.targets.base import Capability, DeployContext, Outputs, Target, set_keys
from virtstack.targets.convert import secret_env_needs_command

if TYPE_CHECKING:
    import pulumi
    import pulumi_docker as docker

    from virtstack.spec import EnvironmentSpec

# Pulumi, its Docker SDK and the components are imported by `deploy` alone: every
# command discovers every target, and only the program of a container stack deploys.


def check_engine(spec: EnvironmentSpec) -> Iterator[str]:
    """A ``tcp://`` engine needs client certificates, or ``insecure: true`` said out loud;
    secret env values need the tier's command (it is wrapped to read them)."""
    engine = spec.engine
    scheme = urlsplit(TARGET.uri(spec)).scheme
    if scheme == "tcp" and engine.tls is None and not engine.insecure:
        yield (
            f"{key('engine', 'uri')}: a tcp:// Docker engine without TLS lets anyone on the "
            f"network run containers as root: give {key('engine', 'tls')} (ca, cert, key) "
            f"or set {key('engine', 'insecure')}: true"
        )
    if engine.tls is not None:
        if scheme != "tcp":
            yield f"{key('engine', 'tls')}: only tcp:// engines take client certificates"
        for field in ("ca", "cert", "key"):
            path = Path(getattr(engine.tls, field))
            if not path.is_file():
                yield f"{key('engine', 'tls', field)}: {path} is not a file"
    if engine.ssh_opts and scheme != "ssh":
        yield f"{key('engine', 'ssh_opts')}: only ssh:// engines take ssh options"
    yield from secret_env_needs_command(spec)


def _tls(
    spec: EnvironmentSpec, uri: str
) -> tuple[str | None, str | None, pulumi.Output[str] | None]:
    """CA, client certificate and (secret) key for the provider; warns about plain TCP."""
    import pulumi

    tls = spec.engine.tls
    if tls is None:
        if urlsplit(uri).scheme == "tcp":
            pulumi.log.warn(
                f"{uri}: plain TCP without TLS ({key('engine', 'insecure')}: true): anyone "
                "who can reach that port controls the engine"
            )
        return None, None, None
    return (
        Path(tls.ca).read_text(),
        Path(tls.cert).read_text(),
        pulumi.Output.secret(Path(tls.key).read_text()),
    )


def _pull(image: str, provider: docker.Provider, parent_name: str) -> pulumi.Output[str]:
    """Have the engine pull ``image`` from the registry its name gives; run it by digest."""
    import pulumi
    import pulumi_docker as docker

    from virtstack.targets.convert import slug

    pulled = docker.RemoteImage(
        f"{parent_name}-{slug(image)}",
        name=image,
        keep_locally=True,  # other environments on the engine may use it too
        opts=pulumi.ResourceOptions(provider=provider),
    )
    return pulled.repo_digest


def deploy(spec: EnvironmentSpec, ctx: DeployContext) -> Outputs:
    """Registry, tier networks, replicas and load balancers on one Docker engine."""
    import pulumi
    import pulumi_docker as docker
    from virtstack_components.docker.network import DockerNetwork, DockerNetworkArgs
    from virtstack_components.docker.placement import DockerPlacement
    from virtstack_components.docker.registry import ContainerRegistry, ContainerRegistryArgs
    from virtstack_components.stack import ServiceStack, ServiceStackArgs

    from virtstack.targets.convert import (
        credentials,
        push_image,
        registry_outputs,
        server_tls,
        stack_outputs,
        stack_tiers,
        trust_registry,
    )

    uri = TARGET.uri(spec)
    reg = spec.registry
    auth = (
        [
            docker.ProviderRegistryAuthArgs(
                # The provider reads pushed digests over HTTPS, trusting the environment's
                # CA alone (SSL_CERT_FILE of the Pulumi run, see virtstack.automation).
                address=f"https://{reg.address}:{reg.port}",
                username=reg.username,
                password=ctx.registry_password,
            )
        ]
        if reg.enabled and reg.auth
        else None
    )
    ca, cert, tls_key = _tls(spec, uri)
    provider = docker.Provider(
        f"{ctx.env}-docker",
        host=uri,
        ssh_opts=spec.engine.ssh_opts or None,
        registry_auth=auth,
        ca_material=ca,
        cert_material=cert,
        key_material=tls_key,
    )
    placement = DockerPlacement(namespace=ctx.env, provider=provider, lb_image=spec.images.lb)
    outputs: dict[str, object] = {"target": TARGET.name, "engine": uri}
    images: dict[str, pulumi.Input[str]] = {}
    if reg.enabled:
        registry = ContainerRegistry(
            f"{ctx.env}-registry",
            ContainerRegistryArgs(
                placement=placement,
                image=spec.images.registry,
                port=reg.port,
                address=str(reg.address),
                storage=reg.storage,
                credentials=credentials(spec, ctx),
                tls=server_tls(spec, ctx),
            ),
        )
        outputs |= registry_outputs(registry)
        outputs |= trust_registry(ADAPTER, uri, ctx, str(reg.address), reg.port)
        if not pulumi.runtime.is_dry_run():
            # The provider reads pushed digests here by the registry's name on the engine's
            # host: a tunnel for this run makes that name reach it (see forward_registry).
            atexit.register(ADAPTER.registry_tunnel(spec, uri).close)
        for image in sorted({t.image for t in spec.tiers}):
            pushed = push_image(
                image,
                registry.endpoint,
                provider,
                depends_on=registry,
                parent_name=f"{ctx.env}-image",
            )
            # The replicas run on the engine that pushed: its own copy, pinned by id, starts
            # them beside the registry's start and the push rather than after them.
            images[image] = pushed.local_id
    for image in sorted({t.image for t in spec.tiers} - set(images)):
        if from_registry(image):
            images[image] = _pull(image, provider, f"{ctx.env}-image")
    tier_networks = {t.network for t in spec.tiers}
    for net in spec.networks:
        if net.name not in tier_networks:
            DockerNetwork(
                f"{ctx.env}-{net.name}",
                DockerNetworkArgs(placement=placement, cidr=str(net.cidr)),
            )
    if spec.tiers:
        stack = ServiceStack(
            ctx.env,
            ServiceStackArgs(placement=placement, tiers=stack_tiers(spec, ctx, images)),
        )
        outputs |= stack_outputs(stack) | {"images": images}
    return outputs


TARGET = Target(
    name="container",
    summary="containers on a Docker engine: local, remote over ssh://, or tcp:// with TLS",
    adapter=ADAPTER,
    default_uri="unix:///var/run/docker.sock",
    uri_schemes=("unix", "ssh", "tcp"),
    capabilities=frozenset(
        {
            Capability.SERVICE_TIERS,
            Capability.REGISTRY,
            Capability.PERSISTENT_DATA,
            Capability.THRESHOLD_SCALING,
            Capability.REMOTE_ENGINE,
        }
    ),
    deploy=deploy,
    extra_checks=check_engine,
    # VM sizes and libvirt settings mean nothing to a Docker engine.
    ignores=lambda spec: set_keys(
        spec,
        [
            ("engine", "domain_type"),
            ("engine", "pool_path"),
            ("images", "guest"),
            ("tiers", "*", "cpus"),
            ("tiers", "*", "memory"),
        ],
    ),
)
