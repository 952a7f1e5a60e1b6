"""up / preview / destroy of Docker and libvirt resources on the real engines."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.engine.harness import (
    container_running,
    docker_inspect,
    domain_state,
    pool_exists,
    virsh,
)

pytestmark = [pytest.mark.engine, pytest.mark.timeout(1200)]


def test_up_preview_destroy(pulumi_stack, registry, libvirt_uri, unique_prefix, qemu_dir: Path):
    names = {
        "network": f"{unique_prefix}net",
        "container": f"{unique_prefix}web",
        "pool": f"{unique_prefix}pool",
        "volume": f"{unique_prefix}disk.qcow2",
        "domain": f"{unique_prefix}vm",
    }
    pool_dir = qemu_dir / "pool"

    def program() -> None:
        import pulumi
        import pulumi_docker as docker
        import pulumi_libvirt as libvirt

        docker_host = docker.Provider("docker", host="unix:///var/run/docker.sock")
        net = docker.Network(
            "net", name=names["network"], opts=pulumi.ResourceOptions(provider=docker_host)
        )
        # Pulled from the test registry: the reference is not tagged locally before.
        image = docker.RemoteImage(
            "busybox",
            name=registry.busybox,
            keep_locally=True,
            opts=pulumi.ResourceOptions(provider=docker_host),
        )
        web = docker.Container(
            "web",
            name=names["container"],
            image=image.image_id,
            command=["httpd", "-f", "-p", "8080", "-h", "/etc"],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=net.name)],
            # Published on loopback only, on a port docker picks.
            ports=[docker.ContainerPortArgs(internal=8080, ip="127.0.0.1")],
            must_run=True,
            opts=pulumi.ResourceOptions(provider=docker_host),
        )

        qemu = libvirt.Provider("qemu", uri=libvirt_uri)
        pool = libvirt.Pool(
            "pool",
            name=names["pool"],
            type="dir",
            target=libvirt.PoolTargetArgs(path=str(pool_dir)),
            opts=pulumi.ResourceOptions(provider=qemu),
        )
        disk = libvirt.Volume(
            "disk",
            name=names["volume"],
            pool=pool.name,
            format="qcow2",
            size=16 * 1024 * 1024,
            opts=pulumi.ResourceOptions(provider=qemu),
        )
        # No OS: booting the empty disk keeps the firmware looping, which is running.
        libvirt.Domain(
            "vm",
            name=names["domain"],
            type="qemu",
            memory=64,
            vcpu=1,
            disks=[libvirt.DomainDiskArgs(volume_id=disk.id)],
            running=True,
            opts=pulumi.ResourceOptions(provider=qemu),
        )
        pulumi.export("port", web.ports.apply(lambda ports: ports[0].external if ports else None))

    stack = pulumi_stack(program)

    up = stack.up(color="never")
    assert up.summary.result == "succeeded"
    assert up.summary.resource_changes == {"create": 9}, up.summary.resource_changes

    # From outside Pulumi: the engines show what the stack declared.
    assert container_running(names["container"]), docker_inspect(names["container"])
    networks = docker_inspect(names["container"])["NetworkSettings"]["Networks"]  # type: ignore[index]
    assert names["network"] in networks
    port = up.outputs["port"].value
    page = httpx.get(f"http://127.0.0.1:{port}/passwd", timeout=10)
    assert page.status_code == 200
    assert page.text.startswith("root:x:0:0:")
    assert domain_state(names["domain"]) == "running"
    assert pool_exists(names["pool"])
    vol = virsh("vol-dumpxml", names["volume"], "--pool", names["pool"]).stdout
    assert "<format type='qcow2'/>" in vol
    assert (pool_dir / names["volume"]).is_file()

    # The engine sees no drift: nothing to create, update, replace or delete.
    preview = stack.preview(color="never")
    changes = {op: n for op, n in preview.change_summary.items() if op != "same" and n}
    assert changes == {}, preview.stdout
    assert preview.change_summary.get("same") == 9, preview.change_summary

    destroy = stack.destroy(color="never")
    assert destroy.summary.result == "succeeded"
    assert destroy.summary.resource_changes == {"delete": 9}, destroy.summary.resource_changes
    for kind in ("container", "network"):
        assert docker_inspect(names[kind]) is None, f"{kind} {names[kind]} survived destroy"
    assert domain_state(names["domain"]) is None
    assert not pool_exists(names["pool"])
    assert not (pool_dir / names["volume"]).exists()
