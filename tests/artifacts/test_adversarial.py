"""Hostile strings in every user-controlled field never change the meaning of a file.

Each value of the corpus, in each field a user writes (a tier's command and env, its volume
and health paths, a VM's extra cloud-config), is either refused by ``parse_spec`` with the
config key named, or rendered and then read back by the real consumer — ``cloud-init
schema``, ``systemd-analyze verify``, ``haproxy -c`` and a running HAProxy, busybox wget —
and by a parser of the consumer's syntax, which must return exactly the value put in.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from virtstack_components.cloudinit import user_data
from virtstack_components.libvirt.firewall import rules
from virtstack_components.probes import health_test
from virtstack_components.tier import HealthCheck, TierArgs, haproxy_config

from tests.support import free_port, require_tool, stop
from virtstack.errors import SpecError
from virtstack.spec import EnvironmentSpec, parse_spec

CORPUS: dict[str, str] = {
    "newline-new-key": "x\nruncmd: [[touch, /pwned]]",
    "newline-new-setting": "x\nExecStartPre=/bin/touch /pwned",
    "newline": "a\nb",
    "percent": "100%",
    "specifiers": "%n %H %% %",
    "double-quote": 'say "hi"',
    "single-quote": "it's",
    "backslash": "C:\\dir\\n\\x41",
    "trailing-backslash": "end\\",
    "command-substitution": "$(touch /tmp/pwned)",
    "variables": "$HOME ${HOME} $$ $",
    "backticks": "`id`",
    "semicolon": "a; rm -rf /",
    "lone-semicolon": ";",
    "ampersand": "a & b && c",
    "hash": "# not a comment",
    "close-bracket": "]",
    "comma": ",/etc",
    "jinja-expression": "{{ 7 * 7 }}",
    "jinja-statement": "{% raw %}",
    "yaml-mapping": "key: value",
    "yaml-sequence": "- item",
    "yaml-tag": "!!python/object/apply:os.system ['id']",
    "yaml-alias": "*alias",
    "yaml-anchor": "&anchor x",
    "yaml-bool": "yes",
    "yaml-null": "~",
    "unicode": "héllo ✓ 日本",
    "astral": "😀 \U0001d518",  # an emoji and a mathematical letter: 4-byte UTF-8
    "line-separators": "a\u2028b\u2029c",
    "next-line": "a\x85b",
    "byte-order-mark": "\ufeffx",
    "carriage-return": "a\rb",
    "tab": "a\tb",
    "nul": "a\x00b",
    "escape": "\x1b[31mred",
    "long": "A" * 20000 + '%$"\\',
    "empty": "",
    "url-query": "x?a=$(id);b&c='d'(e)*+,:@!~",
    "percent-escape": "x%20y%2F",
}

ECHO = "/bin/echo"
"""A program that exists wherever the tests run: systemd-analyze verify checks ExecStart."""
TIER = {"name": "web", "image": "virtstack/demo:1", "command": [ECHO, "ok"]}


def _config(**tier: Any) -> dict[str, Any]:
    return {"virtstack:target": "hostos", "virtstack:tiers": [{**TIER, **tier}]}


def _parsed(config: dict[str, Any], key: str) -> EnvironmentSpec | None:
    """The spec, or None when it is refused — then with ``key`` named in the error."""
    try:
        return parse_spec(config)
    except SpecError as exc:
        problem = str(exc)
    assert key in problem, f"the error does not name {key}: {problem}"
    return None


# --- the consumers' syntax, as their manuals define it --------------------------------------

_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_C_ESCAPES |= {"\\": "\\", '"': '"', "'": "'", "s": " "}


def _unescape(text: str, i: int) -> tuple[str, int]:
    """systemd's C-style escape starting at text[i] (after the backslash)."""
    c = text[i]
    if c in _C_ESCAPES:
        return _C_ESCAPES[c], i + 1
    width = {"x": 2, "u": 4, "U": 8}.get(c)
    if width:
        digits = text[i + 1 : i + 1 + width]
        assert re.fullmatch(f"[0-9a-fA-F]{{{width}}}", digits), f"bad escape \\{c}{digits}"
        assert int(digits, 16) != 0, "systemd refuses an escaped NUL"
        return chr(int(digits, 16)), i + 1 + width
    if c in "01234567":
        digits = text[i : i + 3]
        assert re.fullmatch("[0-7]{3}", digits), f"bad octal escape \\{digits}"
        return chr(int(digits, 8)), i + 3
    raise AssertionError(f"systemd ignores the unknown escape \\{c}")


