"""Publishing a run's output files as one set, and locking an output folder.

A run's outputs (video, GIF, strip, maps image, maps file, frames folder...) are
all written under temporary names first (:meth:`OutputSet.stage`,
:meth:`OutputSet.stage_folder`); only when every one of them is complete does
:meth:`OutputSet.publish` move them into place. A failure or Ctrl-C at any point
before or during publishing leaves the previous set complete, and a frames folder is
replaced as a whole (a re-render with fewer frames leaves no old frames behind).
Outputs of an earlier run that this run does not write (a GIF when only an MP4 is
asked for) are *retired* (:meth:`OutputSet.retire`): removed when the set is
published, so a folder never mixes two runs.

Publishing is crash-consistent: before the first rename a journal
(``.NAME.publish.json`` in the set's root folder) lists the moves; each existing
output is first renamed to a backup name, then the new one is renamed in; the journal
is deleted once every rename has succeeded (the commit point), then the backups. If
the process dies in between (SIGKILL, power loss), :func:`recover` run by the next run
(under the folder's lock) rolls the half-published set back from the journal.

Temporary and backup names start with a dot and sit beside their final names (same
file system, so every move is an atomic ``os.replace``).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
from pathlib import Path

from ..errors import InputError, OutputError, display_path

LOCK_NAME = ".diffmorph.lock"


def _token() -> str:
    return secrets.token_hex(4)


def _remove(path: Path) -> None:
    """Delete a file or folder if it exists (a folder with its contents)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _move(source: Path, destination: Path) -> None:
    """``os.replace`` for files; for folders, the destination must not exist."""
    os.replace(source, destination)


