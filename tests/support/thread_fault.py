"""Make one of ingestd's threads die, as an unforeseen error would (a bug, MemoryError).

An exception is raised asynchronously inside the real thread; it derives from BaseException,
so no `except Exception` of the thread's own contains it. Nothing of ingestd is replaced.

`python -m tests.support.thread_fault PREFIX TRIGGER` runs ingestd's real main() and kills
its first thread whose name starts with PREFIX once the file TRIGGER exists.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from pathlib import Path


class InjectedFault(BaseException):
    """What the killed thread dies of."""


def kill_thread(thread: threading.Thread) -> None:
    assert thread.ident is not None and thread.is_alive(), f"{thread.name} is not running"
    changed = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(InjectedFault)
    )
    assert changed == 1, f"could not raise in {thread.name}"


def thread_named(prefix: str) -> threading.Thread:
    for thread in threading.enumerate():
        if thread.name.startswith(prefix):
            return thread
    raise LookupError(f"no thread named {prefix}*: {[t.name for t in threading.enumerate()]}")


def _kill_when_triggered(prefix: str, trigger: Path) -> None:
    while not trigger.exists():
        time.sleep(0.05)
    kill_thread(thread_named(prefix))


if __name__ == "__main__":
    from ingestd.__main__ import main

    threading.Thread(
        target=_kill_when_triggered, args=(sys.argv[1], Path(sys.argv[2])), daemon=True
    ).start()
    sys.exit(main())
