"""Run one library call in a fresh Python process that SIGKILLs itself at a chosen point.

The point is a function (``module:Owner.attr``) and the n-th call to it whose arguments'
``repr`` contains ``when`` (all calls if empty). The process dies there as it would under
the OOM killer or a lost node: no ``finally``, no ``atexit``, no flush. Arguments of the
call are JSON; a string made by :func:`run_arg` becomes the :class:`~mspa_tasks.run.DayRun`
of a day on a store, a warehouse and the local settings of a home (``MSPA_CONFIG`` applies,
as in production).

    python -m tests.killpoint '<json spec>'
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
KILLED = "KILLPOINT reached"


def _resolve(name: str) -> tuple[Any, str]:
    module, _, attr = name.partition(":")
    owner: Any = importlib.import_module(module)
    *path, last = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, last


def run_arg(ds: str, warehouse_url: str, store_uri: str, home: str) -> str:
    """A :class:`~mspa_tasks.run.DayRun` as a child's argument (it is built in the child)."""
    return "@run:" + json.dumps({"ds": ds, "url": warehouse_url, "store": store_uri,
                                 "home": str(home)})


def _arg(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("@run:"):
        from mspa_tasks.artifacts import open_store
        from mspa_tasks.config import load_settings
        from mspa_tasks.run import DayRun

        spec = json.loads(value.removeprefix("@run:"))
        return DayRun(spec["ds"], load_settings("local", home=spec["home"]),
                      open_store(spec["store"]), spec["url"])
    return value


def main(spec: dict[str, Any]) -> None:
    owner, attr = _resolve(spec["kill_at"])
    original = getattr(owner, attr)
    seen = {"n": 0}

    def killer(*args: Any, **kwargs: Any) -> Any:
        if spec.get("when", "") in repr(args) + repr(kwargs):
            seen["n"] += 1
            if seen["n"] >= spec.get("nth", 1):
                sys.stderr.write(f"{KILLED}: {spec['kill_at']} call {seen['n']}\n")
                sys.stderr.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(owner, attr, killer)
    fn_owner, fn = _resolve(spec["call"])
    getattr(fn_owner, fn)(*[_arg(a) for a in spec["args"]])


def run_killed(call: str, args: list[Any], kill_at: str, when: str = "", nth: int = 1,
               env: dict[str, str] | None = None, timeout: int = 300) -> str:
    """Run ``call(*args)`` in a child killed at ``kill_at``; assert it died there; its stderr."""
    spec = {"call": call, "args": args, "kill_at": kill_at, "when": when, "nth": nth}
    proc = subprocess.run([sys.executable, "-m", "tests.killpoint", json.dumps(spec)],
                          cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == -signal.SIGKILL and KILLED in proc.stderr, (
        f"expected a SIGKILL at {kill_at}; rc {proc.returncode}\n{proc.stderr[-3000:]}")
    return proc.stderr


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
