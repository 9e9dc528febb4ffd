"""Logging for events that can come by the thousand (bad payloads): at most one line per
cause and interval, with the number of lines left out since."""

from __future__ import annotations

import threading
import time


class RateLimitedLog:
    def __init__(self, log, interval_s: float = 10.0) -> None:
        self._log = log
        self._interval = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, event: str, cause: str, **fields) -> bool:
        """Log unless `cause` was logged less than an interval ago; True if logged."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(cause)
            if last is not None and now - last < self._interval:
                self._suppressed[cause] = self._suppressed.get(cause, 0) + 1
                return False
            self._last[cause] = now
            suppressed = self._suppressed.pop(cause, 0)
        self._log.warning(event, cause=cause, suppressed_since_last=suppressed, **fields)
        return True
