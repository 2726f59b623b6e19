"""Load one function as the Cloud Functions runtime does, and report what that did.

``python -B -m tests.support.import_probe ENTRY_POINT [--request METHOD PATH [--body JSON]]``
runs in a fresh process (the tests start one per function): it imports
``functions_framework``, then, with audit hooks and a few wrappers watching, builds the
function's app (``functions_framework.create_app(entry_point, "main.py")``: main.py runs
and the entry point is looked up by name) and prints one JSON object on stdout:

* ``effects``: what the import did that an import must not do: a socket made or used, a
  file or folder written, renamed or removed, a database opened, a process started, a
  thread started, or an environment variable read by the project's own code (but for
  ``PROCESS_SWITCHES``);
* ``modules``: every module loaded once the app is built;
* ``dataDir``: what the data folder (``VOICE_DATA_DIR``) holds then;
* with ``--request``, ``afterRequest``: the modules loaded once the app has also served
  that request with a dev token (made after the import was measured, ``--body`` its JSON
  body), and its ``status``;
* ``pluginSearches``: how often pydantic searched the installed distributions for plugins.

Run it with ``-B`` (no bytecode writes) and ``VOICE_DATA_DIR`` pointing at an empty folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "main.py"
OWN_CODE = (ROOT / "shared", ROOT / "functions", SOURCE)

# The one variable main.py touches when it loads: it turns pydantic's plugin search off
# before anything builds a validator (its docstring says why).
PROCESS_SWITCHES = ("PYDANTIC_DISABLE_PLUGINS",)

# Audit events (https://docs.python.org/3/library/audit_events.html) an import must not cause.
FORBIDDEN_EVENTS = (
    "socket.",
    "sqlite3.connect",
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.fork",
    "os.forkpty",
    "os.posix_spawn",
    "os.spawn",
    "os.kill",
    "os.mkdir",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.truncate",
    "os.chmod",
    "os.link",
    "os.symlink",
    "os.utime",
    "shutil.",
    "tempfile.mkstemp",
    "tempfile.mkdtemp",
    "urllib.Request",
    "http.client.connect",
    "ctypes.dlopen",
)
_WRITE_MODES = set("wax+")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


_STDLIB = Path(os.__file__).resolve().parent
_PROBE = Path(__file__).resolve()


def origin() -> str | None:
    """Return ``file:line`` when the project's own code made the current call, else None.

    The innermost frame outside the standard library decides: the project's code (its
    ``file:line``), or a library's (None). A call made by the import system on an
    import's behalf (reading a module's file) is the import's, not the importer's: None.
    """
    for frame, line in traceback.walk_stack(sys._getframe(1)):
        filename = frame.f_code.co_filename
        if filename.startswith("<frozen importlib"):
            return None
        if filename.startswith("<frozen ") or filename.startswith("<"):
            continue
        path = Path(filename).resolve()
        if path == _PROBE or (_STDLIB in path.parents and "site-packages" not in path.parts):
            continue
        if any(path == own or own in path.parents for own in OWN_CODE):
            return f"{path.relative_to(ROOT)}:{line}"
        return None
    return None


def _writes(event: str, args: tuple[Any, ...]) -> bool:
    if event != "open" or len(args) < 3:
        return False
    _, mode, flags = args[:3]
    if isinstance(mode, str):
        return bool(_WRITE_MODES & set(mode))
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


class Watch:
    """Records the effects that happen while it is on."""

    def __init__(self) -> None:
        self.on = False
        self.effects: list[str] = []
        self._busy = False  # the watch's own calls (resolving paths) are not the import's

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        """Audit hook: record a forbidden event, or a file the project's code opens."""
        if not self.on or self._busy:
            return
        self._busy = True
        try:
            where = origin()
            if event.startswith(FORBIDDEN_EVENTS) or _writes(event, args):
                self.effects.append(f"{event} {_short(args)} from {where or 'a library'}")
            elif event == "open" and where is not None:
                self.effects.append(f"file {_short(args[:1])} opened from {where}")
        finally:
            self._busy = False

    def env_read(self, key: str) -> None:
        """Record an environment variable read by the project's own code."""
        if not self.on or self._busy or key in PROCESS_SWITCHES:
            return
        self._busy = True
        try:
            where = origin()
        finally:
            self._busy = False
        if where is not None:
            self.effects.append(f"environment variable {key} read from {where}")

    def thread_started(self, start: Callable[..., Any]) -> Callable[..., Any]:
        """Return ``start`` (a thread-starting function) recording each call."""

        def recorded(*args: Any, **kwargs: Any) -> Any:
            if self.on:
                self.effects.append(f"thread started from {origin() or 'a library'}")
            return start(*args, **kwargs)

        return recorded


