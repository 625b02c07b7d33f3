"""The npm client libraries frontends use, for tests that drive Confab with them.

They are installed once, by the first test that needs them, into a cache outside
the repository (`CONFAB_NODE_CACHE`, default `~/.cache/confab-node`), pinned, and
run by the machine's Node as CommonJS scripts that find them through `NODE_PATH`.
Where npm or Node is missing the test skips (and fails under `CI=true`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import unavailable

# Pinned: a new release should be a change someone reads, not a surprise in CI.
PACKAGES = {
    "graphql": "16.15.0",
    "graphql-ws": "6.4.2",
    "graphql-sse": "2.6.1",
    "graphql-http": "1.23.1",
    "subscriptions-transport-ws": "0.11.0",
    "ws": "8.23.0",
    "@apollo/client": "4.3.8",
    "rxjs": "7.8.2",
}
CACHE = Path(os.environ.get("CONFAB_NODE_CACHE") or Path.home() / ".cache" / "confab-node")


def node_modules() -> Path:
    """The cache's node_modules with every pinned package; installs on first use."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("Node.js and npm", "not on PATH")
    CACHE.mkdir(parents=True, exist_ok=True)
    manifest = CACHE / "package.json"
    wanted = {"name": "confab-test-clients", "private": True, "dependencies": PACKAGES}
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest workers and parallel runs share it
        installed = manifest.exists() and json.loads(manifest.read_text()) == wanted
        if not installed or not (CACHE / "node_modules").is_dir():
            manifest.write_text(json.dumps(wanted, indent=2))
            result = subprocess.run(
                [str(npm), "install", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=CACHE,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if result.returncode != 0:
                manifest.unlink(missing_ok=True)
                unavailable("the npm registry", result.stderr.strip()[-500:])
    return CACHE / "node_modules"


def node_command(script: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run a CommonJS `script` (its text)
    with the pinned packages importable, for tests that talk to it as it runs."""
    modules = node_modules()
    path = CACHE / "scripts"
    path.mkdir(exist_ok=True)
    source = path / f"script-{hashlib.sha256(script.encode()).hexdigest()[:16]}.cjs"
    source.write_text(script)
    return ["node", str(source), *args], {**os.environ, "NODE_PATH": str(modules)}


def run_node(
    script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a CommonJS `script` (its text) to its end."""
    command, node_env = node_command(script, *args)
    return subprocess.run(
        command,
        env={**node_env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
