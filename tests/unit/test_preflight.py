"""Live-engine checks before a deploy, with the engine's answers given."""

from __future__ import annotations

import socket

from virtstack.preflight import docker_problems, libvirt_problems, port_owner
from virtstack.spec import parse_spec

SPEC = parse_spec(
    {
        "virtstack:target": "container",
        "virtstack:registry": {"enabled": True, "port": 5000},
        "virtstack:tiers": [
            {"name": "web", "image": "virtstack/demo:1", "publish": 8080, "upstream": "db"},
            {"name": "db", "image": "virtstack/db:2"},
        ],
    }
)
URI = "unix:///var/run/docker.sock"


def problems(present: set[str], holders: dict[int, str | None], local: bool = True) -> list[str]:
    return list(
        docker_problems(
            SPEC,
            "dev",
            URI,
            exists=lambda uri, image: image in present,
            owner=lambda uri, address, port: holders.get(port),
            local=local,
        )
    )


ALL_IMAGES = {"virtstack/demo:1", "virtstack/db:2", "virtstack/base:bookworm-1"}


def test_nothing_to_report_when_images_exist_and_ports_are_free():
    assert problems(ALL_IMAGES, {}) == []


def test_a_missing_image_names_the_tier_key_and_the_engine():
    found = problems(ALL_IMAGES - {"virtstack/db:2"}, {})
    assert found == [
        "virtstack:tiers[1].image: image 'virtstack/db:2' is not on the engine "
        "unix:///var/run/docker.sock (build it: images/build.sh)"
    ]


def test_a_port_held_by_someone_else_is_reported():
    found = problems(ALL_IMAGES, {8080: "other-app", 5000: ""})
    assert found == [
        "virtstack:tiers[0].publish: 127.0.0.1:8080 is already in use by container other-app",
        "virtstack:registry.port: 127.0.0.1:5000 is already in use by another process",
    ]


def test_the_environments_own_containers_may_hold_its_ports():
    assert problems(ALL_IMAGES, {8080: "dev-web-lb", 5000: "dev-registry"}) == []


def test_remote_engines_skip_the_port_probe():
    assert problems(ALL_IMAGES, {8080: "other"}, local=False) == []


def test_port_owner_sees_a_real_listener(monkeypatch):
    monkeypatch.setattr("virtstack.hostcmd.run", lambda argv, uri, timeout=8.0: "")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_owner(URI, "127.0.0.1", port) == ""
    assert port_owner(URI, "127.0.0.1", port) is None


VM_SPEC = parse_spec(
    {
        "virtstack:target": "hostos",
        "virtstack:engine": {"pool_path": "/nonexistent-parent/pools/lab"},
        "virtstack:networks": [{"name": "lab", "cidr": "192.168.151.0/24"}],
        "virtstack:vms": [{"name": "big", "memory": 65536}, {"name": "small", "memory": 512}],
    }
)


def test_libvirt_problems_name_oversized_vms():
    found = list(libvirt_problems(VM_SPEC, "lab", "qemu:///system", memory=lambda uri: 24000))
    # Missing folders above the pool are fine: libvirt makes them.
    assert found == [
        "virtstack:vms[0].memory: 65536 MiB is more than the host qemu:///system has (24000 MiB)",
    ]


def test_libvirt_problems_name_a_pool_path_blocked_by_a_file(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    spec = VM_SPEC.model_copy(
        update={"engine": VM_SPEC.engine.model_copy(update={"pool_path": f"{blocker}/pools/lab"})}
    )
    found = list(libvirt_problems(spec, "lab", "qemu:///system", memory=lambda uri: 999999))
    assert found == [
        f"virtstack:engine.pool_path: {blocker} is not a directory, "
        f"so pool {blocker}/pools/lab cannot be made"
    ]


def test_libvirt_problems_skip_the_path_on_a_remote_host(tmp_path):
    found = list(
        libvirt_problems(
            VM_SPEC, "lab", "qemu+ssh://h/system", memory=lambda uri: 99999, local=False
        )
    )
    assert found == []
