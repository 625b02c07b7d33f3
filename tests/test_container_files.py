"""The container files (Dockerfile, .dockerignore, compose.yaml, deploy/nginx.conf),
checked with what runs without a container engine.

- The Dockerfile's and compose.yaml's structure (multi-stage, non-root, health
  checks, start-up order, one published port, no secrets).
- The image build, replayed: the builder stage's RUN lines run as written in a
  temporary directory (a fresh venv, pip installing the same way), the final
  stage's COPY lines copy what they name, and the server starts from there with
  the image's ENV, WORKDIR and CMD (only the listen address and port changed) and
  nothing else: it must answer /readyz, the image's HEALTHCHECK and a chat, on the
  embedded SQLite file in the working directory. A file the Dockerfile forgets to
  copy fails here. (The pip install takes most of its 30 to 60 s.)
- deploy/nginx.conf, run by Debian's nginx in front of two real replicas (only
  the upstream addresses and the listen port replaced): an SSE stream and a
  graphql-transport-ws subscription work through it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML, without its stubs
from gql import Client
from gql.transport.websockets import WebsocketsTransport

from tests.conftest import new_id, replica_pair, unavailable
from tests.live import TRANSPORT_WS, Collector, cli
from tests.processes import ROOT, ServerProcess, free_port
from tests.rest_client import EventStream, chat, create_session, headers, ok

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "compose.yaml"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"

SECRET_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD)", re.IGNORECASE)


# -- the Dockerfile, parsed ----------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of `CMD ["a", "b"]`, or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list), value
        return [str(item) for item in value]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """The stage's ENV, `$VAR` references left as written."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for item in shlex.split(instruction.args):
                name, sep, value = item.partition("=")
                assert sep, f"ENV {instruction.args!r}: use the NAME=value form"
                values[name] = value
        return values


def parse_dockerfile(text: str) -> list[Stage]:
    joined = re.sub(r"\\\n", " ", text)
    stages: list[Stage] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
            continue
        assert stages, f"{keyword} before FROM"
        stages[-1].instructions.append(Instruction(keyword, args.strip()))
    return stages


@dataclass
class Copy:
    sources: list[str]
    dest: str
    from_stage: str | None


def copy_of(instruction: Instruction) -> Copy:
    parts = shlex.split(instruction.args)
    from_stage = None
    while parts and parts[0].startswith("--"):
        flag = parts.pop(0)
        if flag.startswith("--from="):
            from_stage = flag.removeprefix("--from=")
        else:
            raise AssertionError(f"COPY flag the replay does not know: {flag}")
    assert len(parts) >= 2, instruction.args
    return Copy(sources=parts[:-1], dest=parts[-1], from_stage=from_stage)


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def final_copies(stage: Stage) -> list[Copy]:
    return [copy_of(i) for i in stage.all("COPY")]


# -- Dockerfile structure ----------------------------------------------------------------


def test_dockerfile_is_multi_stage_slim_and_runs_as_a_user(stages: list[Stage]) -> None:
    builder, final = stages[0], stages[-1]
    assert len(stages) == 2
    assert builder.name == "builder"
    assert all(stage.base == "python:3.11-slim" for stage in stages)
    # Only the venv comes from the builder; no compiler or pip cache travels along.
    from_builder = [c for c in final_copies(final) if c.from_stage == "builder"]
    assert [(c.sources, c.dest) for c in from_builder] == [(["/opt/venv"], "/opt/venv")]
    users = final.all("USER")
    assert users, "the final stage must switch to a user"
    assert users[-1].args not in ("root", "0", "0:0")
    # USER comes before the command runs, after every RUN that needs root.
    keywords = [i.keyword for i in final.instructions]
    assert max(n for n, k in enumerate(keywords) if k == "RUN") < keywords.index("USER")
    user = users[-1].args
    assert any(user in run.args and "useradd" in run.args for run in final.all("RUN"))


def test_dockerfile_serves_on_all_interfaces_with_a_health_check(stages: list[Stage]) -> None:
    final = stages[-1]
    env = final.env()
    assert env["CONFAB_HOST"] == "0.0.0.0"
    assert env["CONFAB_PORT"] == "8000"
    assert [i.args for i in final.all("EXPOSE")] == ["8000"]
    assert [i.args for i in final.all("STOPSIGNAL")] == ["SIGTERM"]
    [check] = final.all("HEALTHCHECK")
    assert "/healthz" in check.args
    assert "curl" not in check.args
    assert "wget" not in check.args
    cmd = final.all("CMD")[-1].exec_form()
    assert cmd == ["python", "/app/server.py"], "exec form: SIGTERM reaches the server"


