"""SSH logins to VMs: the default key, generated keys, the ssh command line, spec checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.conftest import USER_KEY
from virtstack import sshkeys
from virtstack.errors import SpecError
from virtstack.spec import parse_spec


def test_the_default_is_the_users_own_key(home: Path, tmp_path: Path) -> None:
    key = sshkeys.login_key(tmp_path, "lab")
    assert key == sshkeys.LoginKey(public=USER_KEY, identity=None)
    assert not (tmp_path / ".virtstack").exists()


def test_without_a_user_key_one_pair_is_generated_per_environment(tmp_path: Path) -> None:
    empty_home = tmp_path / "home"
    empty_home.mkdir()
    key = sshkeys.login_key(tmp_path, "lab", home=empty_home)
    assert key.identity == tmp_path / ".virtstack" / "ssh" / "lab" / "id_ed25519"
    assert key.identity.stat().st_mode & 0o777 == 0o600
    assert key.public.startswith("ssh-ed25519 ")
    assert key.public.endswith(" virtstack-lab")
    # The same pair next time; another environment gets its own.
    assert sshkeys.login_key(tmp_path, "lab", home=empty_home) == key
    assert sshkeys.login_key(tmp_path, "qa", home=empty_home).public != key.public


def test_keys_are_merged_without_repeats() -> None:
    assert sshkeys.authorized("a", ["b", "a"], ["c", "b"]) == ["a", "b", "c"]


def test_ssh_jumps_through_a_remote_libvirt_host(tmp_path: Path) -> None:
    key = sshkeys.LoginKey(public="k", identity=tmp_path / "id")
    argv = sshkeys.ssh_argv(
        address="192.168.1.5",
        user="virtstack",
        key=key,
        known_hosts_file=tmp_path / "known_hosts",
        jump=sshkeys.jump_host("qemu+ssh://ops@hv1:2222/system"),
        command=["cloud-init", "status"],
    )
    assert argv[argv.index("-J") + 1] == "ops@hv1:2222"
    assert argv[argv.index("-i") + 1] == str(tmp_path / "id")
    assert f"UserKnownHostsFile={tmp_path / 'known_hosts'}" in argv
    assert argv[-3:] == ["virtstack@192.168.1.5", "cloud-init", "status"]
    assert sshkeys.jump_host("qemu:///system") is None


def test_a_malformed_key_is_refused_naming_its_key() -> None:
    config = {"target": "hostos", "tiers": [{"name": "web", "image": "x"}]}
    config["tiers"][0]["ssh_authorized_keys"] = ["not a key"]  # type: ignore[index]
    with pytest.raises(SpecError) as caught:
        parse_spec(config)
    assert str(caught.value).startswith("virtstack:tiers[0].ssh_authorized_keys[0]: must be one")


def test_keys_a_target_cannot_honour_are_refused_by_name() -> None:
    from virtstack import targets

    vm = parse_spec(
        {
            "target": "hostos",
            "networks": [{"name": "lab", "cidr": "192.168.151.0/24"}],
            "registry": {"enabled": True, "port": 5001},
            "ssh_authorized_keys": [USER_KEY],
        }
    )
    with pytest.raises(SpecError) as caught:
        targets.check(vm)
    assert caught.value.problems == [
        "virtstack:registry.port: the hostos target cannot honour this key; remove it"
    ]
    docker = parse_spec(
        {
            "target": "container",
            "ssh_authorized_keys": [USER_KEY],
            "tiers": [{"name": "web", "image": "x"}, {"name": "db", "image": "y", "memory": 256}],
        }
    )
    with pytest.raises(SpecError) as caught:
        targets.check(docker)
    assert caught.value.problems == [
        "virtstack:ssh_authorized_keys: the container target has no SSH logins",
        "virtstack:tiers[1].memory: the container target cannot honour this key; remove it",
    ]
