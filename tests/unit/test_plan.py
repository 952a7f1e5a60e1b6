"""virtstack.plan: preview event streams → the plan, its markdown, terminal and JSON."""

from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console

from tests.unit.fixtures.cli_support import FIXTURES, events, events_from_json
from virtstack.plan import model
from virtstack.plan.events import RETAINED, Op, diagnostic_lines, short_type, split_urn
from virtstack.plan.markdown import markdown
from virtstack.plan.model import Change, Plan
from virtstack.plan.terminal import renderable
from virtstack.runner import EventLog

CHANGES = "handmade-preview-changes.json"


@pytest.fixture
def plan() -> Plan:
    return model.plan(events(CHANGES), "dev", "container")


def by_name(plan: Plan) -> dict[str, Change]:
    return {c.name: c for c in plan.changes}


def test_replacement_steps_fold_into_one_replace(plan: Plan) -> None:
    lb = by_name(plan)["dev-web-lb"]
    assert lb.op is Op.REPLACE
    assert lb.replace_keys == ["uploads"]
    assert [c.name for c in plan.replacements()] == ["dev-web-lb"]


def test_counts_are_custom_resources_only(plan: Plan) -> None:
    # Components and the stack are groupings, not things the engine creates.
    assert plan.counts() == {
        "create": 1, "update": 3, "replace": 1, "delete": 2, "import": 0, "same": 4,
    }  # fmt: skip
    assert not any(c.type.startswith("virtstack:") for c in plan.changes)


def test_resources_group_under_their_tier_or_top_component(plan: Plan) -> None:
    groups = {c.name: c.group.label for c in plan.changes}
    assert groups == {
        "dev-web-replica-2": "ServiceTier dev-web",
        "dev-web-lb": "ServiceTier dev-web",
        "dev-app-replica-0": "ServiceTier dev-app",
        "dev-db-replica-1": "ServiceTier dev-db",
        "dev-db-data-1": "ServiceTier dev-db",
        "dev-registry-server": "Registry dev-registry",
        "dev-image-virtstack-demo-1-push": "stack",
    }


def test_changed_values_come_from_the_detailed_paths(plan: Plan) -> None:
    changes = by_name(plan)
    # A config file's changed lines, not the whole (truncated) file.
    assert changes["dev-web-lb"].values == {"uploads[0].content": ("maxconn 4096", "maxconn 8192")}
    assert changes["dev-app-replica-0"].values == {"envs[0]": ("MODE=a", "MODE=a|b `x`")}
    assert changes["dev-image-virtstack-demo-1-push"].values == {
        "triggers.source": ("sha256:aa", "sha256:bb")
    }


def test_secrets_are_masked_everywhere(plan: Plan) -> None:
    registry = by_name(plan)["dev-registry-server"]
    assert registry.values == {"password": ("(none)", "[secret]")}
    rendered = markdown(plan) + str(plan.as_json())
    assert "ciphertext" not in rendered
    assert "1b47061264138c4ac30d75fd1eb44270" not in rendered


def test_markdown_is_a_pull_request_comment(plan: Plan) -> None:
    text = markdown(plan)
    lines = text.splitlines()
    assert lines[0] == (
        "### `dev` (container): 1 to create, 3 to update, 1 to replace, 2 to delete (4 unchanged)"
    )
    assert "> - `dev-web-lb` (`docker:Container`), because of `uploads`" in lines
    assert "| 1 | 3 | 1 | 2 | 4 |" in lines
    summaries = [ln for ln in lines if ln.startswith("<summary>")]
    assert summaries == [
        "<summary><b>stack</b>: 1 to update</summary>",
        "<summary><b>Registry dev-registry</b>: 1 to update</summary>",
        "<summary><b>ServiceTier dev-app</b>: 1 to update</summary>",
        "<summary><b>ServiceTier dev-db</b>: 2 to delete</summary>",
        "<summary><b>ServiceTier dev-web</b>: 1 to create, 1 to replace</summary>",
    ]
    assert text.count("<details open>") == text.count("</details>") == 5


