"""Browser sessions: each one's folder, the files it hands to the page, and what is removed when.

The app only ever deletes or serves what it made:

* The output root is claimed once (:func:`claim_root`): a new or empty folder gets a
  marker file ``.diffmorph-app`` holding a random token; a folder with that marker is
  ours; any other folder that holds anything is refused.
* Every session folder, ``ROOT/<32 random hex>/``, holds ``.diffmorph-session`` with the
  root's token. Only such folders are ever removed; nothing from the request (upload
  names, session ids) becomes part of a path.
* The page is given hard links (copies across file systems) of a run's outputs in a
  folder of this process's Gradio cache (``<cache>/diffmorph-served/<session>/<n>/``);
  nothing under the root is served.

Sessions are bounded (``Limits.max_sessions``): a new one replaces the least recently used
idle session, never one that is running; when every session is running, a new one is
refused. Disk use is tracked per session (measured after each run, never by walking the
root on a request); before a run, sessions unused for ``max_age_s`` are removed, then,
least recently used first, as many idle ones as the run's room needs under
``max_disk_bytes``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

from diffmorph.errors import InputError, OutputError

from .limits import Limits

ROOT_MARKER = ".diffmorph-app"
SESSION_MARKER = ".diffmorph-session"
SERVED = "diffmorph-served"  # below Gradio's cache folder
SESSION_NAME = re.compile(r"^[0-9a-f]{32}$")


class Busy(InputError):
    """Every session slot holds a running session: a new session is refused for now."""


def claim_root(root: Path) -> str:
    """Make ``root`` the app's output root and return its token (see the module docstring).

    Raises:
      InputError: ``root`` is a file, or a folder holding files this app did not write.
      OutputError: ``root`` cannot be created or written.
    """
    root = Path(root)
    marker = root / ROOT_MARKER
    try:
        if root.exists() and not root.is_dir():
            raise InputError("the output root exists and is not a folder", setting="output_root")
        if marker.is_file():
            token = marker.read_text(encoding="ascii", errors="replace").strip()
            if re.fullmatch(r"[0-9a-f]{32}", token):
                return token
        if root.is_dir() and any(root.iterdir()):
            raise InputError(
                "the output root holds files this app did not write; choose an empty or new folder "
                "(the app removes old session folders in it)",
                setting="output_root",
            )
        root.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(16)
        marker.write_text(token + "\n", encoding="ascii")
        return token
    except OSError as exc:
        raise OutputError(f"the output root cannot be used ({exc.strerror or exc})", setting="output_root") from None


def is_own(folder: Path, token: str) -> bool:
    """Whether ``folder`` is a session folder this root made: its name is 32 hex digits and
    its marker holds the root's token."""
    try:
        return (
            bool(SESSION_NAME.match(folder.name))
            and not folder.is_symlink()
            and (folder / SESSION_MARKER).read_text(encoding="ascii", errors="replace").strip() == token
        )
    except OSError:
        return False


def disk_bytes(*folders: Path) -> int:
    """Bytes of the regular files below ``folders`` (hard links counted once)."""
    seen, total = set(), 0
    for folder in folders:
        for dirpath, _, names in os.walk(folder):
            for name in names:
                try:
                    stat = os.lstat(os.path.join(dirpath, name))
                except OSError:
                    continue
                if (stat.st_dev, stat.st_ino) not in seen and not os.path.islink(os.path.join(dirpath, name)):
                    seen.add((stat.st_dev, stat.st_ino))
                    total += stat.st_size
    return total


@dataclasses.dataclass(eq=False)
class Session:
    """One browser session's server-side state."""

    folder: Path  # ROOT/<hex>: the runs' outputs
    served: Path  # <cache>/diffmorph-served/<hex>: what the page was given
    runner: object | None = None  # the running Runner
    stopped: bool = False  # the last run stopped with its checkpoint kept (Run resumes it when it can)
    config: object | None = None  # the last finished run's MorphConfig (re-render uses it)
    inputs: tuple | None = None  # the last run's source and target, uint8 (H, W, 3) arrays
    pairs: list = dataclasses.field(default_factory=list)  # picked pairs [sx, sy, tx, ty] (tx, ty None: pending)
    images: dict = dataclasses.field(default_factory=dict)  # "source"/"target" -> uint8 (H, W, 3), for picking
    used: float = dataclasses.field(default_factory=time.time)  # last request (seconds since the epoch)
    bytes: int = 0  # on disk, as last measured
    handed: int = 0  # batches of files handed to the page

    @property
    def run_dir(self) -> Path:
        return self.folder / "run"

    @property
    def running(self) -> bool:
        return self.runner is not None


