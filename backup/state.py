"""What earlier runs did, so a second run resumes rather than repeats.

An append-only JSON-lines file in the backup directory: one line per finished chunk, flushed
at once, so an interrupted run loses at most the chunk in flight. Lines:
  {"event": "partial",  "file": ...}   backed up before its day was over: fetch again
  {"event": "complete", "file": ...}   backed up after its day was over
  {"event": "restored", "file": ..., "target": url, "fingerprint": ...}
A chunk file present without a line (made by the original tool) counts as complete.
"""

from __future__ import annotations

import threading
from pathlib import Path

import msgspec

STATE_FILE = ".bemcom-backup-state.jsonl"


class StateEvent(msgspec.Struct, omit_defaults=True):
    event: str
    file: str
    target: str | None = None
    fingerprint: str | None = None


class BackupState:
    def __init__(self, directory: Path) -> None:
        self.path = directory / STATE_FILE
        self._lock = threading.Lock()
        self._partial: set[str] = set()
        self._restored: dict[tuple[str, str], str] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        content = self.path.read_bytes()
        if content and not content.endswith(b"\n"):
            # A run killed mid-line: end that line so the next one is not glued to it.
            with self.path.open("ab") as handle:
                handle.write(b"\n")
        decoder = msgspec.json.Decoder(StateEvent)
        for line in content.splitlines():
            try:
                event = decoder.decode(line)
            except msgspec.MsgspecError:
                continue  # the last line of a run killed mid-write
            self._apply(event)

    def _apply(self, event: StateEvent) -> None:
        if event.event == "partial":
            self._partial.add(event.file)
        elif event.event == "complete":
            self._partial.discard(event.file)
        elif event.event == "restored" and event.target and event.fingerprint:
            self._restored[(event.target, event.file)] = event.fingerprint

    def _append(self, event: StateEvent) -> None:
        with self._lock:
            self._apply(event)
            with self.path.open("ab") as handle:
                handle.write(msgspec.json.encode(event) + b"\n")

    def is_partial(self, file: str) -> bool:
        return file in self._partial

    def backed_up(self, file: str, complete: bool) -> None:
        self._append(StateEvent("complete" if complete else "partial", file))

    def is_restored(self, target: str, file: str, fingerprint: str) -> bool:
        return self._restored.get((target, file)) == fingerprint

    def restored(self, target: str, file: str, fingerprint: str) -> None:
        self._append(StateEvent("restored", file, target=target, fingerprint=fingerprint))
