"""What each command does, as plain functions: no prompts, no printing.

Every command starts with :func:`start`: the stack file is read and checked once, the
engine is asked to answer, and (before anything changes) the adapter's preflight runs.
The resulting :class:`~virtstack.session.Session` carries the environment through the rest
of the command.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from virtstack import autoscale, datacheck, report, secrets, stackfiles
from virtstack.configkeys import key
from virtstack.engines.hostcmd import is_local
from virtstack.environment import Environment, StackRef, load
from virtstack.errors import EngineUnreachableError, SpecError, UsageError, VirtstackError
from virtstack.plan.model import Plan, plan
from virtstack.runner import EventLog, OnEvent, PendingRun, StackOutput
from virtstack.scaling import ScaleChange, plan_scale
from virtstack.session import AdapterFor, Services, Session, open_session

if TYPE_CHECKING:
    from virtstack.engineevents import EngineEvent
    from virtstack.engines.base import (
        DataItem,
        EngineAdapter,
        Reachability,
        ReplicaPlacement,
        TierHealth,
    )
    from virtstack.targets import Target

_Asked = TypeVar("_Asked")


def start(
    ref: StackRef,
    services: Services,
    *,
    environment: Environment | None = None,
    preflight: bool = False,
    keep_orphans: bool = False,
) -> Session:
    """Load and check the environment (unless given), require its engine, run preflight.

    Preflight also holds the engine's data against the spec (:mod:`virtstack.datacheck`);
    ``keep_orphans`` lets data the spec no longer declares stay behind.
    Raises :class:`EngineUnreachableError` naming the URI and ``virtstack:engine.uri``,
    or :class:`SpecError` with every preflight problem (only when ``preflight``).
    """
    session = open_session(ref, services, environment=environment)
    check(session, preflight=preflight, keep_orphans=keep_orphans)
    return session


def check(session: Session, *, preflight: bool = False, keep_orphans: bool = False) -> None:
    """:func:`start`'s checks of the engine, for a session opened without them."""
    ref, uri, spec = session.ref, session.environment.uri, session.environment.spec

    def checks(pool: ThreadPoolExecutor) -> tuple[Future[list[str]], Future[list[DataItem]]]:
        return (
            pool.submit(session.adapter.preflight, spec, ref.env, uri),
            pool.submit(session.adapter.data_items, ref.env, uri),
        )

    found, pending = _with_probe(session.adapter, uri, checks if preflight else None)
    if not found.reachable:
        raise unreachable(session.adapter, found)
    if pending is None:
        return
    checked, items = pending
    problems = checked.result()
    problems += datacheck.problems(spec, ref.env, items.result(), keep_orphans=keep_orphans)
    if problems:
        raise SpecError(problems)


def _with_probe(
    adapter: EngineAdapter, uri: str, asks: Callable[[ThreadPoolExecutor], _Asked] | None
) -> tuple[Reachability, _Asked | None]:
    """Probe the engine at ``uri`` and, if it answers, submit ``asks`` (engine round trips
    that do not depend on each other) to a pool: their futures, or None. A local engine
    that is down refuses at once, so they go out with the probe; a remote one could make
    each wait out its own timeout, so they wait for the probe's answer."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        early = asks(pool) if asks and is_local(uri) else None
        reach = adapter.probe(uri)
        if not reach.reachable or asks is None:
            return reach, None
        return reach, early or asks(pool)


def unreachable(adapter: EngineAdapter, found: Reachability) -> EngineUnreachableError:
    """The error for an engine that did not answer: its URI, why, and the key to fix."""
    return EngineUnreachableError(
        f"{found.uri}: {adapter.kind} engine not reachable ({found.detail}); "
        f"start it or fix {key('engine', 'uri')}"
    )


def ensure_password(session: Session) -> bool:
    """Generate the registry password if the spec needs one; whether it was generated."""
    return secrets.ensure_registry_password(session.runner, session.ref, session.environment)


# -- targets ----------------------------------------------------------------------------


def reach_targets(
    targets: Mapping[str, Target], adapter_for: AdapterFor
) -> dict[str, Reachability]:
    """Whether each target's default engine answers; each engine is asked once, in parallel."""
    engines = {(adapter_for(t).kind, t.default_uri): t for t in targets.values()}
    with ThreadPoolExecutor(max_workers=len(engines)) as pool:
        answers = pool.map(lambda t: adapter_for(t).probe(t.default_uri), engines.values())
        found = dict(zip(engines, answers, strict=True))
    return {name: found[(adapter_for(t).kind, t.default_uri)] for name, t in targets.items()}


# -- preview ----------------------------------------------------------------------------