def systemd_words(value: str) -> list[str]:
    """Split a setting's value into words the way systemd.syntax(7) describes."""
    words: list[str] = []
    i, n = 0, len(value)
    while True:
        while i < n and value[i] in " \t":
            i += 1
        if i >= n:
            return words
        word: list[str] = []
        quote = None
        while i < n and (quote or value[i] not in " \t"):
            c = value[i]
            if c in "\"'" and quote in (None, c):
                quote = None if quote else c
                i += 1
            elif c == "\\":
                ch, i = _unescape(value, i + 1)
                word.append(ch)
            else:
                word.append(c)
                i += 1
        assert quote is None, f"unbalanced quoting in {value!r}"
        words.append("".join(word))


def _specifiers(word: str) -> str:
    # Only "%%" is certain: any other specifier would be replaced by something else.
    def one(m: re.Match[str]) -> str:
        assert m.group(1) == "%", f"{m.group(0)!r} would be expanded by systemd"
        return "%"

    return re.sub(r"%(.?)", one, word, flags=re.DOTALL)


def _dollars(word: str) -> str:
    # ExecStart= substitutes $NAME and ${NAME}; "$$" is a literal '$'.
    def one(m: re.Match[str]) -> str:
        assert m.group(1) == "$", f"'${m.group(1)}' would be substituted by systemd"
        return "$"

    return re.sub(r"\$(.?)", one, word, flags=re.DOTALL)


def parse_unit(text: str) -> dict[str, list[str]]:
    """Every ``key=value`` of a unit file; anything else in it fails the test."""
    settings: dict[str, list[str]] = {}
    for line in text.split("\n"):
        if not line.strip() or line.startswith(("#", ";", "[")):
            continue
        assert not line.endswith("\\"), f"a continuation line: {line!r}"
        name, sep, value = line.partition("=")
        assert sep, f"not a setting: {line!r}"
        settings.setdefault(name.strip(), []).append(value.strip())
    return settings


def exec_start(unit: dict[str, list[str]]) -> list[str]:
    (value,) = unit["ExecStart"]
    return [_dollars(_specifiers(w)) for w in systemd_words(value)]


def environment(unit: dict[str, list[str]]) -> dict[str, str]:
    env = {}
    for value in unit.get("Environment", []):
        for word in systemd_words(value):
            name, _, val = _specifiers(word).partition("=")
            env[name] = val
    return env


# --- documents for every accepted value, checked by the consumers in one batch ----------------

SERVICE = "lab-web"


def service_document(spec: EnvironmentSpec, *, legacy: bool = False) -> str:
    """The replica cloud-config, with the context the libvirt tier passes."""
    tier = spec.tiers[0]
    assert tier.command is not None
    return user_data(
        "service",
        hostname="lab-web-0",
        user="virtstack",
        ssh_authorized_keys=[],
        service=SERVICE,
        # Components passed shlex-joined strings before lists: both must render the same.
        command=shlex.join(tier.command) if legacy else list(tier.command),
        env={**tier.env, "VIRTSTACK_TIER": SERVICE},
        secret_env={},
        data_path=tier.volume.path if tier.volume else None,
        firewall=rules("192.0.2.1", [("192.0.2.16", tier.port)]),
    )


def unit_of(document: str) -> str:
    files = yaml.safe_load(document)["write_files"]
    unit = next(f for f in files if f["path"] == f"/etc/systemd/system/virtstack-{SERVICE}.service")
    return str(unit["content"])


