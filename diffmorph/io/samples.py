"""The bundled sample images: where they are, in a checkout or in an installed wheel.

The repository keeps them in ``images/`` (made by ``tools/make_sample_images.py``;
licences in ``images/README.md``); the wheel ships the same files as the package data
``diffmorph/data/`` (``pyproject.toml`` maps that folder to ``images/``, so no file is
stored twice). :func:`samples_dir` finds whichever is there.

Example:
  >>> pair = sample_pair()
  >>> pair.source.name, pair.target.name
  ('astronaut.jpg', 'cat.jpg')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

SOURCE = "astronaut.jpg"
TARGET = "cat.jpg"
POINTS = "astronaut_cat_points.csv"  # point pairs (eyes, nose, mouth...) for the photo pair, when shipped


@dataclass(frozen=True)
class SamplePair:
    """The bundled photo pair: ``source`` and ``target`` image paths (256x256 RGB JPEG), and
    ``points``, its point-pairs CSV file, or ``None`` where this build has none."""

    source: Path
    target: Path
    points: Path | None


def samples_dir() -> Path:
    """The folder holding the sample images: the installed package's ``diffmorph/data/``,
    or, in a checkout, the repository's ``images/``.

    Raises:
      InputError: neither exists (a broken installation).
    """
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "data", package.parent / "images"):
        if (folder / SOURCE).is_file():
            return folder
    raise InputError(f"the sample images are missing (looked in {package / 'data'}); reinstall diffmorph")


def sample_pair() -> SamplePair:
    """The bundled photo pair (astronaut -> cat) with its point pairs where shipped.

    Raises:
      InputError: the images are missing (a broken installation).
    """
    folder = samples_dir()
    points = folder / POINTS
    return SamplePair(folder / SOURCE, folder / TARGET, points if points.is_file() else None)
