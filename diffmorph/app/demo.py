"""The demo: the bundled photo pair morphed with settings that finish in about a minute.

``diffmorph demo`` is the first command after ``pip install diffmorph``: it needs no
images of the user's and no checkout. It morphs the sample pair shipped in the package
(:func:`diffmorph.io.samples.sample_pair`: astronaut -> cat), guided by the pair's point
pairs where the package ships them, at a small working size.
"""

from __future__ import annotations

from ..config import MorphConfig, preset_config
from ..io.samples import sample_pair
from .morph import MorphResult, morph
from .progress import SILENT, Progress
from .write import OutputOptions

DEMO_PRESET = "best"  # sharper, evenly paced frames in the same time as faithful's
# working size 256 and 600 train steps: about a minute on a 2-core CPU (docs/getting-started.md)
DEMO_SETTINGS = dict(size=256, train_steps=600, frames=60, fps=30, seed=0)


def demo_config(preset: str = DEMO_PRESET, **explicit) -> MorphConfig:
    """The demo's settings: ``preset`` with :data:`DEMO_SETTINGS`; ``explicit`` settings win.

    Example:
      >>> config = demo_config(train_steps=10)
      >>> config.size, config.train_steps, config.frames, config.pacing
      (256, 10, 60, 'uniform')
    """
    return preset_config(preset, **{**DEMO_SETTINGS, **explicit})


def demo(
    out_dir="diffmorph-demo",
    config: MorphConfig | None = None,
    *,
    guided: bool = True,
    resume: bool = False,
    options: OutputOptions | None = None,
    progress: Progress = SILENT,
) -> MorphResult:
    """Morph the bundled photo pair into ``out_dir`` (the morph command's layout).

    Args:
      out_dir: the output folder (created).
      config: the settings (default :func:`demo_config`).
      guided: use the pair's bundled point pairs when the package ships them
        (``morph/points.csv`` and ``morph/points.jpg`` are written); False: unguided.
      resume: continue an interrupted demo from ``out_dir/morph/checkpoint.npz``.
      options: formats, GIF size, boomerang (default: MP4 and GIF).
      progress: as for :func:`~diffmorph.app.morph.morph`.

    Returns:
      :class:`~diffmorph.app.morph.MorphResult`.

    Raises:
      InputError: the sample images are missing (a broken installation), or a setting
        is out of range; OutputError, NonFiniteLossError, Interrupted, Cancelled: as
        :func:`~diffmorph.app.morph.morph`.
    """
    pair = sample_pair()
    points = pair.points if guided else None
    return morph(
        pair.source,
        pair.target,
        out_dir,
        config or demo_config(),
        resume=resume,
        options=options,
        points=points,
        progress=progress,
    )