def test_markdown_table_rows_keep_their_columns(plan: Plan) -> None:
    # A pipe in a value must not split the cell; a backtick must not end the code span.
    rows = [ln for ln in markdown(plan).splitlines() if ln.startswith("| update | `dev-app")]
    [row] = rows
    cells = re.split(r"(?<!\\)\|", row)[1:-1]
    assert len(cells) == 4
    assert cells[3].strip() == "`envs[0]`: `MODE=a` → `` MODE=a\\|b `x` ``"


def test_json_summary(plan: Plan) -> None:
    shown = plan.as_json()
    assert shown["counts"]["replace"] == 1
    web = next(g for g in shown["groups"] if g["group"] == "ServiceTier dev-web")
    assert [c["op"] for c in web["changes"]] == ["replace", "create"]
    assert web["changes"][0]["values"] == {
        "uploads[0].content": {"old": "maxconn 4096", "new": "maxconn 8192"}
    }
    assert shown["warnings"] == ["dev-web-lb: the published port moves for a moment"]


def test_terminal_rendering(plan: Plan) -> None:
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(renderable(plan))
    text = out.getvalue()
    assert re.search(r"\+-\s+│\s+dev-web-lb", text)
    assert "replaced because of uploads" in text
    assert "1 to create, 3 to update, 1 to replace, 2 to delete (4 unchanged)" in text
    assert "warning: dev-web-lb: the published port moves" in text


def test_no_changes_says_so() -> None:
    same = [e for e in events(CHANGES) if _op(e) in (None, "same")]
    plan = model.plan(same, "dev")
    assert not plan.has_changes
    assert markdown(plan).splitlines()[0] == "### `dev`: no changes (4 unchanged)"


def test_failed_preview_markdown_lists_the_errors() -> None:
    plan = Plan(env="lab", target="hostos", errors=["lab-pool: permission denied | <x>"])
    assert markdown(plan) == (
        "### `lab` (hostos): preview failed\n\n> [!CAUTION]\n"
        "> - lab-pool: permission denied \\| &lt;x>\n"
    )


def test_error_diagnostics_are_collected() -> None:
    stream = events_from_json(
        [
            {"sequence": 1, "timestamp": 1, "diagnosticEvent": {
                "message": "dev-web-lb: image not found\n", "color": "never", "severity": "error",
            }},
        ]
    )  # fmt: skip
    assert model.plan(stream, "dev").errors == ["dev-web-lb: image not found"]


@pytest.mark.parametrize(
    ("value", "path", "expected"),
    [
        ({"a": [{"b": 1}]}, "a[0].b", 1),
        ({"a": {"x.y": 2}}, 'a["x.y"]', 2),
        ({"a": []}, "a[0]", model._MISSING),
        ({"a": 1}, "b", model._MISSING),
    ],
)
def test_property_paths(value, path, expected) -> None:
    assert model.lookup(value, path) is expected or model.lookup(value, path) == expected


def test_urns() -> None:
    urn = (
        "urn:pulumi:dev::virtstack::pulumi:pulumi:Stack$virtstack:service:ServiceTier"
        "$docker:index/container:Container::dev-web-lb"
    )
    assert split_urn(urn) == ("docker:index/container:Container", "dev-web-lb")
    assert short_type("docker:index/container:Container") == "docker:Container"


def test_fixtures_are_named_for_how_they_were_made() -> None:
    # Recorded streams come from a real engine; hand-written ones say so in their name.
    for path in FIXTURES.glob("*.json"):
        assert path.name.startswith(("handmade-", "recorded-")), path.name


def _op(event) -> str | None:
    pre = event.resource_pre_event
    return pre.metadata.op if pre else None


# -- streams recorded from the real engine (tests/unit/fixtures/record_events.py) -------

RECORDED_PREVIEWS = ["preview-create", "preview-changes", "preview-secret", "preview-failed"]


def _raw(name: str) -> list[dict]:
    return json.loads((FIXTURES / f"recorded-{name}.json").read_text())