class Sessions:
    """The sessions of one app: :meth:`get` gives the :class:`Session` for a Gradio session hash."""

    def __init__(self, root: Path, served_root: Path | None = None, limits: Limits | None = None):
        """``root``: the output root (claimed, :func:`claim_root`); ``served_root``: the folder
        the files handed to the page go in (a server passes Gradio's upload folder; default
        the system's temporary folder); ``limits``: the server's (default :class:`Limits`)."""
        self.root = Path(root)
        self.limits = limits or Limits()
        self.token = claim_root(self.root)
        self.served_root = Path(served_root or tempfile.gettempdir()) / SERVED
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._leftovers: list[tuple[float, int, Path]] = []  # an earlier process's session folders
        for folder in self.root.iterdir():  # once, at start
            if is_own(folder, self.token):
                self._leftovers.append((folder.stat().st_mtime, disk_bytes(folder), folder))

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, key: str | None) -> Session:
        """The session for ``key`` (a new one, with a new folder, the first time).

        Raises:
          Busy: the server holds ``max_sessions`` sessions and all of them are running.
        """
        key = key or "anonymous"
        evicted = None
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                if len(self._sessions) >= self.limits.max_sessions:
                    idle = [(s.used, k) for k, s in self._sessions.items() if not s.running]
                    if not idle:
                        raise Busy("the server is busy (every session is running); try again in a few minutes")
                    evicted = self._sessions.pop(min(idle)[1])
                name = secrets.token_hex(16)
                session = self._sessions[key] = Session(self.root / name, self.served_root / name)
                self._make(session)
            session.used = time.time()
        if evicted is not None:
            _remove(evicted)
        return session

    def _make(self, session: Session) -> None:
        try:
            session.folder.mkdir()
            (session.folder / SESSION_MARKER).write_text(self.token + "\n", encoding="ascii")
        except OSError as exc:
            raise OutputError(f"cannot make a session folder ({exc.strerror or exc})") from None

    def forget(self, key: str | None) -> None:
        """The tab closed: cancel its run (if any) and drop the images and pairs it held; its
        files stay until removed for age or room (its downloads may still be open)."""
        with self._lock:
            session = self._sessions.get(key or "anonymous")
        if session is not None:
            if session.runner is not None:
                session.runner.cancel()
            session.images.clear()
            session.pairs.clear()
            session.inputs = None

    def make_room(self, session: Session, need: int) -> list[Path]:
        """Before ``session`` runs: remove sessions unused for ``max_age_s``, then, least recently
        used first, idle ones until ``need`` more bytes fit under ``max_disk_bytes``.
        Returns the folders removed.

        Raises:
          InputError: ``need`` does not fit even so.
        """
        now, removed = time.time(), []
        with self._lock:
            keys = sorted((s.used, k) for k, s in self._sessions.items() if s is not session and not s.running)
            old = [k for used, k in keys if now - used > self.limits.max_age_s]
            gone = [self._sessions.pop(k) for k in old]
            self._leftovers.sort()
            while self._leftovers and (
                now - self._leftovers[0][0] > self.limits.max_age_s or self._total_locked(gone) + need > self.cap
            ):
                removed.append(self._leftovers.pop(0)[2])
            for _, key in keys:
                if key in old or self._total_locked(gone) + need <= self.cap:
                    continue
                gone.append(self._sessions.pop(key))
            fits = self._total_locked(gone) + need <= self.cap
        for folder in removed:
            shutil.rmtree(folder, ignore_errors=True)
        for old_session in gone:
            _remove(old_session)
        if not fits:
            raise InputError(
                f"this run needs up to {need / 1e6:.0f} MB and the server keeps at most "
                f"{self.cap / 1e6:.0f} MB; use fewer frames, a smaller image, or try later"
            )
        return removed + [s.folder for s in gone]

    @property
    def cap(self) -> int:
        return self.limits.max_disk_bytes

    def _total_locked(self, leaving=()) -> int:
        leaving = {id(s) for s in leaving}
        total = sum(s.bytes for s in self._sessions.values() if id(s) not in leaving)
        return total + sum(size for _, size, _ in self._leftovers)

    def measure(self, session: Session) -> int:
        """Measure what ``session`` keeps on disk (its folder and the files it was handed)."""
        session.bytes = disk_bytes(session.folder, session.served)
        return session.bytes

    def new_batch(self, session: Session, kind: str) -> Path:
        """A new folder for files of ``kind`` (``"results"``, ``"snapshot"``, ``"points"``,
        ``"zip"``) handed to ``session``'s page: a new URL each time, so a browser never
        shows an old file of the same name. Of each kind, the batches before the last
        one are removed (the page may still be loading that one).
        """
        session.handed += 1
        batches = session.served / kind
        batch = batches / str(session.handed)
        batch.mkdir(parents=True, exist_ok=True)
        for earlier in sorted((p for p in batches.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))[:-2]:
            shutil.rmtree(earlier, ignore_errors=True)
        return batch

    def hand_out(self, session: Session, files, kind: str = "results") -> list[str | None]:
        """Hard links (copies across file systems) to ``files`` (paths, or None) in a new
        batch of ``session``'s served files of ``kind`` (see :meth:`new_batch`), for the
        page; None stays None."""
        batch = self.new_batch(session, kind)
        out = []
        for k, path in enumerate(files):
            if path is None:
                out.append(None)
                continue
            link = batch / str(k) / Path(path).name
            link.parent.mkdir()
            try:
                os.link(path, link)
            except OSError:
                shutil.copyfile(path, link)
            out.append(str(link))
        return out


def _remove(session: Session) -> None:
    shutil.rmtree(session.folder, ignore_errors=True)
    shutil.rmtree(session.served, ignore_errors=True)