def preview(session: Session, log: EventLog) -> Plan:
    """What ``up`` would change; the events also land in ``log`` (kept if the run fails).

    Data the spec no longer declares does not stop a preview: the plan says what becomes of
    it (``up`` refuses it unless told to keep it).
    """
    session.runner.preview(session.ref, log)
    found = plan(log.events, session.env, session.environment.target.name)
    env = session.environment
    found.warnings += env.warnings
    items = session.adapter.data_items(session.env, env.uri)
    found.warnings += [
        f"{line.removeprefix(session.env + ': ')} (it stays on the engine; `up` refuses "
        "until you restore the name or pass --keep-orphaned-data)"
        for line in datacheck.orphans(env.spec, session.env, items)
    ]
    return found


def failed_plan(events: list[EngineEvent], env: str, target: str, exc: VirtstackError) -> Plan:
    """The plan of a preview that failed: what the events said, and the error's problems."""
    failed = plan(events, env, target)
    problems = getattr(exc, "problems", None)
    failed.errors = (
        [str(p) for p in problems] if isinstance(problems, list) else str(exc).splitlines()
    )
    return failed


# -- up / destroy / refresh -------------------------------------------------------------


def up(
    session: Session, on_event: OnEvent, started: PendingRun | None = None
) -> dict[str, StackOutput]:
    """Create or update everything (by the run ``started`` early, if given); the stack's
    outputs afterwards."""
    if started is None:
        session.runner.up(session.ref, session.environment, on_event)
    else:
        started.go(on_event)
    return session.runner.outputs(session.ref)


def wait_ready(
    session: Session,
    events: list[EngineEvent],
    on_ready: Callable[[str, str], None],
    on_start: Callable[[list[str]], None] = lambda machines: None,
) -> list[str]:
    """Wait until every machine the run's ``events`` created or replaced is configured
    (cloud-init done in a VM); the machines waited for. Raises OperationError naming
    each machine that failed, with the first lines of its error."""
    machines = session.adapter.machines_made(events)
    on_start(machines)
    session.adapter.wait_ready(session.env, session.environment.uri, machines, on_ready)
    return machines


def destroy(session: Session, on_event: OnEvent) -> None:
    """Remove everything the environment deployed (its data stays on the engine), and the
    copies of its CA that `up` installed for engines to trust its registry."""
    from virtstack import tlsfiles

    session.adapter.before_destroy(session.env, session.environment.uri)
    session.runner.destroy(session.ref, session.environment, on_event)
    tlsfiles.remove_installed(session.ref.project, session.env)


@dataclass(frozen=True)
class DataAfterDestroy:
    """An environment's data once it is destroyed: what was deleted, or what is kept."""

    deleted: list[str] | None = None
    kept: list[str] | None = None

    def summary(self, env: str) -> str:
        if self.deleted is not None:
            names = ", ".join(self.deleted)
            return f"deleted data: {names}" if names else "no data volumes to delete"
        if self.kept:
            return f"kept data: {', '.join(self.kept)} (destroy {env} --delete-data removes it)"
        return "no data volumes were kept"


def data_after_destroy(session: Session, *, delete: bool) -> DataAfterDestroy:
    """Delete the environment's data, or find what is kept of it."""
    spec, uri = session.environment.spec, session.environment.uri
    if delete:
        return DataAfterDestroy(deleted=session.adapter.delete_data(spec, session.env, uri))
    return DataAfterDestroy(kept=session.adapter.find_data(spec, session.env, uri))


def refresh(session: Session, on_event: OnEvent) -> None:
    """Read the engine's actual state into the stack, through the tunnel to a remote
    engine's registry that ``up`` also opens (the provider reads pushed digests here)."""
    env = session.environment
    with session.adapter.registry_tunnel(env.spec, env.uri):
        session.runner.refresh(session.ref, on_event)


# -- status -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Status:
    """A stack's outputs, whether its engine answers, and its backends' health."""

    outputs: dict[str, StackOutput]
    reach: Reachability
    tiers: list[TierHealth]
    replicas: list[ReplicaPlacement] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return report.status_json(
            report.plain_outputs(self.outputs), self.reach.reachable, self.tiers, self.replicas
        )


def status(session: Session) -> Status:
    """Outputs always; backend health only when the engine answers and there are outputs."""
    from virtstack import health

    outputs = session.runner.outputs(session.ref)
    values = report.plain_outputs(outputs)
    spec, uri, env = session.environment.spec, session.environment.uri, session.env

    def reads(
        pool: ThreadPoolExecutor,
    ) -> tuple[Future[list[TierHealth]], Future[list[ReplicaPlacement]]]:
        return (
            pool.submit(health.lb_health, session.adapter, spec, env, uri, values)
            if values
            else _done([]),
            pool.submit(session.adapter.replicas, spec, env, uri),
        )

    reach, pending = _with_probe(session.adapter, uri, reads)
    if pending is None:
        return Status(outputs=outputs, reach=reach, tiers=[])
    tiers, replicas = pending
    return Status(outputs=outputs, reach=reach, tiers=tiers.result(), replicas=replicas.result())


