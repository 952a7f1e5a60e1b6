"""Live-engine checks before a deploy, with the engine's answers given."""

from __future__ import annotations

import socket

from virtstack.preflight import docker_problems, port_owner
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