def _fingerprint(path: Path) -> dict | None:
    """What a published output looks like now: a file's size and mtime, a folder's files and sizes."""
    try:
        if path.is_symlink():
            return None
        if path.is_dir():
            names = {}
            for entry in path.iterdir():
                if not entry.is_file() or entry.is_symlink():
                    return {"kind": "folder", "names": None}  # a subfolder or link: never ours
                names[entry.name] = entry.stat().st_size
            return {"kind": "folder", "names": names}
        stat = path.stat()
        return {"kind": "file", "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    except OSError:
        return None


def manifest_path(root, name: str = "outputs") -> Path:
    """The manifest of the set ``name`` in ``root``: ``.NAME.outputs.json``."""
    return Path(root) / f".{name}.outputs.json"


def read_manifest(root, name: str = "outputs") -> dict[str, dict]:
    """The outputs the last publish of set ``name`` recorded: ``{final path: fingerprint}`` (empty if none)."""
    try:
        data = json.loads(manifest_path(root, name).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_manifest(root, name: str, finals, kept: dict | None = None) -> None:
    """Record ``finals`` (just published) as the outputs of set ``name`` in ``root``, with
    ``kept``, entries of the earlier manifest for outputs still there.

    Best effort: without a manifest a later run only removes nothing.
    """
    entries = {**(kept or {}), **{_key(root, final): _fingerprint(Path(final)) for final in finals}}
    path = manifest_path(root, name)
    tmp = path.with_name(path.name + f".{_token()}")
    try:
        tmp.write_text(json.dumps({k: v for k, v in entries.items() if v is not None}))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _key(root, path) -> str:
    """A manifest's key for ``path``: relative to the set's root (a copied or moved folder keeps its manifest)."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(root))


def is_earlier_output(path, manifest: dict[str, dict], root) -> bool:
    """Whether ``path`` is, unchanged, an output the manifest of the set in ``root`` recorded
    (so it may be removed).

    A folder counts only while every file in it was published in it (same name and size);
    a file only with the recorded size and modification time.
    """
    recorded = manifest.get(_key(root, path))
    current = _fingerprint(Path(path))
    if not recorded or not current or recorded.get("kind") != current["kind"]:
        return False
    if current["kind"] == "file":
        return recorded.get("size") == current["size"] and recorded.get("mtime_ns") == current["mtime_ns"]
    names, published = current["names"], recorded.get("names")
    return names is not None and isinstance(published, dict) and all(published.get(n) == s for n, s in names.items())


def _same_or_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` (the same file) or lies inside it (resolved paths)."""
    try:
        if path.exists() and folder.exists() and os.path.samefile(path, folder):
            return True
    except OSError:
        pass
    try:
        real, base = path.resolve(), folder.resolve()
    except (OSError, RuntimeError):
        return False
    return real == base or base in real.parents


def refuse_inputs(outputs, inputs) -> None:
    """Refuse outputs that would replace or remove an input, before any work.

    Args:
      outputs: paths a run may write, replace or remove (files and folders).
      inputs: the run's inputs; entries that are not paths (arrays, None) are skipped.

    Raises:
      InputError: an output is an input (the same file, also through a link) or a
        folder holding one.
    """
    paths = [Path(x) for x in inputs if isinstance(x, (str, os.PathLike))]
    for output in outputs:
        output = Path(output)
        for path in paths:
            if _same_or_inside(path, output):
                what = "is the input" if not output.is_dir() else "is a folder holding the input"
                raise InputError(
                    f"the output {display_path(output)} {what} {display_path(path)}; "
                    f"writing it would destroy the input: choose another output name or folder"
                )


class OutputSet:
    """The output files of one run, staged under temporary names and published together.

    Args:
      root: the folder whose journal records the publishing (usually the output
        folder); every output should live in it or below it, or beside it.
      name: the journal's name (``.NAME.publish.json`` in ``root``).

    Use as a context manager: leaving the block without :meth:`publish` (an error,
    Ctrl-C) deletes everything staged, so nothing half-written remains.
    """

    def __init__(self, root, name: str = "outputs"):
        self.root = Path(root)
        self.name = name
        self.journal = self.root / f".{name}.publish.json"
        self.manifest = manifest_path(self.root, name)
        self._staged: dict[Path, Path] = {}  # final -> staged
        self._retired: list[Path] = []  # earlier outputs this run does not write
        self._token = _token()
        self.published = False

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if not self.published:
            self.discard()
        if isinstance(exc, OutputError):  # name the outputs, not their temporary names
            message = self.final_names(str(exc))
            if message != str(exc):
                raise OutputError(message) from None

    def final_names(self, message: str) -> str:
        """``message`` with every staged (temporary) path replaced by its final path."""
        for final, staged in self._staged.items():
            message = message.replace(display_path(staged), display_path(final))
        return message

    def _temporary(self, final: Path, kind: str) -> Path:
        return final.with_name(f".{final.name}.{kind}-{self._token}")

    def stage(self, final) -> Path:
        """A temporary path beside ``final`` to write that output to (with ``final``'s suffix)."""
        final = Path(final)
        staged = final.with_name(f".{final.name}.part-{self._token}{final.suffix}")
        self._staged[final] = staged
        return staged

    def stage_folder(self, final) -> Path:
        """A new, empty temporary folder beside ``final`` that will replace it as a whole.

        Raises:
          OutputError: if the folder cannot be created.
        """
        final = Path(final)
        staged = self._temporary(final, "part")
        try:
            staged.mkdir(parents=False)
        except OSError as exc:
            raise OutputError(f"cannot create {display_path(staged)}: {exc.strerror or exc}") from None
        self._staged[final] = staged
        return staged

    def retire(self, final) -> None:
        """Remove ``final`` (a file or folder of an earlier run) when the set is published.

        Only if the set's manifest proves it is an earlier output of this set, unchanged
        (:func:`is_earlier_output`); anything else at that path is left alone.
        """
        final = Path(final)
        if final not in self._staged and final not in self._retired:
            self._retired.append(final)

    def discard(self) -> None:
        """Delete everything staged (nothing is published)."""
        for staged in self._staged.values():
            _remove(staged)

    def publish(self) -> None:
        """Move every staged output into place, replacing the previous ones.

        Each staged path must exist (a missing one is skipped and its old output kept
        only if it was never staged: staging a file and not writing it is a bug).

        Raises:
          OutputError: if a move fails; the previous set is restored first.
        """
        moves = [(final, staged, self._temporary(final, "old")) for final, staged in self._staged.items()]
        earlier = read_manifest(self.root, self.name)
        moves += [
            (final, None, self._temporary(final, "old"))
            for final in self._retired
            if final not in self._staged
            and (final.exists() or final.is_symlink())
            and is_earlier_output(final, earlier, self.root)
        ]
        try:
            self._write_journal(moves)
        except OSError as exc:
            self.discard()
            raise OutputError(f"cannot write in {display_path(self.root)}: {exc.strerror or exc}") from None
        done = []
        try:
            for final, staged, backup in moves:
                if final.exists() or final.is_symlink():
                    _move(final, backup)
                done.append((final, staged, backup))
                if staged is not None:
                    _move(staged, final)
        except BaseException as exc:
            _roll_back(done)
            self.discard()
            with contextlib.suppress(OSError):
                self.journal.unlink()
            if isinstance(exc, OSError):
                raise OutputError(
                    f"cannot publish the outputs in {display_path(self.root)}: {exc.strerror or exc}"
                ) from None
            raise
        with contextlib.suppress(OSError):
            self.journal.unlink()  # the commit point
        for _, _, backup in moves:
            _remove(backup)
        self.published = True
        self._write_manifest(earlier, {final for final, staged, _ in moves if staged is None})

    def _write_manifest(self, earlier: dict, removed: set) -> None:
        """The new outputs, and the earlier ones this run kept (checked again when retired later)."""
        kept = {
            key: entry
            for key, entry in earlier.items()
            if not any(_key(self.root, final) == key for final in [*self._staged, *removed])
        }
        write_manifest(self.root, self.name, self._staged, kept)

    def _write_journal(self, moves) -> None:
        entries = [
            {"final": str(final), "staged": None if staged is None else str(staged), "backup": str(backup)}
            for final, staged, backup in moves
        ]
        tmp = self.journal.with_name(self.journal.name + f".{self._token}")
        with open(tmp, "w") as handle:
            json.dump(entries, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.journal)


def _roll_back(done) -> None:
    """Undo the moves in ``done`` (latest first): the new output out, the backup back in.

    ``staged`` is None for a retired output (nothing new was moved in).
    """
    for final, staged, backup in reversed(done):
        with contextlib.suppress(OSError):
            if staged is not None and (final.exists() or final.is_symlink()) and not staged.exists():
                _move(final, staged)
            if backup.exists() or backup.is_symlink():
                _move(backup, final)


def recover(root, name: str = "outputs", also=()) -> bool:
    """Roll back a publish of the set ``name`` that was cut off (its journal
    ``.NAME.publish.json`` is still in ``root``): every output is restored to what it
    was before, and the staged files and backups are deleted.

    Call it while holding the folder's lock (:class:`FolderLock`), before writing.
    Journals of other sets are left alone (another run may be publishing them).

    The journal is a file in the output folder, so anyone who can write there can edit it:
    an entry is followed only if its output lies in ``root`` or below it (or is one of
    ``also``, outputs this run places elsewhere, such as a frames folder chosen by the
    user) and its temporary and backup names are the ones :class:`OutputSet` gives, beside
    that output. Other entries are ignored (nothing outside the folder is moved or deleted).

    Returns:
      True if a half-published set was rolled back.
    """
    journal = Path(root) / f".{name}.publish.json"
    if not journal.exists():
        return False
    try:
        entries = json.loads(journal.read_text())
        moves = [
            (Path(e["final"]), None if e["staged"] is None else Path(e["staged"]), Path(e["backup"])) for e in entries
        ]
    except (OSError, ValueError, KeyError, TypeError):
        moves = []
    allowed = {os.path.abspath(path) for path in also}
    moves = [move for move in moves if _trusted(Path(root), allowed, *move)]
    _roll_back(moves)
    for _, staged, backup in moves:
        if staged is not None:
            _remove(staged)
        _remove(backup)
    with contextlib.suppress(OSError):
        journal.unlink()
    return bool(moves)


def _trusted(root: Path, allowed: set, final: Path, staged: Path | None, backup: Path) -> bool:
    """Whether a journal entry names an output of this set and its own temporary names (see :func:`recover`)."""
    try:
        base = os.path.realpath(root)
        place = os.path.realpath(final.parent)
    except (OSError, ValueError):
        return False
    inside = place == base or place.startswith(base.rstrip(os.sep) + os.sep)
    if not inside and os.path.abspath(final) not in allowed:
        return False
    if final.name in ("", ".", "..") or os.path.abspath(final) == os.path.abspath(root):
        return False
    for path, kind in ((staged, "part"), (backup, "old")):
        if path is None:
            continue
        if os.path.abspath(path.parent) != os.path.abspath(final.parent):
            return False
        if not path.name.startswith(f".{final.name}.{kind}-"):
            return False
    return True


def sweep(finals) -> None:
    """Delete leftover temporary files of killed runs beside each of ``finals``.

    Temporary names are ``.NAME.part-TOKEN...`` (:meth:`OutputSet.stage`,
    :func:`diffmorph.io.files.atomic_path`); only those of the given final names are
    removed. Call it while holding the folder's lock, after :func:`recover`.
    """
    for final in finals:
        final = Path(final)
        if final.parent.is_dir():
            for leftover in final.parent.glob(f".{glob.escape(final.name)}.part-*"):
                _remove(leftover)


class FolderLock:
    """An exclusive lock on an output folder, so two runs never write one set.

    A lock file ``.diffmorph.lock`` (or ``name``) in ``folder`` is locked with
    ``filelock`` (an OS lock: released automatically if the process dies).

    Raises (on entering):
      OutputError: "another diffmorph run is writing to DIR" if it is held.
    """

    def __init__(self, folder, name: str = LOCK_NAME):
        import filelock

        self.folder = Path(folder)
        self._lock = filelock.FileLock(str(self.folder / name), timeout=0, is_singleton=False)

    def __enter__(self) -> FolderLock:
        import filelock

        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            raise OutputError(
                f"another diffmorph run is writing to {display_path(self.folder)}; "
                f"wait for it to finish or choose another folder"
            ) from None
        except OSError as exc:
            raise OutputError(f"cannot lock {display_path(self.folder)}: {exc.strerror or exc}") from None
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()
