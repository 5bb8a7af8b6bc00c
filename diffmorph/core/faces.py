"""Face landmark pairs: the largest face in each image, and its landmarks paired up.

Detection is dlib's frontal face detector (HOG features and a linear classifier, Dalal
and Triggs 2005; dlib, Boost Software License); landmarks come from dlib's shape
predictor (an ensemble of regression trees, Kazemi and Sullivan 2014,
https://www.csc.kth.se/~vahidk/papers/KazemiCVPR14.pdf) with one of the models shipped
in the ``face-recognition-models`` package (nothing is downloaded at run time):

* ``5`` landmarks (the default): the outer and inner corners of both eyes and the
  bottom of the nose; ``shape_predictor_5_face_landmarks.dat``, trained by Davis King
  on images he annotated himself, released under CC0 (public domain).
* ``68`` landmarks (iBUG 300-W's scheme: jaw, brows, nose, eyes, lips);
  ``shape_predictor_68_face_landmarks.dat``, trained on the iBUG 300-W data set, whose
  licence excludes commercial use: the model may not be used in a commercial product.

Both packages (``dlib-bin``, ``face-recognition-models``) form the optional ``faces``
extra (``pip install 'diffmorph[faces]'``); they are imported only when face points
are asked for, so nothing here loads at start-up. Coordinates follow the project's
point convention (``docs/algorithm.md``, "Point pairs"): x right, y down, the origin
at the centre of the top-left pixel, which is dlib's too.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from ..errors import InputError

LANDMARK_SETS = (5, 68)
DEFAULT_LANDMARKS = 5
MODEL_FILES = {5: "shape_predictor_5_face_landmarks.dat", 68: "shape_predictor_68_face_landmarks.dat"}
MODELS_PACKAGE = "face_recognition_models"
MISSING = "points='faces' needs the optional face extra: pip install 'diffmorph[faces]'"
DETECT_SIDE = 640  # faces are looked for in a copy at most this large (upsampled once by the detector)
# the 5-point model's landmarks as indices of the 68-point scheme (same features, same order)
FIVE_IN_68 = (45, 42, 36, 39, 33)


class FaceExtraMissing(InputError):
    """The optional ``faces`` extra (dlib and its models) is not installed. Exit status 2."""

    def __init__(self, message: str = MISSING):
        super().__init__(message, setting="points")


class NoFace(Exception):
    """No face was found in one of the images; ``str(error)`` says which
    (``"no face found in the target image"``)."""


def available() -> bool:
    """Whether the ``faces`` extra is installed (found without importing it)."""
    return all(importlib.util.find_spec(name) is not None for name in ("dlib", MODELS_PACKAGE))


def _models_folder() -> Path:
    spec = importlib.util.find_spec(MODELS_PACKAGE)  # found, not imported: its __init__ needs pkg_resources
    if spec is None or not spec.submodule_search_locations:
        raise FaceExtraMissing()
    return Path(next(iter(spec.submodule_search_locations))) / "models"


@functools.cache
def _models(landmarks: int):
    """``(detector, shape predictor)``, loaded once per process (about 0.6 s for a model)."""
    if landmarks not in MODEL_FILES:
        raise InputError(f"landmarks must be one of {LANDMARK_SETS} (got {landmarks!r})", setting="points")
    try:
        import dlib
    except ImportError:
        raise FaceExtraMissing() from None
    path = _models_folder() / MODEL_FILES[landmarks]
    if not path.is_file():
        raise FaceExtraMissing()
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(path))


def face_landmarks(image: np.ndarray, landmarks: int = DEFAULT_LANDMARKS) -> np.ndarray | None:
    """The landmarks of the largest face in ``image``.

    Faces are detected in a copy at most :data:`DETECT_SIDE` pixels on its larger side
    (the detector upsamples it once, so faces from about 40 pixels across are found);
    the landmarks are then placed in the image itself.

    Args:
      image: uint8 ``(H, W, 3)`` RGB.
      landmarks: 5 (CC0 model, default) or 68 (non-commercial model).

    Returns:
      float64 ``(landmarks, 2)`` rows ``(x, y)`` in the image's pixels (origin at the
      centre of the top-left pixel), in the model's order (5: outer and inner corner of
      the eye on the image's right, the same of the eye on its left, the bottom of the
      nose; 68: iBUG 300-W's), or None when no face is found.

    Raises:
      FaceExtraMissing: dlib or the models are not installed.
      InputError: ``landmarks`` is not 5 or 68.
    """
    import cv2

    detector, predictor = _models(landmarks)
    import dlib

    image = np.ascontiguousarray(image, np.uint8)
    scale = min(1.0, DETECT_SIDE / max(image.shape[:2]))
    small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    found = detector(small, 1)
    if len(found) == 0:
        return None
    box = max(found, key=lambda r: r.width() * r.height())  # the largest face
    box = dlib.rectangle(*(round((v + 0.5) / scale - 0.5) for v in (box.left(), box.top(), box.right(), box.bottom())))
    shape = predictor(image, box)
    return np.array([(p.x, p.y) for p in shape.parts()], np.float64)


def face_pairs(source: np.ndarray, target: np.ndarray, landmarks: int = DEFAULT_LANDMARKS) -> np.ndarray:
    """Point pairs from the largest face in each image: landmark k of the source with
    landmark k of the target.

    Args:
      source, target: uint8 ``(H, W, 3)`` RGB, any sizes.
      landmarks: 5 (default; CC0 model) or 68 (model not for commercial use).

    Returns:
      float64 ``(landmarks, 4)`` rows ``(source_x, source_y, target_x, target_y)`` in
      each image's own pixels, clipped to the image's pixel centres (a landmark the
      model places outside, such as a jaw point of a face cut by the border, is moved
      onto the edge pixel);
      a pair whose source point repeats an earlier one's (lips closed) is left out, as
      one source point can have one target only.

    Raises:
      NoFace: no face in the source or the target image (the message says which).
      FaceExtraMissing: dlib or the models are not installed.
    """
    found = [face_landmarks(image, landmarks) for image in (source, target)]
    missing = [name for name, points in zip(("source", "target"), found) if points is None]
    if missing:
        raise NoFace(
            f"no face found in the {missing[0]} image" if len(missing) == 1 else "no face found in either image"
        )
    rows = []
    for image, points in zip((source, target), found):
        height, width = image.shape[:2]
        rows.append(np.clip(points, 0, [width - 1, height - 1]))
    pairs = np.concatenate(rows, axis=1)
    _, first = np.unique(pairs[:, :2], axis=0, return_index=True)
    return pairs[np.sort(first)]


__all__ = ["FaceExtraMissing", "NoFace", "available", "face_landmarks", "face_pairs"]