def _short(args: tuple[Any, ...]) -> str:
    text = repr(args)
    return text if len(text) <= 160 else text[:157] + "..."


def _watch_environment(watch: Watch) -> None:
    environ = os.environ

    class WatchedEnviron(os._Environ[str]):
        def __getitem__(self, key: str) -> str:
            watch.env_read(key)
            return super().__getitem__(key)

    os.environ = WatchedEnviron(  # noqa: B003 - the same variables, read through a watch
        environ._data,  # type: ignore[attr-defined]  # os._Environ's own state
        environ.encodekey,
        environ.decodekey,
        environ.encodevalue,
        environ.decodevalue,
    )


def main(argv: list[str]) -> None:
    """Build the entry point's app under watch; print the JSON report."""
    parser = argparse.ArgumentParser(prog="python -B -m tests.support.import_probe")
    parser.add_argument("entry_point")
    parser.add_argument("--request", nargs=2, metavar=("METHOD", "PATH"))
    parser.add_argument("--body", help="the request's JSON body")
    args = parser.parse_args(argv)

    # Pydantic's plugin search reads every installed distribution's entry points; count it
    # (the wrapper is in place before pydantic's loader imports the function).
    import importlib.metadata

    plugin_searches: list[str] = []
    entry_points = importlib.metadata.entry_points

    def counted_entry_points(**selection: Any) -> Any:
        if selection.get("group") == "pydantic":
            plugin_searches.append("pydantic")
        return entry_points(**selection)

    importlib.metadata.entry_points = counted_entry_points  # type: ignore[assignment]

    import _thread

    import functions_framework

    watch = Watch()
    sys.addaudithook(watch.audit)
    _watch_environment(watch)
    threading._start_new_thread = watch.thread_started(threading._start_new_thread)  # type: ignore[attr-defined]
    _thread.start_new_thread = watch.thread_started(_thread.start_new_thread)

    watch.on = True
    app = functions_framework.create_app(args.entry_point, str(SOURCE))  # type: ignore[no-untyped-call]
    watch.on = False
    data_dir = Path(os.environ.get("VOICE_DATA_DIR", ".data"))
    written = sorted(str(path) for path in data_dir.rglob("*")) if data_dir.exists() else []
    report: dict[str, Any] = {
        "effects": watch.effects,
        "modules": sorted(sys.modules),
        "dataDir": written,
    }

    if args.request:
        # Counted with the request: whatever signing its token loads, checking it may too.
        before = set(sys.modules)
        from shared.auth import build_dev_verifier
        from shared.config import get_settings

        token = build_dev_verifier(get_settings()).mint("probe-user", admin=True)
        method, path = args.request
        response = app.test_client().open(
            path.replace("{user}", "probe-user"),
            method=method,
            headers={"Authorization": f"Bearer {token}"},
            **({"data": args.body, "content_type": "application/json"} if args.body else {}),
        )
        report["status"] = response.status_code
        report["afterRequest"] = sorted(set(sys.modules) - before)
    report["pluginSearches"] = len(plugin_searches)
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
