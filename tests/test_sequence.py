"""Tests of ``diffmorph sequence`` (:mod:`diffmorph.cli.sequence`) and ``scripts/morph_folder.sh``.

End-to-end runs are subprocesses (``python -m diffmorph.cli sequence ...``) with tiny
settings on CPU. One module-scoped run of three images is shared; the loop and
boomerang runs use the same work folder, so they re-use its pairs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from diffmorph.cli.sequence import frame_count, images_in, main, pair_folder_name, pairs_of

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "morph_folder.sh"
STEPS = 4
WIDTH, HEIGHT = 40, 32  # the first image's size: every frame's size
TINY = ["--size", "32", "-e", "3", "--steps", str(STEPS), "--seed", "0", "-q"]


def make_image(width: int, height: int, seed: int) -> np.ndarray:
    """A deterministic uint8 ``(height, width, 3)`` picture: gradients and a square."""
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([xx * 255 // (width - 1), yy * 255 // (height - 1),
                      np.full_like(xx, (40 + 70 * seed) % 256)], axis=-1).astype(np.uint8)
    side = min(width, height) // 3
    top, left = height // 2 - side // 2, width // 4 + 4 * seed
    image[top:top + side, left:left + side] = (250, (30 + 80 * seed) % 256, 200)
    return image


def write_image(path, width: int, height: int, seed: int) -> Path:
    from PIL import Image

    path = Path(path)
    Image.fromarray(make_image(width, height, seed)).save(path)
    return path


def env() -> dict:
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def run_sequence(args, cwd, timeout=300) -> subprocess.CompletedProcess:
    """``python -m diffmorph.cli sequence ARGS`` with text output captured."""
    return subprocess.run([sys.executable, "-m", "diffmorph.cli", "sequence", *map(str, args)],
                          cwd=str(cwd), env=env(), capture_output=True, text=True, timeout=timeout)


def mp4_frames(path) -> tuple[np.ndarray, tuple[int, int]]:
    """All frames of a video as uint8 ``(N, H, W, 3)`` and its ``(width, height)``."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(data, np.uint8).reshape(height, width, 3) for data in reader]
    return np.stack(frames), (width, height)


def gif_info(path) -> tuple[int, tuple[int, int], int, int]:
    """``(stored frames, (width, height), total duration ms, one frame's duration ms)``."""
    from PIL import Image

    with Image.open(path) as gif:
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
        return gif.n_frames, gif.size, sum(durations), min(durations)


def close(a: np.ndarray, b: np.ndarray, tolerance: float = 12.0) -> bool:
    """Mean absolute difference below ``tolerance`` (H.264 is lossy)."""
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean()) < tolerance


