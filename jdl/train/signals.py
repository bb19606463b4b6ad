"""SIGINT/SIGTERM during training: note the request, let the loop finish its step and write a
checkpoint, then deliver the signal as if it had just arrived (so the process still exits, or
``KeyboardInterrupt`` is still raised)."""

from __future__ import annotations

import signal
import threading
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """``with GracefulStop() as stop:`` … ``if stop.requested: save(); stop.deliver()``.

    Inside the block, the first SIGINT or SIGTERM only sets ``requested`` (the signal number);
    a second one of the same kind acts at once with the previous handler. Outside the main
    thread (where Python cannot install handlers) it does nothing. Handlers are restored on exit.
    """

    def __init__(self) -> None:
        self.requested: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested == signum:  # asked twice: stop waiting for the checkpoint
            self._restore()
            signal.raise_signal(signum)
            return
        self.requested = signum

    def __enter__(self) -> "GracefulStop":
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def _restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def deliver(self) -> None:
        """Put the previous handlers back and raise the requested signal with them."""
        signum = self.requested
        self._restore()
        if signum is not None:
            signal.raise_signal(signum)

    def __exit__(self, *exc: Any) -> None:
        self._restore()
