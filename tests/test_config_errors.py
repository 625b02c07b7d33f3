"""Config that fails clearly: each bad setting or apps-file key is one line that
names the file, the key and the fix, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.processes


CASES = {
    "misspelt-key": (
        "[apps.shop]\nsesion_ttl = 60\n",
        {},
        "apps.shop: unknown key 'sesion_ttl'; did you mean 'session_ttl'?",
    ),
    "misspelt-section": ("[aps.shop]\n", {}, "unknown key 'aps'; did you mean 'apps'?"),
    "unknown-model-key": (
        "[apps.shop.model]\nchunk_dealy = 0.1\n",
        {},
        "apps.shop.model: unknown key 'chunk_dealy'; did you mean 'chunk_delay'?",
    ),
    "unknown-backend": (
        '[apps.shop.model]\nbackend = "opnai"\n',
        {},
        "apps.shop.model.backend: unknown backend 'opnai'",
    ),
    "unknown-tool": (
        '[apps.shop.tools]\nenabled = ["calculater"]\n',
        {},
        "did you mean 'calculator'?",
    ),
    "custom-tool-not-importable": (
        '[apps.shop.tools.custom]\nlookup = "nowhere.tools:lookup"\n',
        {},
        "apps.shop.tools.custom.lookup: cannot import 'nowhere.tools'",
    ),
    "custom-tool-not-a-tool": (
        '[apps.shop.tools.custom]\nlookup = "tests.sample_tools:asyncio"\n',
        {},
        "is not a Tool",
    ),
    "api-key-env-unset": (
        '[apps.shop.model]\nbackend = "openai"\nbase_url = "https://llm.example/v1"\n'
        'api_key_env = "CONFAB_TEST_SURELY_UNSET_KEY"\n',
        {},
        "api_key_env names CONFAB_TEST_SURELY_UNSET_KEY, which is not set: export",
    ),
    "bad-limit": (
        "[apps.shop.limits]\nrequests_per_minute = -1\n",
        {},
        "apps.shop.limits.requests_per_minute must be",
    ),
    "bad-context-budget": (
        "[apps.shop.model]\ncontext_tokens = 100\n",
        {},
        "apps.shop.model.context_tokens must be a whole number of tokens >= 256",
    ),
    "bad-context-budget-per-model": (
        '[apps.shop.model]\ncontext_tokens_by_model = {"builtin" = "big"}\n',
        {},
        "apps.shop.model.context_tokens_by_model['builtin'] must be a whole number of tokens",
    ),
    "bad-memory-flag": (
        '[apps.shop]\nmemory = "yes"\n',
        {},
        "apps.shop.memory must be true or false",
    ),
    "unknown-search-language": (
        '[apps.shop]\nsearch_language = "englsh"\n',
        {},
        "apps.shop.search_language: unknown language 'englsh' (one of PostgreSQL's built-in "
        "text search configurations: simple, arabic,",
    ),
    "bad-ttl-type": (
        '[apps.shop]\nsession_ttl = "a day"\n',
        {},
        "apps.shop.session_ttl must be a whole number",
    ),
    "bad-env-number": (
        "",
        {"CONFAB_JANITOR_BATCH": "lots"},
        "CONFAB_JANITOR_BATCH must be a whole number, got 'lots'",
    ),
    "bad-env-range": (
        "",
        {"CONFAB_JANITOR_BATCH": "0"},
        "CONFAB_JANITOR_BATCH must be at least 1, got 0",
    ),
    "bad-log-level": ("", {"CONFAB_LOG_LEVEL": "loud"}, "CONFAB_LOG_LEVEL must be one of"),
    "bad-bus": (
        "",
        {"CONFAB_EVENT_BUS": "kafka://x"},
        "CONFAB_EVENT_BUS must be memory:// or a redis:// URL",
    ),
}


def environment(config: str, env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    apps = tmp_path / "apps.toml"
    apps.write_text(config)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONFAB_")}
    clean.pop("DATABASE_URL", None)
    database = f"sqlite://{tmp_path / 'confab.sqlite3'}"
    return {**clean, "CONFAB_CONFIG": str(apps), "DATABASE_URL": database, **env}


def check_config(
    config: str,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str, str]:
    """`server.py check-config`, in this process (the module is imported already)."""
    import server

    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in environment(config, env, tmp_path).items():
        monkeypatch.setenv(name, value)
    code = server.main(["check-config"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_config_is_one_line_and_exit_code_2(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config, env, expected = CASES[case]
    code, _, err = check_config(config, env, tmp_path, monkeypatch, capsys)
    assert code == 2, (code, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert expected in lines[0], lines[0]
    assert lines[0].startswith("error: ")
    if config:
        assert str(tmp_path / "apps.toml") in lines[0] or "CONFAB_" in lines[0]
    assert not (tmp_path / "confab.sqlite3").exists()  # nothing was written


def test_an_unknown_confab_variable_is_named_with_the_closest_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo in an environment variable is not silently ignored (nor fatal: the
    setting it meant keeps its default, and the warning says which one)."""
    env = {"CONFAB_LOG_LEVL": "debug", "CONFAB_SOMETHING_ELSE": "1"}
    code, out, err = check_config("", env, tmp_path, monkeypatch, capsys)
    assert code == 0, err
    assert "config ok" in out
    assert err.splitlines() == [
        "warning: CONFAB_LOG_LEVL (did you mean CONFAB_LOG_LEVEL?) is set but is no setting: "
        "ignored",
        "warning: CONFAB_SOMETHING_ELSE is set but is no setting: ignored",
    ]


def test_serve_refuses_to_start_on_a_bad_config(tmp_path: Path) -> None:
    """The real command: the check runs before anything listens or is written."""
    config, env, expected = CASES["misspelt-key"]
    result = subprocess.run(
        [sys.executable, "server.py", "serve", "--port", "1"],
        cwd=ROOT,
        env=environment(config, env, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"error: CONFAB_CONFIG {tmp_path / 'apps.toml'}: {expected}"
    ]
    assert not (tmp_path / "confab.sqlite3").exists()


def test_a_good_config_checks_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = (
        '[apps.shop]\nsession_ttl = 60\norigins = ["https://shop.example"]\n'
        '[apps.shop.tools.custom]\nprogress = "tests.sample_tools:progress"\n'
        "[apps.shop.limits]\nrequests_per_minute = 60\n"
    )
    code, out, err = check_config(
        config, {"DATABASE_URL": "postgres://u:hunter2@db/confab"}, tmp_path, monkeypatch, capsys
    )
    assert code == 0, err
    assert "config ok: apps default, shop" in out
    assert "hunter2" not in out