def _field_configs(value: str) -> dict[str, tuple[dict[str, Any], str]]:
    """Each field with ``value`` in it, and the key an error about it must name."""
    return {
        "command": (_config(command=[ECHO, value]), "virtstack:tiers[0].command[1]"),
        "env-value": (_config(env={"GREETING": value}), "virtstack:tiers[0].env.GREETING"),
        "env-name": (_config(env={value: "x"}), "virtstack:tiers[0].env"),
        "volume": (
            _config(volume={"name": "data", "path": "/v" + value}),
            "virtstack:tiers[0].volume.path",
        ),
        "health": (_config(health={"path": "/h" + value}), "virtstack:tiers[0].health.path"),
    }


def _extra(value: str) -> dict[str, Any]:
    return {"write_files": [{"path": "/tmp/x", "content": value}], "runcmd": [[ECHO, value]]}


def _documents() -> dict[str, str]:
    docs = {}
    for name, value in CORPUS.items():
        for field, (config, key) in _field_configs(value).items():
            spec = _parsed(config, key)
            if spec is not None and field != "health":
                docs[f"{field}/{name}"] = service_document(spec)
        docs[f"cloud-init/{name}"] = user_data(
            "vm",
            extra=_extra(value),
            hostname="lab-tools",
            user="virtstack",
            ssh_authorized_keys=[],
        )
    return docs


DOCUMENTS = _documents()


