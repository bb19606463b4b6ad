"""Logging for long runs beyond metrics.jsonl: the git commit of the code that ran, and TensorBoard
event files (scalars per epoch, the config and commit as text) when ``tensorboard`` is installed
(``pip install jdl[tensorboard]``); without it, nothing is written and nothing fails."""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any


def git_commit(path: str | os.PathLike = ".") -> str | None:
    """The commit checked out at ``path`` (``git rev-parse HEAD``), with '+dirty' when tracked
    files are modified; ``None`` outside a git repository or without git."""
    try:
        run = dict(cwd=path, capture_output=True, text=True, timeout=10)
        head = subprocess.run(["git", "rev-parse", "HEAD"], **run)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **run)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


class TensorBoard:
    """Write TensorBoard events under ``logdir`` without TensorFlow: ``scalars(step, record)``
    for every number in a record, ``text(tag, value)`` for the config and the commit.
    ``TensorBoard.open(logdir)`` returns ``None`` when tensorboard is not installed."""

    def __init__(self, logdir: str | os.PathLike):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._writer = EventFileWriter(os.fspath(logdir))

    @classmethod
    def open(cls, logdir: str | os.PathLike) -> "TensorBoard | None":
        try:
            return cls(logdir)
        except ImportError:
            return None

    def _event(self, step: int, values: list) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(step),
                                               summary=summary_pb2.Summary(value=values)))

    def scalars(self, step: int, record: dict[str, Any]) -> None:
        """One scalar event per numeric entry of ``record`` (bools and 'epoch'/'step' excluded)."""
        from tensorboard.compat.proto import summary_pb2

        values = [summary_pb2.Summary.Value(tag=k, simple_value=float(v)) for k, v in record.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("epoch", "step")]
        self._event(step, values)

    def text(self, tag: str, value: Any, step: int = 0) -> None:
        """A text summary (shown in TensorBoard's Text tab); non-strings are written as JSON."""
        from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorboard.plugins.text import metadata

        text = value if isinstance(value, str) else json.dumps(value, indent=1, default=str)
        tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[text.encode()],
                                        tensor_shape=tensor_shape_pb2.TensorShapeProto())
        self._event(step, [summary_pb2.Summary.Value(
            tag=tag, metadata=metadata.create_summary_metadata(tag, ""), tensor=tensor)])

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()