@pytest.mark.parametrize("name", RECORDED_PREVIEWS)
def test_counts_agree_with_the_engines_own_summary(name: str) -> None:
    # The engine counts components and the stack too; ours are the custom resources.
    raw = _raw(name)
    [summary] = [e["summaryEvent"]["resourceChanges"] for e in raw if "summaryEvent" in e]
    grouping: dict[str, str] = {}
    for e in raw:
        if "resourcePreEvent" in e:
            m = e["resourcePreEvent"]["metadata"]
            state = m.get("new") or m.get("old") or {}
            if not state.get("custom"):
                grouping[m["urn"]] = m["op"]
    counts = model.plan(events(f"recorded-{name}.json"), "vst-rec").counts()
    for op in ("create", "update", "replace", "delete", "same"):
        components = sum(1 for o in grouping.values() if o == op)
        assert counts[op] + components == summary.get(op, 0), (op, counts, summary)


def test_recorded_changes_scale_out_replace_and_delete() -> None:
    plan = model.plan(events("recorded-preview-changes.json"), "vst-rec", "container")
    changes = by_name(plan)
    assert {n: c.op for n, c in changes.items()} == {
        "vst-rec-web-replica-1": Op.CREATE,
        "vst-rec-web-lb": Op.REPLACE,
        "vst-rec-web-replica-0": Op.REPLACE,
        "vst-rec-app-lb": Op.DELETE,
        "vst-rec-app-replica-0": Op.DELETE,
        "vst-rec-app-net-docker": Op.DELETE,
    }
    lb = changes["vst-rec-web-lb"]
    assert lb.group.label == "ServiceTier vst-rec-web"
    assert lb.replace_keys == ["uploads"]
    # The provider names only `uploads`; the leaf and the changed line say what changed.
    assert lb.values == {
        "uploads[0].content": (
            "default-server inter 2s fall 2 rise 2",
            "default-server inter 3s fall 2 rise 2",
        )
    }
    replica = changes["vst-rec-web-replica-0"]
    assert replica.values["envs"] == ("VIRTSTACK_UPSTREAM=http://vst-rec-app:80", "(none)")
    assert replica.values["healthcheck.interval"] == ("2s", "3s")
    assert changes["vst-rec-app-net-docker"].group.label == "ServiceStack vst-rec"


def test_recorded_secret_change_shows_no_secret() -> None:
    plan = model.plan(events("recorded-preview-secret.json"), "vst-rec", "container")
    changes = by_name(plan)
    assert changes["vst-rec-docker"].op is Op.UPDATE
    assert changes["vst-rec-docker"].values == {"registryAuth": ("[secret]", "[secret]")}
    assert changes["vst-rec-registry-server"].values == {"uploads": ("[secret]", "[secret]")}
    text = markdown(plan) + json.dumps(plan.as_json())
    assert "ciphertext" not in text
    assert "password-0123456789" not in text


def test_recorded_failed_preview_keeps_the_programs_error() -> None:
    plan = model.plan(events("recorded-preview-failed.json"), "vst-rec", "container")
    assert plan.errors[0].startswith("virtstack:registry_password: required while registry.auth")
    log = EventLog()
    for event in events("recorded-preview-failed.json"):
        log(event)
    # The engine's closing "an unhandled error occurred" line is dropped.
    assert log.errors() == [plan.errors[0]]


def test_recorded_destroy_marks_retained_data() -> None:
    plan = model.plan(events("recorded-destroy.json"), "vst-rec")
    retained = {c.name for c in plan.changes if c.retained}
    assert retained == {"vst-rec-registry-storage"}
    assert RETAINED in markdown(plan)


def test_a_program_traceback_is_its_last_line() -> None:
    message = (
        "Program failed with an unhandled exception:\n"
        "Traceback (most recent call last):\n"
        '  File "/p/stacks/__main__.py", line 9, in <module>\n'
        "    main()\n"
        "FileNotFoundError: [Errno 2] No such file or directory: '/p/images/guest/VERSION'\n"
    )
    assert diagnostic_lines(message) == [
        "FileNotFoundError: [Errno 2] No such file or directory: '/p/images/guest/VERSION'"
    ]
    assert diagnostic_lines("1 error occurred:\n\t* boom\n") == ["1 error occurred:", "boom"]
