"""Put a backup back: into its own environment after a disaster, or into a clone.

Nothing live is touched before every byte of the backup has been read back and found
intact (restic authenticates each block), and data that exists is only overwritten when
the caller says so.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml.comments import CommentedMap

from virtstack import guard, netranges, scaffold, stackfiles
from virtstack.backup import DECLARATION, Backup, Say, find_backup, repository
from virtstack.configkeys import NAMESPACE, key
from virtstack.environment import Environment, StackRef, check_config
from virtstack.errors import BackupError, EnvironmentExistsError, UsageError
from virtstack.restic import Repository

REGISTRY = "registry"
"""``--publish registry=PORT``: the clone's registry port."""


@dataclass(frozen=True, kw_only=True)
class Restored:
    ref: StackRef
    backup: Backup
    data: list[str]
    """Engine names of the data put back."""


def restore(
    project: Path,
    env: str,
    *,
    wanted: str,
    into: str | None,
    publish: Mapping[str, int],
    networks: Mapping[str, ipaddress.IPv4Network] | None = None,
    force: bool,
    say: Say,
) -> Restored:
    """Check backup ``wanted`` of ``env``, then write its declaration (unless the target
    environment has one) and its data, under the target environment's names.

    A clone gets the ports in ``publish`` (others unpublished) and, for each network, the
    range in ``networks`` or a free one (VM targets: one the host does not use).

    Raises :class:`BackupError` naming the backup if any of it is damaged (nothing is
    changed then), :class:`UsageError` if the target holds data and ``force`` is not set.
    """
    target = into or env
    if networks and into is None:
        raise UsageError(f"{netranges.OPTION}: only for a clone (with --into)")
    path = stackfiles.stack_file(project, env)
    current = check_config(stackfiles.read_config(project, env)) if path.is_file() else None
    repo = repository(project, env, current)
    found = find_backup(repo, env, wanted)
    say(f"checking backup {found.id} ({found.time})")
    for snapshot in found.snapshots:
        try:
            repo.check_readable(snapshot)
        except BackupError as exc:
            raise BackupError(
                f"backup {found.id} of {env} is damaged ({exc}); nothing was changed"
            ) from None
    manifest = json.loads(repo.read(found.manifest))
    document = stackfiles.load(repo.read(found.snapshot(DECLARATION)).decode(), DECLARATION)
    target_file = stackfiles.stack_file(project, target)
    if into is not None:
        if target_file.exists():
            raise EnvironmentExistsError(f"{target_file}: environment {into} exists already")
        _unpublish(document, publish)
    elif target_file.is_file():
        document = stackfiles.load_stack(project, target)  # the live declaration wins
    environment = check_config(stackfiles.plain(document))
    if into is not None:
        _renumber(project, document, environment, into, networks or {}, say)
        environment = check_config(stackfiles.plain(document))
    adapter, uri = environment.adapter, environment.uri
    live = [i.name for i in adapter.data_items(target, uri) if i.owned]
    if live and not force:
        raise UsageError(
            f"restore {target}: it holds data ({', '.join(live)}); pass --force to overwrite it"
        )
    if not target_file.is_file():
        target_file.write_text(stackfiles.dump(document))
        say(f"wrote {target_file} from the backup")
    names = []
    for item in manifest["data"]:
        if item.get("kind", "data") != "data":
            say(f"kept in the backup, not restored: {item['file']} (made anew by up)")
            continue
        name = target + str(item["name"]).removeprefix(env)
        say(f"restoring {name}")
        _put_back(repo, found, environment, target, item, name)
        names.append(name)
    return Restored(ref=StackRef(project=project, env=target), backup=found, data=names)


def _put_back(
    repo: Repository, found: Backup, environment: Environment, env: str, item: dict[str, str],
    name: str,
) -> None:  # fmt: skip
    write = environment.adapter.data_write(
        environment.spec, env, environment.uri, name, environment.spec.images.lb
    )
    failures: list[str] = []
    with guard.released(write.after, failures):
        failed = guard.run_all(write.before)
        if failed:
            raise BackupError(f"restore {name}: stopping its users failed ({failed[0]})")
        with repo.dump(found.snapshot(item["file"])) as source:
            done = subprocess.run(
                write.write, stdin=source.stdout, capture_output=True, check=False
            )
        if done.returncode != 0:
            why = done.stderr.decode(errors="replace").strip().splitlines() or ["failed"]
            raise BackupError(f"restore {name}: writing the data failed ({why[-1]})")


def _renumber(
    project: Path,
    document: CommentedMap,
    source: Environment,
    into: str,
    given: Mapping[str, ipaddress.IPv4Network],
    say: Say,
) -> None:
    """Give a clone's networks their own ranges (and a VM clone its own pool folder).

    Libvirt networks of one host must not overlap, so a VM clone's are picked among the
    ranges the host and the project leave free; a container clone keeps the source's
    ranges unless given others (its engine tells its networks apart by name).
    """
    config = document["config"]
    spec = source.spec
    vm = source.adapter.kind == "libvirt"
    if vm:
        taken = [*scaffold.taken(project, into)[0], *(n.cidr for n in spec.networks)]
        taken += netranges.host_ranges(source.uri)
        chosen = netranges.clone_networks(spec.networks, given, taken)
    else:
        kept = {n.name: n.cidr for n in spec.networks}
        chosen = netranges.clone_networks(spec.networks, kept | dict(given), [])
    for net in config.get(f"{NAMESPACE}:networks") or []:
        old, cidr = str(net["cidr"]), str(chosen[str(net["name"])])
        if cidr != old:
            say(f"network {net['name']} of {into}: {cidr} (the source's is {old})")
        net["cidr"] = cidr
    engine = config.get(f"{NAMESPACE}:engine")
    if vm and engine and engine.get("pool_path"):
        # Two libvirt pools cannot share a folder: the clone's goes beside the source's.
        engine["pool_path"] = str(Path(str(engine["pool_path"])).parent / into)


def _unpublish(document: CommentedMap, publish: Mapping[str, int]) -> None:
    """A clone's ports: those given (``tier=port``, ``registry=port``), none otherwise
    (the registry needs one: it is refused without)."""
    config = document["config"]
    tiers = config.get(f"{NAMESPACE}:tiers") or []
    known = {str(t.get("name")) for t in tiers} | {REGISTRY}
    unknown = sorted(set(publish) - known)
    if unknown:
        raise UsageError(
            f"--publish {unknown[0]}: no such tier (tiers: {', '.join(sorted(known))})"
        )
    for tier in tiers:
        port = publish.get(str(tier.get("name")))
        if port is not None:
            tier["publish"] = port
        else:
            tier.pop("publish", None)
    registry = config.get(f"{NAMESPACE}:registry")
    if registry and registry.get("enabled"):
        if REGISTRY not in publish:
            raise UsageError(
                f"{key('registry', 'port')}: the clone's registry needs a port of its own "
                "(--publish registry=PORT)"
            )
        registry["port"] = publish[REGISTRY]
