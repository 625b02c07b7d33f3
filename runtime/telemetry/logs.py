"""One log format for Confab, uvicorn and the libraries: text (the default) or
JSON, one object per line (`CONFAB_LOG_FORMAT=json`).

Every line carries the request id, app and session of the work it belongs to
(runtime/telemetry/context.py) when they are known. A JSON line:

    {"ts": "2026-12-01T10:00:00.123Z", "level": "info", "logger": "confab.access",
     "message": "POST /api/chat 200 3.1ms", "request_id": "...", "app": "alpha",
     "session_id": "...", "method": "POST", ...}

plus any `extra=` fields the call gave, and `exc` (the formatted traceback) for
`logger.exception`. Handlers are installed here and nowhere else (server.py calls
`configure_logging`); uvicorn is started with `log_config=None` so its loggers
propagate to the same handler.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, TextIO

from runtime.telemetry.context import app_name, request_id, session_id

FORMATS = ("text", "json")

# Attributes every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "app", "session_id", "taskName", "where"}
    # uvicorn's copy of the message with terminal colours.
    | {"color_message"}
)
# `<aiosqlite.core.Connection object at 0x7f...>` and the like, which libraries put
# in their debug lines: shown as `<aiosqlite.core.Connection>`.
_REPR = re.compile(r"<((?:[^<>]|<locals>)*?) (?:object )?at 0x[0-9a-fA-F]+>")


def message_of(record: logging.LogRecord) -> str:
    """The record's message, without object addresses."""
    message = record.getMessage()
    if " at 0x" in message:
        message = _REPR.sub(r"<\1>", message)
    return message


class ContextFilter(logging.Filter):
    """Stamps the request id, app and session of the current context on a record
    (unless the call gave them), so both formats can show them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        if not hasattr(record, "app"):
            record.app = app_name.get()
        if not hasattr(record, "session_id"):
            record.session_id = session_id.get()
        return True


class TextFormatter(logging.Formatter):
    """`2026-12-01 10:00:00,123 INFO confab.access [rid app=alpha session=...]: message`"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(where)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        rid = getattr(record, "request_id", None)
        if rid:
            parts.append(rid)
        app = getattr(record, "app", None)
        if app:
            parts.append(f"app={app}")
        sid = getattr(record, "session_id", None)
        if sid:
            parts.append(f"session={sid}")
        record.where = f" [{' '.join(parts)}]" if parts else ""
        text = super().format(record)
        return _REPR.sub(r"<\1>", text) if " at 0x" in text else text


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        # A busy server logs many lines a second: the date part is formatted once.
        self._second = -1
        self._second_text = ""

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self._timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message_of(record),
            "request_id": getattr(record, "request_id", None),
            "app": getattr(record, "app", None),
            "session_id": getattr(record, "session_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(level: str, log_format: str = "text", stream: TextIO | None = None) -> None:
    """One handler on the root logger; uvicorn's and every library's loggers
    propagate to it. Idempotent (a second call replaces the handler)."""
    # No format shows the thread, process or source line of a call: not collecting
    # them makes each record (one per request at INFO) about a third cheaper
    # (logging HOWTO, "Optimization").
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "confab", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.confab = True  # type: ignore[attr-defined]
    handler.setFormatter(formatter(log_format))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
