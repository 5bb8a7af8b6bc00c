"""Run management for callers that drive :func:`~diffmorph.app.morph.morph` again and again
in one output folder (the web app's sessions, a notebook): where the outputs are, whether a
stopped run can be resumed, and the newest training snapshot.

Each answer comes from the one place that decides it: the layout from
:class:`~diffmorph.app.layout.MorphPaths`, the resume decision from
:func:`~diffmorph.app.pairs.resumable` (the checkpoint's own record of the pixels,
settings and point pairs it was made with), the snapshot names from
:data:`~diffmorph.app.fit.SNAPSHOT_NAME`. Nothing here writes.
"""

from __future__ import annotations

from pathlib import Path

from ..config import MorphConfig
from ..errors import InputError
from .fit import snapshot_files
from .inputs import load_pair
from .layout import MorphPaths
from .pairs import resumable
from .points import guide_for

SNAPSHOT_PREFIX = "a_to_b_"  # the source warped towards the target (b_to_a_N.jpg: the other way)


def output_paths(out_dir) -> MorphPaths:
    """The layout of a morph's outputs in ``out_dir`` (``paths.mp4``, ``paths.maps_npz``, ``paths.train``...).

    Example:
      >>> output_paths("out").mp4.as_posix()
      'out/morph/morph.mp4'
    """
    return MorphPaths(Path(out_dir))


def can_resume(out_dir, source, target, config: MorphConfig, points=None) -> bool:
    """Whether ``morph(source, target, out_dir, config, points=points, resume=True)`` would
    continue the checkpoint in ``out_dir`` rather than refuse it.

    True when ``out_dir/morph/checkpoint.npz`` was saved for these pixels (the target as
    resized to the source's size), these settings (the optimiser's: working size, seed,
    scales...; train steps may be more than the checkpoint's step) and these point pairs.

    Args:
      out_dir: the output folder of the earlier run.
      source, target: image files or uint8 ``(H, W, 3)`` RGB arrays, as for ``morph``.
      config: the settings of the run to make.
      points: the point pairs as for ``morph`` (``None``: unguided); ``"auto"`` is never
        resumable here (the pairs are only known once found).

    Returns:
      bool; False also when the inputs or points cannot be used (the run itself says why).
    """
    if isinstance(points, str) and points == "auto":
        return False
    try:
        pair = load_pair(source, target)
        guide = guide_for(points, pair.source, pair.target, pair.target_size)
    except InputError:
        return False
    return resumable(output_paths(out_dir), config, pair.digests, guide)


def snapshot_step(path) -> int:
    """The train step N of a snapshot ``a_to_b_N.jpg`` / ``b_to_a_N.jpg`` (-1 for another name).

    Example:
      >>> snapshot_step("train/a_to_b_200.jpg"), snapshot_step("notes.jpg")
      (200, -1)
    """
    stem = Path(path).stem
    step = stem.rsplit("_", 1)[-1]
    return int(step) if step.isdigit() and stem.startswith(("a_to_b_", "b_to_a_")) else -1


def latest_snapshot(out_dir) -> Path | None:
    """The newest training snapshot of the source warped towards the target
    (``out_dir/train/a_to_b_N.jpg``, highest N), or None when there is none yet."""
    found = [p for p in snapshot_files(output_paths(out_dir).train) if p.name.startswith(SNAPSHOT_PREFIX)]
    return max(found, key=snapshot_step, default=None)


__all__ = ["can_resume", "latest_snapshot", "output_paths", "snapshot_step"]