def test_dockerfile_uses_the_embedded_default_without_a_database_url(stages: list[Stage]) -> None:
    final = stages[-1]
    env = final.env()
    # No DATABASE_URL baked in: it would shadow CONFAB_DATABASE_URL, and without
    # one the server's default `sqlite://confab.sqlite3` lands in the volume.
    assert "DATABASE_URL" not in env
    assert "CONFAB_DATABASE_URL" not in env
    workdirs = [i.args for i in final.all("WORKDIR")]
    assert workdirs[-1] == "/data"
    assert any("/data" in v.args for v in final.all("VOLUME"))
    assert any("chown" in run.args and "/data" in run.args for run in final.all("RUN"))


def test_dockerfile_copies_the_app_and_nothing_else(stages: list[Stage]) -> None:
    copied = {
        source.rstrip("/")
        for copy in final_copies(stages[-1])
        if copy.from_stage is None
        for source in copy.sources
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in packages:
        assert pattern.rstrip("*") in copied, f"{pattern} is a package but not copied"
    for module in project["tool"]["setuptools"].get("py-modules", ["server", "settings"]):
        assert f"{module}.py" in copied or "*.py" in copied, f"{module}.py is not copied"
    assert "graphql" in copied
    assert not copied & {".", "tests", "docs", "bench", ".venv", ".git"}, copied


def test_dockerfile_and_compose_carry_no_secrets(
    stages: list[Stage], compose: dict[str, Any]
) -> None:
    for stage in stages:
        for name in stage.env():
            assert not SECRET_NAME.search(name), f"ENV {name} in the image"
        for arg in stage.all("ARG"):
            assert not SECRET_NAME.search(arg.args), f"ARG {arg.args}: build args stay in history"
    # The only credential is PostgreSQL's password, always taken from the environment.
    services: dict[str, Any] = compose["services"]
    credentials = []
    for service in services.values():
        for name, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(name):
                credentials.append(value)
            credentials += re.findall(r"://[^:/@]+:([^@]+)@", str(value))
    assert credentials
    assert all(c.startswith("${POSTGRES_PASSWORD") for c in credentials), credentials


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    required = {".git", ".venv", "**/__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
    assert required <= patterns
    assert "*.sqlite3" in patterns
    assert ".env" in patterns


# -- compose.yaml --------------------------------------------------------------------


def test_compose_runs_postgres_redis_two_replicas_and_a_balancer(
    compose: dict[str, Any],
) -> None:
    services: dict[str, Any] = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "confab-1", "confab-2", "nginx"}
    for name in ("confab-1", "confab-2"):
        replica = services[name]
        assert replica["build"] == "."
        env = replica["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["CONFAB_EVENT_BUS"] == "redis://redis:6379/0"
        assert env["CONFAB_AUTO_MIGRATE"] == "false"
        assert "ports" not in replica, "replicas are reached only through the balancer"
        assert replica["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }
    assert services["confab-1"]["environment"] == services["migrate"]["environment"]
    migrate = services["migrate"]
    assert migrate["command"] == ["python", "/app/server.py", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    nginx = services["nginx"]
    assert nginx["depends_on"] == {
        "confab-1": {"condition": "service_healthy"},
        "confab-2": {"condition": "service_healthy"},
    }
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    published = [name for name, service in services.items() if "ports" in service]
    assert published == ["nginx"]
    [port] = nginx["ports"]
    assert port.endswith(":8080")


def test_compose_health_checks_every_long_running_service(compose: dict[str, Any]) -> None:
    services: dict[str, Any] = compose["services"]
    for name, service in services.items():
        check = service["healthcheck"]
        if name == "migrate":
            assert check == {"disable": True}
            continue
        test = check["test"]
        assert isinstance(test, list), (name, test)
        assert test[0] in ("CMD", "CMD-SHELL"), (name, test)
        assert check["interval"], name
        assert check["retries"] >= 3, name
    assert "/readyz" in " ".join(services["confab-1"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "ping" in services["redis"]["healthcheck"]["test"]


def test_compose_balances_over_both_replicas(compose: dict[str, Any]) -> None:
    conf = NGINX_CONF.read_text()
    upstream = re.search(r"upstream confab \{(.*?)\}", conf, re.S)
    assert upstream, conf
    servers = re.findall(r"server (\S+?)(?::(\d+))?[ ;]", upstream.group(1))
    assert servers == [("confab-1", "8000"), ("confab-2", "8000")]
    assert re.search(r"listen 8080;", conf)


def test_nginx_config_passes_streams_and_websockets_through() -> None:
    conf = NGINX_CONF.read_text()
    for directive in (
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_buffering off;",
        "proxy_read_timeout 3600s;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    ):
        assert directive in conf, directive
    assert "non_idempotent" not in conf, "a chat message must never be sent twice"


# -- the image build, replayed outside a container engine ---------------------------


class Replay:
    """Container paths mapped under one temporary directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, container_path: str) -> Path:
        assert container_path.startswith("/"), container_path
        return self.root / container_path.lstrip("/")

    def rewrite(self, text: str, roots: list[str]) -> str:
        for container_path in sorted(roots, key=len, reverse=True):
            text = re.sub(
                rf"(?<![\w/]){re.escape(container_path)}(?=[/\s:\"']|$)",
                str(self.path(container_path)),
                text,
            )
        return text


def container_roots(stages: list[Stage]) -> list[str]:
    """Every absolute path the Dockerfile names as WORKDIR or COPY destination."""
    roots = {"/opt/venv"}
    for stage in stages:
        roots.update(i.args for i in stage.all("WORKDIR"))
        for copy in final_copies(stage):
            if copy.dest.startswith("/"):
                roots.add(copy.dest.rstrip("/"))
    return sorted(roots)


def apply_env(
    env: dict[str, str], values: dict[str, str], replay: Replay, roots: list[str]
) -> dict[str, str]:
    """`env` after one ENV line: `$VAR` expanded from `env`, container paths mapped."""
    applied = dict(env)
    for name, value in values.items():
        expanded = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)
        applied[name] = replay.rewrite(expanded, roots)
    return applied


def copy_into(sources: list[str], dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.sqlite3", "*.sqlite3-*")
    for source in sources:
        if any(c in source for c in "*?["):
            matches = sorted(str(m.relative_to(ROOT)) for m in ROOT.glob(source) if m.is_file())
            assert matches, f"COPY {source}: matches no file in the build context"
            copy_into(matches, dest)
            continue
        path = ROOT / source
        assert path.exists(), f"COPY {source}: no such file in the build context"
        if path.is_dir():
            target = dest if source.endswith("/") else dest / path.name
            shutil.copytree(path, target, ignore=ignore, dirs_exist_ok=True)
        else:
            target = dest / path.name if dest.is_dir() or str(dest).endswith("/") else dest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def replay_stage(
    stage: Stage, replay: Replay, roots: list[str], base_env: dict[str, str], run: bool
) -> tuple[Path, dict[str, str]]:
    """COPY (from the context), WORKDIR, ENV and, if `run`, RUN, in order."""
    workdir = replay.root
    env = dict(base_env)
    for instruction in stage.instructions:
        if instruction.keyword == "WORKDIR":
            workdir = replay.path(instruction.args)
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "ENV":
            env = apply_env(env, Stage("", None, [instruction]).env(), replay, roots)
        elif instruction.keyword == "COPY":
            copy = copy_of(instruction)
            if copy.from_stage is not None:
                # The builder wrote straight to the same mapped path.
                assert copy.sources == [copy.dest], instruction.args
                assert replay.path(copy.dest).is_dir(), instruction.args
                continue
            dest = Path(copy.dest)
            target = replay.path(copy.dest) if dest.is_absolute() else workdir / copy.dest
            if copy.dest.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
            copy_into(copy.sources, target)
        elif instruction.keyword == "RUN" and run:
            command = replay.rewrite(instruction.args, roots)
            result = subprocess.run(
                ["/bin/sh", "-c", command],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
            )
            assert result.returncode == 0, f"RUN {instruction.args}\n{result.stderr[-3000:]}"
    return workdir, env


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready after {timeout}s:\n{log.read_text()}")


# The pip install takes 30 to 90 s on this machine (a fresh venv, no pip cache, as
# in the image): more than the suite's default timeout.
@pytest.mark.timeout(300)
def test_the_image_build_replayed_serves_a_chat(stages: list[Stage], tmp_path: Path) -> None:
    builder, final = stages[0], stages[-1]
    replay = Replay(tmp_path / "image")
    roots = container_roots(stages)
    # The base image's `python` (not this venv's, so nothing leaks from the checkout).
    base_bin = tmp_path / "base-bin"
    base_bin.mkdir()
    base_python = Path(getattr(sys, "_base_executable", sys.executable))
    (base_bin / "python").symlink_to(base_python)
    system_path = f"{base_bin}:/usr/local/bin:/usr/bin:/bin"
    # pip's own settings (index, certificates) as this machine has them.
    pip_env = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    home = tmp_path / "home"
    home.mkdir()
    base = {"PATH": system_path, "HOME": str(Path.home()), "LANG": "C.UTF-8", **pip_env}
    replay_stage(builder, replay, roots, base, run=True)
    # The final stage's RUN lines make the user and chown /data: root-only work
    # the replay does not do (it creates the directories instead).
    workdir, env = replay_stage(
        final, replay, roots, {"PATH": system_path, "HOME": str(home), "LANG": "C.UTF-8"}, run=False
    )
    for volume in final.all("VOLUME"):
        for path in json.loads(volume.args):
            replay.path(path).mkdir(parents=True, exist_ok=True)
    assert workdir == replay.path("/data")
    port = free_port()
    env |= {"CONFAB_HOST": "127.0.0.1", "CONFAB_PORT": str(port)}
    command = final.all("CMD")[-1].exec_form()
    assert command is not None
    executable = shutil.which(command[0], path=env["PATH"])
    assert executable is not None
    assert executable.startswith(str(replay.root)), executable
    argv = [executable, *(replay.rewrite(arg, roots) for arg in command[1:])]
    log = tmp_path / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(argv, cwd=workdir, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, url, log)
        assert (workdir / "confab.sqlite3").exists(), "the embedded default is /data/confab.sqlite3"
        assert httpx.get(f"{url}/readyz", timeout=5).json()["database"] == "ok"
        # The image's HEALTHCHECK, as the engine would run it.
        [check] = final.all("HEALTHCHECK")
        probe = Instruction("CMD", check.args.split(" CMD ", 1)[1]).exec_form()
        assert probe is not None
        probe_argv = [shutil.which(probe[0], path=env["PATH"]) or probe[0], *probe[1:]]
        healthy = subprocess.run(probe_argv, env=env, capture_output=True, timeout=10, check=False)
        assert healthy.returncode == 0, healthy.stderr
        answer = asyncio.run(chat_once(url))
        assert answer.strip(), "the agent answered"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text()
    unhealthy = subprocess.run(probe_argv, env=env, capture_output=True, timeout=10, check=False)
    assert unhealthy.returncode != 0, "the health check fails once the server is gone"


async def chat_once(url: str) -> str:
    session_id = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        ok(await chat(http, session_id, "hello from the image"))
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            snapshot = ok(await http.get("/api/state", headers=headers(session_id)))
            if not snapshot["is_processing"]:
                break
            assert asyncio.get_running_loop().time() < deadline, snapshot
            await asyncio.sleep(0.1)
    replies = [m["content"] for m in snapshot["messages"] if m["sender"] == "agent"]
    assert replies, snapshot
    users = [m["content"] for m in snapshot["messages"] if m["sender"] == "user"]
    assert users == ["hello from the image"], snapshot
    return str(replies[-1])


# -- nginx in front of two replicas ---------------------------------------------------


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        unavailable("nginx", "not installed (.ci/run installs Debian's nginx-light)")
    assert found is not None
    return found


@dataclass
class Balancer:
    url: str
    port: int
    replicas: tuple[ServerProcess, ServerProcess]


def render_nginx_conf(port: int, upstreams: list[int]) -> str:
    """deploy/nginx.conf with only the listen port and upstream addresses replaced."""
    conf = NGINX_CONF.read_text()
    replacements = {
        "listen 8080;": f"listen 127.0.0.1:{port};",
        "server confab-1:8000 ": f"server 127.0.0.1:{upstreams[0]} ",
        "server confab-2:8000 ": f"server 127.0.0.1:{upstreams[1]} ",
    }
    for old, new in replacements.items():
        assert conf.count(old) == 1, f"{old!r} not found once in {NGINX_CONF}"
        conf = conf.replace(old, new)
    return conf


@pytest.fixture(scope="module")
def balancer(
    live_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Balancer]:
    nginx = nginx_binary()
    logs = tmp_path_factory.mktemp("balancer")
    env = {**live_env, "CONFAB_SSE_KEEPALIVE": "0.5", "FORWARDED_ALLOW_IPS": "127.0.0.1"}
    # Two replicas starting at once on a database whose apps are not stored yet may
    # both insert them ("duplicate key ... apps_pkey", one exits): store them first.
    cli(env, "keys", "list")
    with replica_pair(env, logs) as pair:
        port = free_port()
        conf = logs / "nginx.conf"
        conf.write_text(render_nginx_conf(port, [pair[0].port, pair[1].port]))
        (logs / "logs").mkdir()
        argv = [nginx, "-p", str(logs), "-c", str(conf), "-g", f"daemon off; pid {logs}/nginx.pid;"]
        checked = subprocess.run([*argv, "-t"], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
        log = logs / "nginx.log"
        with log.open("w") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=out)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 10
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).text == "OK":
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            yield Balancer(url=url, port=port, replicas=pair)
        finally:
            process.send_signal(signal.SIGQUIT)  # graceful: open streams are closed
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def subscribers(balancer: Balancer) -> int:
    """Live subscriptions on both replicas together (each one's /readyz)."""
    total = 0
    async with httpx.AsyncClient(timeout=5) as http:
        for replica in balancer.replicas:
            total += int((await http.get(f"{replica.url}/readyz")).json()["events"]["subscribers"])
    return total


async def until_subscribers(balancer: Balancer, count: int) -> None:
    """Polls both replicas (no race with the first event); fails after 10 s."""
    async with asyncio.timeout(10):
        while True:
            if await subscribers(balancer) >= count:
                return
            await asyncio.sleep(0.05)


async def test_balancer_spreads_requests_over_both_replicas(balancer: Balancer) -> None:
    def served() -> list[int]:
        return [replica.log().count("/readyz") for replica in balancer.replicas]

    before = served()
    async with httpx.AsyncClient(base_url=balancer.url, timeout=10) as http:
        for _ in range(6):
            assert (await http.get("/readyz")).status_code == 200
    # Each replica's access log shows some of them (round robin).
    async with asyncio.timeout(10):
        while True:
            if all(now > then for now, then in zip(served(), before, strict=True)):
                return
            await asyncio.sleep(0.05)


async def test_sse_streams_through_the_balancer_unbuffered(balancer: Balancer) -> None:
    session_id = new_id()
    async with httpx.AsyncClient(base_url=balancer.url, timeout=10) as http:
        await create_session(http, session_id)
        before = await subscribers(balancer)
        request = http.build_request(
            "GET",
            "/api/updates",
            headers={**headers(session_id), "Accept": "text/event-stream"},
            timeout=httpx.Timeout(10, read=30),
        )
        response = await http.send(request, stream=True)
        stream = EventStream(response)
        try:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            await until_subscribers(balancer, before + 1)
            # Keep-alive comments are a few bytes each: a buffering proxy would hold them.
            await stream.wait_until(lambda s: len(s.comments) >= 2, "2 keep-alive comments")
            ok(
                await http.patch(
                    f"/api/sessions/{session_id}",
                    json={"title": "Through nginx"},
                    headers=headers(session_id),
                )
            )
            [renamed] = await stream.wait_for_type("title_changed")
            assert renamed["new_title"] == "Through nginx"
            ok(await chat(http, session_id, '/tool calculator {"expression": "6*7"}'))
            [complete] = await stream.wait_for_type("tool_complete")
            assert complete["result"]["value"] == 42
            assert not stream.closed
        finally:
            await stream.close()
            await response.aclose()


async def test_websocket_subscription_through_the_balancer(balancer: Balancer) -> None:
    session_id = new_id()
    transport = WebsocketsTransport(
        url=f"ws://127.0.0.1:{balancer.port}/graphql",
        subprotocols=[TRANSPORT_WS],
        connect_timeout=5,
        ack_timeout=5,
        close_timeout=2,
    )
    async with httpx.AsyncClient(base_url=balancer.url, timeout=10) as http:
        await create_session(http, session_id)
        before = await subscribers(balancer)
        async with Client(transport=transport) as session:
            events = Collector(
                session,
                "subscription($id: ID!) { titleChanged(sessionId: $id) { sessionId newTitle } }",
                id=session_id,
            )
            try:
                await until_subscribers(balancer, before + 1)
                rename = (
                    "mutation($id: ID!, $t: String!) { renameSession(id: $id, title: $t) { id } }"
                )
                for title in ("one", "two"):
                    body = ok(
                        await http.post(
                            "/graphql",
                            json={"query": rename, "variables": {"id": session_id, "t": title}},
                        )
                    )
                    assert "errors" not in body, body
                received = await events.wait_for(2)
            finally:
                await events.stop()
    assert [r["titleChanged"]["newTitle"] for r in received] == ["one", "two"]