def _done(value: list[TierHealth]) -> Future[list[TierHealth]]:
    future: Future[list[TierHealth]] = Future()
    future.set_result(value)
    return future


# -- scale and autoscale ----------------------------------------------------------------


def scale(
    ref: StackRef, services: Services, tier: str, replicas: int
) -> tuple[ScaleChange, Session]:
    """Tier ``tier``'s new replica count, checked (live too), and a session that deploys it.

    Nothing is written: the session runs with the edited file as a pending change, and the
    caller writes it (``change.write()``) once the deploy succeeded; a refusal or a failed
    run leaves the stack file as it was.
    """
    change = plan_scale(ref, tier, replicas)
    pending = replace(ref, pending=stackfiles.dump(change.document))
    session = start(pending, services, environment=change.environment, preflight=True)
    if ensure_password(open_session(ref, services)):
        # The file now holds the new secret and its salt: edit that file instead.
        change = plan_scale(ref, tier, replicas)
        pending = replace(ref, pending=stackfiles.dump(change.document))
        session = open_session(pending, services, environment=change.environment)
    return change, session


@contextlib.contextmanager
def drained(session: Session, tier: str, old: int, new: int) -> Iterator[None]:
    """Around the deploy of tier ``tier``'s scaling from ``old`` to ``new`` replicas: those
    it removes leave their load balancer's rotation first, their requests done; their slots
    go back to the health check after (they are gone, or the deploy failed and they serve)."""
    from virtstack_components import names

    full = names.tier_name(session.env, tier)
    removed = [names.replica_name(full, i) for i in range(new, old)]
    if not removed:
        yield
        return
    uri = session.environment.uri
    session.adapter.rotate(session.env, uri, tier, removed, serve=False)
    try:
        yield
    finally:
        session.adapter.rotate(session.env, uri, tier, removed, serve=True)


def autoscale_step(
    ref: StackRef,
    services: Services,
    window: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[autoscale.Decision]:
    """The threshold rule's verdict on every tier that has one, from live HAProxy counters.

    Raises :class:`UsageError` when the target has no threshold scaling.
    """
    from virtstack.targets import Capability  # imports Pulumi

    environment = load(ref)
    if Capability.THRESHOLD_SCALING not in environment.target.capabilities:
        raise UsageError(
            f"autoscale {ref.env}: the {environment.target.name} target has no threshold scaling"
        )
    session = start(ref, services, environment=environment)
    outputs = report.plain_outputs(services.runner.outputs(ref))

    def read_stats(tier: str) -> str:
        return session.adapter.lb_stats(environment.spec, ref.env, environment.uri, outputs, tier)

    return autoscale.decide(environment.spec, ref.env, read_stats, window, sleep=sleep)


# -- data and locks left by earlier runs ------------------------------------------------


def migrate_data(session: Session) -> dict[str, str]:
    """Copy data kept under virtstack 0.1's names to the current ones (old names stay)."""
    env = session.environment
    return session.adapter.migrate_data(env.spec, session.env, env.uri)


def unlock(session: Session) -> list[str]:
    """Clear Pulumi's lock left by a crashed run (refused while its holder runs)."""
    return session.runner.unlock(session.ref)


# -- ssh --------------------------------------------------------------------------------


def ssh_command(session: Session, machine: str, command: list[str]) -> list[str]:
    """The ssh command line into ``machine`` (its domain name, or without ``<env>-``).

    Its address comes from the stack outputs; the key is the environment's login key.
    Raises :class:`UsageError` for a machine the environment does not have.
    """
    from virtstack import sshkeys

    outputs = report.plain_outputs(session.runner.outputs(session.ref))
    machines: dict[str, str] = outputs.get("machines") or {}
    name = machine if machine in machines else f"{session.env}-{machine}"
    if name not in machines or not machines[name]:
        known = ", ".join(sorted(machines)) or "none (run up)"
        raise UsageError(f"ssh {session.env}: no machine {machine!r} (machines: {known})")
    spec = session.environment.spec
    user = next(
        (
            h.ssh_user
            for h in spec.container_hosts
            if name == f"{session.env}-{h.name}" or name.startswith(f"{session.env}-{h.name}-")
        ),
        "virtstack",
    )
    project = session.ref.project
    return sshkeys.ssh_argv(
        address=machines[name],
        user=user,
        key=sshkeys.login_key(project, session.env),
        known_hosts_file=sshkeys.known_hosts(project, session.env),
        jump=sshkeys.jump_host(session.environment.uri),
        command=command,
    )
