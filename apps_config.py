"""The apps file (``CONFAB_CONFIG``): the tenants beyond ``default``, checked whole.

Every key is known: a misspelt one is an error that names the file, the key and
the closest known key ("did you mean"), never silently ignored. Values are checked
for type and range here; what needs importing (custom tools, simulators) or the
environment (`api_key_env`) is checked when the apps are built
(runtime/agents/registry.py), before the server listens (`server.py check-config`
does both without serving).
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_APP = "default"
BUILTIN_TOOL_NAMES = ("current_time", "calculator", "wallet_address")
MODEL_BACKENDS = ("builtin", "openai")

APP_KEYS = (
    "display_name",
    "session_ttl",
    "queue_limit",
    "model",
    "tools",
    "origins",
    "keyless_wallet_listing",
    "provider_keys",
    "simulator",
    "limits",
    "memory",
    "keep_memories",
    "search_language",
)
TOOLS_KEYS = ("enabled", "custom")
# PostgreSQL's built-in text search configurations (`\\dF` in psql); SQLite's FTS5
# index stems English words whichever is chosen (docs/search.md).
SEARCH_LANGUAGES = (
    "simple", "arabic", "armenian", "basque", "catalan", "danish", "dutch", "english",
    "finnish", "french", "german", "greek", "hindi", "hungarian", "indonesian", "irish",
    "italian", "lithuanian", "nepali", "norwegian", "portuguese", "romanian", "russian",
    "serbian", "spanish", "swedish", "tamil", "turkish", "yiddish",
)  # fmt: skip
DEFAULT_SEARCH_LANGUAGE = "english"
# Model options every backend takes, and each backend's own (name: kind of value).
COMMON_MODEL_OPTIONS = {
    "backend": "text",
    "models": "list",
    "system_prompt": "text",
    "turn_timeout": "seconds",
    "tool_timeout": "seconds",
    "context_tokens": "count",
    "context_tokens_by_model": "budgets",
}
BACKEND_OPTIONS = {
    "builtin": {"chunk_delay": "seconds"},
    "openai": {
        "base_url": "url",
        "api_key_env": "text",
        "timeout": "seconds",
        "max_retries": "count",
        "retry_backoff": "seconds",
        "provider": "text",
    },
}


def check_keys(where: str, table: Mapping[str, Any], known: Iterable[str]) -> None:
    """Every key of `table` is one of `known`; else an error with the closest one."""
    allowed = list(known)
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(allowed)})"
            raise SettingsError(f"{where}: unknown key {str(key)[:60]!r}{hint}")


def _check_option(where: str, value: Any, kind: str) -> None:
    if kind == "seconds" and (
        isinstance(value, bool) or not isinstance(value, int | float) or value < 0
    ):
        raise SettingsError(f"{where} must be a number of seconds >= 0")
    if kind == "count" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise SettingsError(f"{where} must be a whole number >= 0")
    if kind == "text" and (not isinstance(value, str) or not value.strip()):
        raise SettingsError(f"{where} must be a non-empty string")
    if kind == "budgets" and not isinstance(value, dict):
        raise SettingsError(f"{where} must be a table of model names to token counts")
    if kind == "url" and (
        not isinstance(value, str) or not value.startswith(("http://", "https://"))
    ):
        raise SettingsError(f"{where} must be an http:// or https:// URL")


class SettingsError(ValueError):
    """A setting or the config file is invalid; the message names the culprit."""


DEFAULT_CONTEXT_TOKENS = 8_192
MIN_CONTEXT_TOKENS = 256


@dataclass(frozen=True)
class ModelConfig:
    backend: str = "builtin"
    models: tuple[str, ...] = ("builtin",)
    system_prompt: str = "You are a helpful assistant."
    options: Mapping[str, Any] = field(default_factory=dict)

    def context_tokens(self, model: str) -> int:
        """The model's context budget: its own entry, else the app's, else 8,192."""
        budgets: Mapping[str, int] = self.options.get("context_tokens_by_model", {})
        return int(budgets.get(model, self.options.get("context_tokens", DEFAULT_CONTEXT_TOKENS)))


@dataclass(frozen=True)
class RateLimits:
    """How fast one app, and one client of it, may go (0: no limit). A client is a
    peer address (runtime/rate_limits.py)."""

    # Requests (REST requests, GraphQL operations) per minute, per client.
    requests_per_minute: int = 0
    # Requests per minute for the whole app, all clients together.
    app_requests_per_minute: int = 0
    # Bytes of chat messages one client may send per minute.
    message_bytes_per_minute: int = 0
    # Sessions of one client answering at once (a session's turns run one at a time).
    concurrent_turns: int = 0


@dataclass(frozen=True)
class AppConfig:
    name: str
    display_name: str
    session_ttl: int = 0
    queue_limit: int = 16
    model: ModelConfig = field(default_factory=ModelConfig)
    tools: tuple[str, ...] = BUILTIN_TOOL_NAMES
    custom_tools: Mapping[str, str] = field(default_factory=dict)
    # Web origins of the app's frontends: a keyless REST request from one acts in
    # this app (the legacy keyless trust; strict keys turn it off).
    origins: tuple[str, ...] = ()
    # The legacy rule that a wallet's session list is not secret: a keyless listing
    # by wallet includes this app's sessions (ids and titles).
    keyless_wallet_listing: bool = False
    # Clients may store their own model provider keys, which their turns then use.
    provider_keys: bool = True
    # `module:function` that simulates transactions (POST /api/simulate); None: 501.
    simulator: str | None = None
    limits: RateLimits = field(default_factory=RateLimits)
    # Wallet memory (runtime/memory.py): a wallet-bound session's finished turns leave
    # a short memory for the wallet, and its new sessions start with them.
    memory: bool = False
    # Memories outlive the session they came from (by default they go with it).
    keep_memories: bool = False
    # How PostgreSQL's full-text search stems this app's words (runtime/search.py).
    search_language: str = DEFAULT_SEARCH_LANGUAGE


def default_app() -> AppConfig:
    return AppConfig(name=DEFAULT_APP, display_name="Default")


def load_apps(path: Path) -> dict[str, AppConfig]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"CONFAB_CONFIG: cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"CONFAB_CONFIG: {path} is not valid TOML: {exc}") from exc
    source = f"CONFAB_CONFIG {path}"
    check_keys(source, document, ["apps"])
    apps = {DEFAULT_APP: default_app()}
    tables = document.get("apps", {})
    if not isinstance(tables, dict):
        raise SettingsError("CONFAB_CONFIG: [apps] must be a table of app tables")
    for name, table in tables.items():
        apps[name] = _parse_app(source, name, table)
    _check_origins_unique(apps)
    return apps


def _check_origins_unique(apps: Mapping[str, AppConfig]) -> None:
    """An origin picks one app: listed by two, it would pick either."""
    owner: dict[str, str] = {}
    for config in apps.values():
        for origin in config.origins:
            if origin in owner:
                raise SettingsError(
                    f"CONFAB_CONFIG: origin {origin!r} is listed by apps "
                    f"{owner[origin]!r} and {config.name!r}; an origin picks one app"
                )
            owner[origin] = config.name


def _parse_app(source: str, name: str, table: Any) -> AppConfig:
    """One `[apps.NAME]` table; `source` names the file in every message."""
    where = f"{source}: apps.{name}"
    if not isinstance(table, dict):
        raise SettingsError(f"{where} must be a table")
    if not name.replace("-", "").replace("_", "").isalnum() or len(name) > 64:
        raise SettingsError(f"{where}: app names are 1-64 letters, digits, '-' or '_'")
    check_keys(where, table, APP_KEYS)
    model_table = table.get("model", {})
    tools_table = table.get("tools", {})
    if not isinstance(model_table, dict) or not isinstance(tools_table, dict):
        raise SettingsError(f"{where}: model and tools must be tables")
    backend = _one_of(
        f"{where}.model.backend", "backend", model_table.get("backend", "builtin"), MODEL_BACKENDS
    )
    options = {**COMMON_MODEL_OPTIONS, **BACKEND_OPTIONS[backend]}
    check_keys(f"{where}.model", model_table, options)
    for key, value in model_table.items():
        if options[key] not in ("text", "list") or key in ("api_key_env", "provider"):
            _check_option(f"{where}.model.{key}", value, options[key])
        if key in ("context_tokens", "context_tokens_by_model"):
            budgets = value if isinstance(value, dict) else {"": value}
            _check_budgets(f"{where}.model.{key}", budgets)
    check_keys(f"{where}.tools", tools_table, TOOLS_KEYS)
    enabled = tools_table.get("enabled", BUILTIN_TOOL_NAMES)
    if not isinstance(enabled, list | tuple) or not all(isinstance(t, str) for t in enabled):
        raise SettingsError(f"{where}.tools.enabled must be a list of built-in tool names")
    for tool_name in enabled:
        if tool_name not in BUILTIN_TOOL_NAMES:
            close = difflib.get_close_matches(tool_name, BUILTIN_TOOL_NAMES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SettingsError(
                f"{where}.tools.enabled: unknown built-in tool {tool_name[:40]!r}; {hint}"
                f"built-ins are {', '.join(BUILTIN_TOOL_NAMES)} (other tools go in tools.custom)"
            )
    models = tuple(model_table.get("models", ("builtin",)))
    if not models or not all(isinstance(m, str) and m for m in models):
        raise SettingsError(f"{where}.model.models must be a non-empty list of names")
    model = ModelConfig(
        backend=str(backend),
        models=models,
        system_prompt=str(model_table.get("system_prompt", ModelConfig.system_prompt)),
        options={
            k: v for k, v in model_table.items() if k not in {"backend", "models", "system_prompt"}
        },
    )
    ttl = table.get("session_ttl", 0)
    queue_limit = table.get("queue_limit", 16)
    if not isinstance(ttl, int) or ttl < 0:
        raise SettingsError(f"{where}.session_ttl must be a whole number of seconds >= 0")
    if not isinstance(queue_limit, int) or queue_limit < 1:
        raise SettingsError(f"{where}.queue_limit must be a whole number >= 1")
    custom = tools_table.get("custom", {})
    if not isinstance(custom, dict):
        raise SettingsError(f"{where}.tools.custom must map tool names to 'module:function'")
    simulator = table.get("simulator")
    if simulator is not None and (not isinstance(simulator, str) or ":" not in simulator):
        raise SettingsError(f"{where}.simulator must be 'module:function'")
    return AppConfig(
        name=name,
        display_name=str(table.get("display_name", name)),
        session_ttl=ttl,
        queue_limit=queue_limit,
        model=model,
        tools=tuple(enabled),
        custom_tools={str(k): str(v) for k, v in custom.items()},
        origins=_origins(where, table.get("origins", [])),
        keyless_wallet_listing=_flag(where, table, "keyless_wallet_listing", False),
        provider_keys=_flag(where, table, "provider_keys", True),
        simulator=simulator,
        limits=_limits(where, table.get("limits", {})),
        memory=_flag(where, table, "memory", False),
        keep_memories=_flag(where, table, "keep_memories", False),
        search_language=_search_language(where, table.get("search_language")),
    )


def _one_of(where: str, what: str, value: Any, choices: tuple[str, ...], among: str = "") -> str:
    """`value` if it is one of `choices`, else an error naming them (and the closest)."""
    if value in choices:
        return str(value)
    close = difflib.get_close_matches(str(value), choices, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise SettingsError(
        f"{where}: unknown {what} {str(value)[:40]!r} (one of {among}{', '.join(choices)}){hint}"
    )


def _search_language(where: str, value: Any) -> str:
    if value is None:
        return DEFAULT_SEARCH_LANGUAGE
    among = "PostgreSQL's built-in text search configurations: "
    return _one_of(f"{where}.search_language", "language", value, SEARCH_LANGUAGES, among)


def _check_budgets(where: str, budgets: Mapping[str, Any]) -> None:
    for model, tokens in budgets.items():
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < MIN_CONTEXT_TOKENS:
            name = f"[{model!r}]" if model else ""
            raise SettingsError(
                f"{where}{name} must be a whole number of tokens >= {MIN_CONTEXT_TOKENS}"
            )


def _limits(where: str, table: Any) -> RateLimits:
    if not isinstance(table, dict):
        raise SettingsError(f"{where}.limits must be a table")
    known = RateLimits.__dataclass_fields__
    for name, value in table.items():
        if name not in known:
            raise SettingsError(
                f"{where}.limits: unknown limit {name!r} (known: {', '.join(known)})"
            )
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SettingsError(f"{where}.limits.{name} must be a whole number >= 0 (0: no limit)")
    return RateLimits(**table)


def _origins(where: str, value: Any) -> tuple[str, ...]:
    """Web origins as browsers send them: `scheme://host[:port]`, nothing after."""
    if not isinstance(value, list):
        raise SettingsError(f"{where}.origins must be a list of origins")
    origins = []
    for origin in value:
        scheme, _, rest = str(origin).partition("://")
        if (
            not isinstance(origin, str)
            or scheme not in ("http", "https")
            or not rest
            or any(c in rest for c in "/?#*@ ")
        ):
            raise SettingsError(
                f"{where}.origins: {str(origin)[:80]!r} is not an origin "
                "(scheme://host[:port], e.g. 'https://app.example')"
            )
        origins.append(origin.lower())
    return tuple(origins)


def _flag(where: str, table: Mapping[str, Any], name: str, default: bool) -> bool:
    value = table.get(name, default)
    if not isinstance(value, bool):
        raise SettingsError(f"{where}.{name} must be true or false")
    return value
