"""A morph run on a worker thread, and the files the page shows from it.

:class:`Runner` calls :func:`diffmorph.morph` on its own thread with a
:class:`~diffmorph.web.progress.WebProgress`, so the page's handler can poll the progress
and show training snapshots while it runs. No Gradio here.
"""

from __future__ import annotations

import hashlib
import threading
import zipfile
from pathlib import Path

import numpy as np

import diffmorph

from ..app.write import FORMATS  # a run writes every format (plus the report)
from .progress import WebProgress
from .sessions import Session


def run_key(source: np.ndarray, target: np.ndarray, config, pairs: np.ndarray) -> str:
    """What a checkpoint depends on: inputs, settings, points (a resume needs all the same)."""
    digest = hashlib.sha256()
    for array in (source, target, pairs):
        digest.update(repr(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(repr(config).encode())
    return digest.hexdigest()


class Runner:
    """Runs one morph on a worker thread, reporting to a :class:`WebProgress`."""

    def __init__(self, session: Session, source, target, config, *, pairs=None, resume=False, maps=None):
        self.session = session
        self.progress = WebProgress()
        self.result = None
        self.error: BaseException | None = None
        kwargs = dict(
            resume=resume,
            maps=maps,
            options=diffmorph.OutputOptions(formats=FORMATS, report=True),
            progress=self.progress,
        )
        if pairs is not None and len(pairs):
            kwargs["points"] = pairs
        self._call = lambda: diffmorph.morph(source, target, session.run_dir, config, **kwargs)
        self.thread = threading.Thread(target=self._run, name="diffmorph-web-run", daemon=True)

    def _run(self) -> None:
        try:
            self.result = self._call()
        except BaseException as exc:  # noqa: BLE001 (reported to the page)
            self.error = exc

    def start(self) -> Runner:
        self.session.progress = self.progress
        self.thread.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` s; True once the run is over."""
        self.thread.join(timeout)
        if self.thread.is_alive():
            return False
        self.session.progress = None
        return True


def latest_snapshot(train: Path) -> Path | None:
    """The newest training snapshot (``a_to_b_N.jpg``, highest N) in ``train``, if any."""
    best, best_step = None, -1
    for path in train.glob("a_to_b_*.jpg") if train.is_dir() else ():
        step = path.stem.rsplit("_", 1)[-1]
        if step.isdigit() and int(step) > best_step:
            best, best_step = path, int(step)
    return best


def frames_zip(frames: Path, out: Path) -> Path:
    """The numbered frames as one ZIP (stored: PNGs do not compress further)."""
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(frames.glob("*.png")):
            archive.write(path, path.name)
    tmp.replace(out)
    return out
