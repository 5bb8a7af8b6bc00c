"""One output folder per browser session, and the removal of old ones.

Every browser session (and every API client) gets a folder ``ROOT/<random hex>/`` that
only its own handlers know; nothing from the request (upload names, session ids) ever
becomes part of a path. Old folders are removed when a new session starts or a run
begins: first those untouched for ``max_age_s`` (default 24 hours), then, oldest first,
as many as needed to keep the whole root under ``max_total_bytes`` (default 2 GB). The
folder of a session that is running is never removed.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import threading
import time
from pathlib import Path

MAX_AGE_S = 24 * 3600
MAX_TOTAL_BYTES = 2 * 1024**3
MAX_SESSIONS = 1000  # sessions remembered in memory (the oldest are forgotten first)


@dataclasses.dataclass
class Session:
    """One browser session's server-side state."""

    folder: Path
    progress: object | None = None  # the running run's WebProgress
    config: object | None = None  # the last finished run's MorphConfig (re-render uses it)
    inputs: tuple | None = None  # the last run's source and target, uint8 (H, W, 3) arrays
    stopped_key: str | None = None  # the inputs-and-settings key of a run stopped with a checkpoint
    pairs: list = dataclasses.field(default_factory=list)  # picked pairs [sx, sy, tx, ty] (tx, ty None: pending)
    images: dict = dataclasses.field(default_factory=dict)  # "source"/"target" -> uint8 (H, W, 3), for picking

    @property
    def run_dir(self) -> Path:
        return self.folder / "run"

    def touch(self) -> None:
        now = time.time()
        try:
            os.utime(self.folder, (now, now))
        except OSError:
            pass


class Sessions:
    """The sessions of one app: ``get(key)`` gives the :class:`Session` for a Gradio session hash."""

    def __init__(self, root: Path, max_age_s: float = MAX_AGE_S, max_total_bytes: int = MAX_TOTAL_BYTES):
        self.root = Path(root)
        self.max_age_s = max_age_s
        self.max_total_bytes = max_total_bytes
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def get(self, key: str | None) -> Session:
        """The session for ``key`` (a new one, with a new folder, the first time)."""
        key = key or "anonymous"
        with self._lock:
            session = self._sessions.get(key)
            if session is None or not session.folder.is_dir():
                self._sweep_locked()
                folder = self.root / secrets.token_hex(16)
                folder.mkdir(parents=True)
                session = self._sessions[key] = Session(folder)
                while len(self._sessions) > MAX_SESSIONS:
                    self._sessions.pop(next(iter(self._sessions)))
        session.touch()
        return session

    def forget(self, key: str | None) -> None:
        """Drop a closed session's state (its images and pairs) unless it is running; its
        folder stays until the sweep removes it (the downloads may still be open)."""
        with self._lock:
            session = self._sessions.get(key or "anonymous")
            if session is not None and session.progress is None:
                del self._sessions[key or "anonymous"]

    def sweep(self) -> list[Path]:
        """Remove old folders (see the module docstring); returns those removed."""
        with self._lock:
            return self._sweep_locked()

    def _sweep_locked(self) -> list[Path]:
        busy = {s.folder for s in self._sessions.values() if s.progress is not None}
        folders = []
        for folder in self.root.iterdir() if self.root.is_dir() else ():
            if folder.is_dir() and folder not in busy:
                try:
                    folders.append((folder.stat().st_mtime, _size(folder), folder))
                except OSError:
                    continue
        removed = []
        now = time.time()
        total = sum(size for _, size, _ in folders) + sum(_size(f) for f in busy)
        for mtime, size, folder in sorted(folders):  # oldest first
            if now - mtime > self.max_age_s or total > self.max_total_bytes:
                shutil.rmtree(folder, ignore_errors=True)
                total -= size
                removed.append(folder)
        if removed:
            gone = set(removed)
            for key in [k for k, s in self._sessions.items() if s.folder in gone]:
                del self._sessions[key]
        return removed


def _size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:
            pass
    return total