def assert_clean_error(proc: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr


# ----------------------------------------------------------------------------- pure helpers


def test_frame_count_rule():
    assert pairs_of(3, False) == [(0, 1), (1, 2)]
    assert pairs_of(3, True) == [(0, 1), (1, 2), (2, 0)]
    assert pairs_of(2, True) == [(0, 1), (1, 0)]
    assert frame_count(3, STEPS) == 2 * STEPS
    assert frame_count(3, STEPS, loop=True) == 3 * STEPS
    assert frame_count(3, STEPS, boomerang=True) == 2 * (2 * STEPS) - 2
    assert frame_count(2, 100) == 100  # one pair: the morph command's count


def test_pair_folder_names_are_safe():
    assert pair_folder_name(0, "x/a.png", "y/b.jpg") == "000_a_to_b"
    assert pair_folder_name(12, "my photo (1).JPG", "../é.png") == "012_my_photo_1_to_image"


def test_images_in_sorts_and_filters(tmp_path):
    for name in ("b.png", "A.JPG", "c d.webp", "e.jpeg", "f.bmp", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in images_in(tmp_path)] == ["A.JPG", "b.png", "c d.webp", "e.jpeg", "f.bmp"]


def test_in_process_main_returns_status_and_help_does_not_import_tensorflow():
    code = ("import sys; from diffmorph.cli.sequence import main; "
            "assert main(['--help']) == 0; assert main(['only-one.png', '-o', 'x.mp4']) == 2; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    proc = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True,
                          timeout=60, cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr
    assert "2 x steps" in proc.stdout  # the frame rule is in --help
    assert "at least two images" in proc.stderr


# ----------------------------------------------------------------------------- usage and input errors


@pytest.mark.parametrize("args, words", [
    (["a.png", "-o", "out.mp4"], ["at least two images", "usage:"]),
    (["-o", "out.mp4"], ["at least two images"]),
    (["a.png", "b.png"], ["-o/--output"]),
    (["a.png", "b.png", "-o", "out.gif"], [".mp4"]),
    (["a.png", "b.png", "-o", "out.mp4", "--loop", "--boomerang"], ["--loop and --boomerang"]),
    (["a.png", "b.png", "-o", "out.mp4", "--steps", "1"], ["--steps"]),
])
def test_usage_errors_exit_2(tmp_path, args, words):
    write_image(tmp_path / "a.png", WIDTH, HEIGHT, 0)
    write_image(tmp_path / "b.png", WIDTH, HEIGHT, 1)
    assert_clean_error(run_sequence(args, tmp_path), 2, *words)
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("bad", ["missing.png", "broken.png"])
def test_bad_image_is_one_line_exit_2(tmp_path, bad):
    write_image(tmp_path / "a.png", WIDTH, HEIGHT, 0)
    (tmp_path / "broken.png").write_text("not an image")
    proc = run_sequence(["a.png", bad, "a.png", "-o", "out.mp4", *TINY], tmp_path)
    assert_clean_error(proc, 2, f"diffmorph: error: {bad}")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "out_pairs").exists()


def test_output_is_a_folder_exits_1(tmp_path):
    write_image(tmp_path / "a.png", WIDTH, HEIGHT, 0)
    (tmp_path / "out.mp4").mkdir()
    proc = run_sequence(["a.png", "a.png", "-o", "out.mp4", *TINY], tmp_path)
    assert_clean_error(proc, 1, "is a folder")


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def sequence_run(tmp_path_factory):
    """Three images (the second 48x40, the others 40x32) morphed with tiny settings.

    Returns ``(folder, CompletedProcess, seconds)``; outputs in ``folder/out/seq.*``,
    pairs in ``folder/work``.
    """
    folder = tmp_path_factory.mktemp("sequence")
    write_image(folder / "a.png", WIDTH, HEIGHT, 0)
    write_image(folder / "b.png", 48, 40, 1)
    write_image(folder / "c.png", WIDTH, HEIGHT, 2)
    started = time.monotonic()
    proc = run_sequence(["a.png", "b.png", "c.png", "-o", "out/seq.mp4", "--work-dir", "work", *TINY],
                        folder)
    assert proc.returncode == 0, proc.stderr
    return folder, proc, time.monotonic() - started


def test_three_images_give_two_pairs_of_frames(sequence_run):
    folder, proc, _ = sequence_run
    assert "resizing it to the first image's size" in proc.stderr
    frames, size = mp4_frames(folder / "out" / "seq.mp4")
    assert size == (WIDTH, HEIGHT)
    assert len(frames) == 2 * STEPS == frame_count(3, STEPS)
    assert close(frames[0], make_image(WIDTH, HEIGHT, 0))
    assert close(frames[-1], make_image(WIDTH, HEIGHT, 2))
    # the joint: the last frame of pair 1 and the first of pair 2 are both image b
    assert close(frames[STEPS - 1], frames[STEPS], 3.0)
    stored, gif_size, total_ms, frame_ms = gif_info(folder / "out" / "seq.gif")
    assert gif_size == (WIDTH, HEIGHT)
    # same frames and timing; the GIF stores the held joint frame once, with double duration
    assert total_ms == 2 * STEPS * frame_ms
    assert stored == 2 * STEPS - 1
    for name in ("000_a_to_b", "001_b_to_c"):
        morph = folder / "work" / name / "morph"
        for file in ("maps.npz", "checkpoint.npz", "maps.jpg", "result.jpg"):
            assert (morph / file).is_file(), morph / file
        assert (folder / "work" / name / "preds.npy").is_file()
        assert list((folder / "work" / name / "train").glob("a_to_b_*.jpg"))


def test_rerun_reuses_pairs(sequence_run):
    folder, _, first_seconds = sequence_run
    maps = sorted((folder / "work").glob("*/morph/maps.npz"))
    assert len(maps) == 2
    before = [p.stat().st_mtime_ns for p in maps]
    started = time.monotonic()
    proc = run_sequence(["a.png", "b.png", "c.png", "-o", "out/seq.mp4", "--work-dir", "work", *TINY],
                        folder)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert "reusing pair 1/2" in proc.stderr and "reusing pair 2/2" in proc.stderr
    assert [p.stat().st_mtime_ns for p in maps] == before  # not optimised again
    assert len(mp4_frames(folder / "out" / "seq.mp4")[0]) == 2 * STEPS
    print(f"first run {first_seconds:.1f} s, re-run {seconds:.1f} s")


def test_changed_image_is_optimised_again(sequence_run, tmp_path):
    folder, _, _ = sequence_run
    work = tmp_path / "work"
    shutil.copytree(folder / "work", work)
    write_image(tmp_path / "a.png", WIDTH, HEIGHT, 0)
    write_image(tmp_path / "b.png", 48, 40, 1)
    write_image(tmp_path / "c.png", WIDTH, HEIGHT, 3)  # not the c of the first run
    proc = run_sequence(["a.png", "b.png", "c.png", "-o", "seq.mp4", "--work-dir", work, "--formats", "mp4",
                         "--plain", *TINY], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "reusing pair 1/2" in proc.stderr and "reusing pair 2/2" not in proc.stderr


def test_loop_adds_the_pair_back_to_the_first(sequence_run):
    folder, _, _ = sequence_run
    proc = run_sequence(["a.png", "b.png", "c.png", "-o", "out/loop.mp4", "--work-dir", "work", "--loop",
                         "--plain", *TINY], folder)
    assert proc.returncode == 0, proc.stderr
    assert "reusing pair 1/3" in proc.stderr and "reusing pair 2/3" in proc.stderr
    assert "reusing pair 3/3" not in proc.stderr
    assert (folder / "work" / "002_c_to_a" / "morph" / "maps.npz").is_file()
    frames, size = mp4_frames(folder / "out" / "loop.mp4")
    assert size == (WIDTH, HEIGHT)
    assert len(frames) == 3 * STEPS == frame_count(3, STEPS, loop=True)
    assert close(frames[-1], make_image(WIDTH, HEIGHT, 0))  # back at the first image
    stored, _, total_ms, frame_ms = gif_info(folder / "out" / "loop.gif")
    assert total_ms == 3 * STEPS * frame_ms and stored == 3 * STEPS - 2


def test_boomerang_plays_back_without_repeating_the_ends(sequence_run):
    folder, _, _ = sequence_run
    proc = run_sequence(["a.png", "b.png", "c.png", "-o", "out/boom.mp4", "--work-dir", "work", "--boomerang",
                         "--formats", "mp4", *TINY], folder)
    assert proc.returncode == 0, proc.stderr
    assert "reusing pair 2/2" in proc.stderr
    frames, _ = mp4_frames(folder / "out" / "boom.mp4")
    forward = 2 * STEPS
    assert len(frames) == 2 * forward - 2 == frame_count(3, STEPS, boomerang=True)
    for k in range(1, forward - 1):  # frame forward-1+k mirrors frame forward-1-k
        assert close(frames[forward - 1 + k], frames[forward - 1 - k], 4.0), k
    assert not (folder / "out" / "boom.gif").exists()  # --formats mp4


def test_default_work_dir_is_beside_the_output(tmp_path):
    write_image(tmp_path / "a.png", WIDTH, HEIGHT, 0)
    write_image(tmp_path / "b.png", WIDTH, HEIGHT, 1)
    proc = run_sequence(["a.png", "b.png", "-o", "videos/ab.mp4", "--formats", "mp4,frames", "--plain",
                         *TINY], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "videos" / "ab_pairs" / "000_a_to_b" / "morph" / "maps.npz").is_file()
    assert len(mp4_frames(tmp_path / "videos" / "ab.mp4")[0]) == STEPS
    assert len(list((tmp_path / "videos" / "ab_frames").glob("frame_*.png"))) == STEPS
    assert not (tmp_path / "videos" / "ab.gif").exists()


# ----------------------------------------------------------------------------- scripts/morph_folder.sh


def run_script(args, cwd, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *map(str, args)], cwd=str(cwd), capture_output=True, text=True,
                          timeout=timeout, env=dict(env(), PYTHON=sys.executable))


def test_script_is_executable():
    assert os.access(SCRIPT, os.X_OK)


def test_script_morphs_a_folder(tmp_path):
    folder = tmp_path / "my photos"
    folder.mkdir()
    write_image(folder / "a.png", WIDTH, HEIGHT, 0)
    write_image(folder / "b image.png", WIDTH, HEIGHT, 1)
    write_image(folder / "C.PNG", 48, 40, 2)
    (folder / "notes.txt").write_text("not an image")
    proc = run_script([folder, tmp_path / "out dir" / "seq.mp4", "--plain", *TINY], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "3 images" in proc.stderr
    frames, size = mp4_frames(tmp_path / "out dir" / "seq.mp4")
    assert len(frames) == 2 * STEPS
    assert size == (48, 40)  # C.PNG sorts first (byte order): its size wins
    pairs = sorted(p.name for p in (tmp_path / "out dir" / "seq_pairs").iterdir())
    assert pairs == ["000_C_to_a", "001_a_to_b_image"]
    assert (tmp_path / "out dir" / "seq.gif").is_file()


@pytest.mark.parametrize("case", ["empty", "one image", "no arguments", "not a folder"])
def test_script_usage_errors_exit_2(tmp_path, case):
    folder = tmp_path / "images"
    folder.mkdir()
    if case == "one image":
        write_image(folder / "a.png", WIDTH, HEIGHT, 0)
    args = {"no arguments": [], "not a folder": [tmp_path / "nope", "out.mp4"]}.get(case, [folder, "out.mp4"])
    proc = run_script(args, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "usage:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_script_help():
    proc = run_script(["--help"], REPO)
    assert proc.returncode == 0 and "usage:" in proc.stdout


def test_morph_py_dispatches_sequence(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "morph.py"), "sequence", "--help"], env=env(),
                          capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert proc.returncode == 0 and "diffmorph sequence" in proc.stdout


def test_main_in_process(tmp_path, capsys):
    assert main(["x.png"]) == 2
    assert "at least two images" in capsys.readouterr().err