Require = Callable[[str], str]
Consumers = dict[str, dict[str, subprocess.CompletedProcess[str]]]
"""Per document, each consumer's verdict on it."""


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def consumers(tmp_path_factory: pytest.TempPathFactory) -> Consumers:
    """For every document: cloud-init's verdict and, for a service, systemd's on its unit."""
    cloud_init = require_tool("cloud-init", ".ci/run installs it from Debian")
    analyze = require_tool("systemd-analyze", "apt-get install systemd")
    root = tmp_path_factory.mktemp("adversarial")
    jobs: dict[tuple[str, str], list[str]] = {}
    for i, (doc_id, text) in enumerate(DOCUMENTS.items()):
        folder = root / str(i)
        folder.mkdir()
        (folder / "user-data").write_text(text)
        jobs[(doc_id, "cloud-init")] = [
            cloud_init, "schema", "--config-file", str(folder / "user-data")
        ]  # fmt: skip
        if not doc_id.startswith("cloud-init/"):
            unit = folder / f"virtstack-{SERVICE}.service"
            unit.write_text(unit_of(text))
            jobs[(doc_id, "systemd")] = [analyze, "verify", "--man=no", str(unit)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = dict(zip(jobs, pool.map(_run, jobs.values()), strict=True))
    results: Consumers = {}
    for (doc_id, tool), result in done.items():
        results.setdefault(doc_id, {})[tool] = result
    return results


def assert_consumers_accept(consumers: Consumers, doc_id: str) -> None:
    checked = consumers[doc_id]
    ci = checked["cloud-init"]
    assert ci.returncode == 0, ci.stdout + ci.stderr
    assert "Valid cloud-config" in ci.stdout
    if "systemd" in checked:
        sd = checked["systemd"]
        # verify warns (and still exits 0) about settings it ignores: none may be ignored.
        assert sd.returncode == 0, sd.stdout + sd.stderr
        assert not sd.stderr.strip(), sd.stderr


CASES = sorted(CORPUS)


@pytest.mark.parametrize("name", CASES)
def test_command_word(name: str, consumers: Consumers) -> None:
    value = CORPUS[name]
    config, key = _field_configs(value)["command"]
    spec = _parsed(config, key)
    if spec is None:
        return
    assert_consumers_accept(consumers, f"command/{name}")
    for legacy in (False, True):
        unit = parse_unit(unit_of(service_document(spec, legacy=legacy)))
        assert exec_start(unit) == [ECHO, value]
        assert set(unit) == {"Description", "After", "Wants", "Environment", "ExecStart"} | {
            "Restart", "RestartSec", "WantedBy"
        }  # fmt: skip


@pytest.mark.parametrize("program", ["-/bin/echo", "@/bin/echo", ":x", "+x", "!x", ";"])
def test_a_program_systemd_would_read_as_a_prefix_is_refused(
    program: str, require: Require, tmp_path: Path
) -> None:
    _parsed(_config(command=[program, "x"]), "virtstack:tiers[0].command")
    with pytest.raises(SpecError):
        parse_spec(_config(command=[program, "x"]))
    # Why quoting cannot carry it: systemd strips the '-' even from a quoted first word,
    # and then ignores that the program does not exist.
    unit = tmp_path / "prefix.service"
    unit.write_text('[Service]\nExecStart="-/nonexistent/program"\n')
    assert _run([require("systemd-analyze"), "verify", "--man=no", str(unit)]).returncode == 0


@pytest.mark.parametrize("name", CASES)
def test_env_value(name: str, consumers: Consumers) -> None:
    value = CORPUS[name]
    config, key = _field_configs(value)["env-value"]
    spec = _parsed(config, key)
    if spec is None:
        return
    assert_consumers_accept(consumers, f"env-value/{name}")
    env = environment(parse_unit(unit_of(service_document(spec))))
    assert env == {"GREETING": value, "VIRTSTACK_TIER": SERVICE}


@pytest.mark.parametrize("name", CASES)
def test_env_name(name: str, consumers: Consumers) -> None:
    value = CORPUS[name]
    config, key = _field_configs(value)["env-name"]
    spec = _parsed(config, key)
    if spec is None:
        return
    assert_consumers_accept(consumers, f"env-name/{name}")
    env = environment(parse_unit(unit_of(service_document(spec))))
    assert env == {value: "x", "VIRTSTACK_TIER": SERVICE}


@pytest.mark.parametrize("name", CASES)
def test_volume_path(name: str, consumers: Consumers) -> None:
    value = CORPUS[name]
    config, key = _field_configs(value)["volume"]
    spec = _parsed(config, key)
    if spec is None:
        return
    assert_consumers_accept(consumers, f"volume/{name}")
    mounts = yaml.safe_load(service_document(spec))["mounts"]
    assert mounts == [["/dev/vdb", "/v" + value, "ext4", "defaults,nofail", "0", "2"]]


@pytest.mark.parametrize("name", CASES)
def test_cloud_init_extra(name: str, consumers: Consumers) -> None:
    value = CORPUS[name]
    assert_consumers_accept(consumers, f"cloud-init/{name}")
    doc = yaml.safe_load(DOCUMENTS[f"cloud-init/{name}"])
    assert {"path": "/tmp/x", "content": value} in doc["write_files"]
    assert doc["runcmd"] == [[ECHO, value]]


# --- health paths: HAProxy's check and Docker's probe must request exactly the path ---------


class Recorder:
    """An HTTP server that answers 200 and remembers every request target it was sent."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.seen = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with recorder.seen:
                    recorder.targets.append(self.path)
                    recorder.seen.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])

    def wait_for(self, count: int, timeout: float = 10) -> list[str]:
        with self.seen:
            self.seen.wait_for(lambda: len(self.targets) >= count, timeout=timeout)
            return list(self.targets)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    thread = threading.Thread(target=rec.server.serve_forever, daemon=True)
    thread.start()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def haproxy_check_target(haproxy: str, config: str, rec: Recorder, tmp_path: Path) -> str:
    """The request target HAProxy's health check sends when running ``config``."""
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    checked = _run([haproxy, "-c", "-f", str(path)])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    process = subprocess.Popen([haproxy, "-db", "-f", str(path)], stderr=subprocess.DEVNULL)
    try:
        seen = rec.wait_for(1)
    finally:
        stop(process)
    assert seen, "HAProxy sent no health check"
    return seen[0]


def _lb_config(rec: Recorder, path: str | None, *, servers: bool = True) -> str:
    tier = TierArgs(port=rec.port, health=HealthCheck(path=path, interval=1, timeout=1))
    listen, stats = free_port(), free_port()
    config = haproxy_config(
        "adv", tier, [("adv-0", "127.0.0.1")] if servers else (), listen_port=listen,
        stats_port=stats,
    )  # fmt: skip
    # Loopback only: the test talks to nothing else.
    return config.replace(f"bind :{listen}", f"bind 127.0.0.1:{listen}").replace(
        f"bind :{stats}", f"bind 127.0.0.1:{stats}"
    )


@pytest.mark.parametrize("name", CASES)
def test_health_path(name: str, require: Require, recorder: Recorder, tmp_path: Path) -> None:
    value = CORPUS[name]
    config, key = _field_configs(value)["health"]
    spec = _parsed(config, key)
    if spec is None:
        return
    path = spec.tiers[0].health.path
    assert path == "/h" + value
    # Docker-discovered replicas: the config must pass `haproxy -c` too.
    dns = tmp_path / "dns.cfg"
    dns.write_text(_lb_config(recorder, path, servers=False))
    result = _run([require("haproxy"), "-c", "-f", str(dns)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        haproxy_check_target(require("haproxy"), _lb_config(recorder, path), recorder, tmp_path)
        == path
    )
    # Docker's probe, run as Docker runs an exec-form test: argv as is, no shell.
    test = health_test(path, recorder.port, 2)
    assert test[:2] == ["CMD", "busybox"]
    busybox = require_tool("busybox", "apt-get install busybox-static")
    done = len(recorder.targets)
    assert _run([busybox, *test[2:]]).returncode == 0
    assert recorder.wait_for(done + 1)[done] == path


def test_tcp_probe_passes_on_a_listening_port_and_fails_on_a_closed_one(recorder: Recorder) -> None:
    busybox = require_tool("busybox", "apt-get install busybox-static")
    assert _run([busybox, *health_test(None, recorder.port, 1)[2:]]).returncode == 0
    assert _run([busybox, *health_test(None, free_port(), 1)[2:]]).returncode != 0


# --- negative controls: the same checks catch what naive rendering does ----------------------


def test_control_yaml_round_trip_catches_a_naive_scalar() -> None:
    value = CORPUS["newline-new-key"]
    naive = jinja2.Environment().from_string("content: {{ value }}\n").render(value=value)
    assert yaml.safe_load(naive) != {"content": value}
    quoted = user_data("vm", extra=None, hostname="x", user="virtstack", ssh_authorized_keys=[])
    assert "runcmd" not in yaml.safe_load(quoted)


def test_control_unit_round_trip_catches_a_naive_exec_start(
    require: Require, tmp_path: Path
) -> None:
    naive = jinja2.Environment().from_string("[Service]\nExecStart={{ command }}\n")
    injected = naive.render(command=shlex.join([ECHO, CORPUS["newline-new-setting"]]))
    unit = tmp_path / "naive.service"
    unit.write_text(injected)
    # shlex quoting leaves the newline raw: systemd sees a broken line and a setting of its own.
    refused = _run([require("systemd-analyze"), "verify", "--man=no", str(unit)]).returncode != 0
    try:
        intact = exec_start(parse_unit(injected)) == [ECHO, CORPUS["newline-new-setting"]]
    except AssertionError:
        intact = False
    assert refused
    assert not intact
    specifier = naive.render(command=shlex.join([ECHO, "100%n"]))
    with pytest.raises(AssertionError, match="expanded"):
        exec_start(parse_unit(specifier))


def test_control_live_check_catches_a_naive_httpchk(
    require: Require, recorder: Recorder, tmp_path: Path
) -> None:
    config = _lb_config(recorder, "/h")
    naive = config.replace("option httpchk GET /h\n", "option httpchk GET /h#frag\n")
    assert naive != config
    assert haproxy_check_target(require("haproxy"), naive, recorder, tmp_path) != "/h#frag"


@pytest.fixture
def require() -> Require:
    return lambda tool: require_tool(tool, ".ci/run installs it from Debian")
