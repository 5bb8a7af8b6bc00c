"""End-to-end tests of what the CLI writes: maps files, videos, GIFs, PNG frames.

Every CLI run is a real subprocess (``morph.py``). The runs are started once per
module by the ``runs`` fixture, two at a time (they are mostly TensorFlow start-up),
and each test waits only for the runs it reads. Run A optimises the toy pair (the
default fast path); most other runs re-render from A's ``maps.npz`` (``--maps``), so
only three more runs optimise, each on ``--plain`` (no XLA compile to wait for).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import pytest
from PIL import Image, ImageSequence

from conftest import REPO, SMALL_SIZE, TOY_A, TOY_B, make_test_image, read_rgb, read_video, run_cli, write_rgb

A_STEPS = 6  # frames of run A (and of the runs compared with it frame by frame)
A_EPOCHS = 12  # snapshots at steps 10 and 12
LARGE_W, LARGE_H = 3000, 2000
MAX_PEAK_RSS = 2.5e9  # bytes, for the 3000 x 2000 native render
RSS_WRAPPER = ("import resource, subprocess, sys\n"
               "rc = subprocess.call(sys.argv[1:])\n"
               "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)\n"
               "sys.exit(rc)\n")


class Run(NamedTuple):
    proc: subprocess.CompletedProcess
    out: Path  # the run's --output-dir
    seconds: float  # wall time of the subprocess
    extra: dict  # run-specific values (paths, measured RSS)


def _cli(args, out: Path, **extra) -> Run:
    start = time.monotonic()
    proc = run_cli([*args, "-o", out])
    return Run(proc, out, time.monotonic() - start, extra)


def _cli_measured(args, out: Path, **extra) -> Run:
    """Like :func:`_cli` (same environment as conftest's run_cli), also measuring the
    child's peak RSS with ``getrusage(RUSAGE_CHILDREN)`` in a wrapper process."""
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.pop("PYTHONPATH", None)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", RSS_WRAPPER, sys.executable, str(REPO / "morph.py"),
                           *map(str, args), "-o", str(out)],
                          cwd=str(REPO), env=env, capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - start
    found = re.findall(r"^MAXRSS_KB (\d+)$", proc.stdout, re.M)
    return Run(proc, out, seconds, dict(extra, peak_rss=int(found[-1]) * 1024 if found else None))


def _ok(run: Run) -> Run:
    assert run.proc.returncode == 0, (run.proc.returncode, run.proc.stderr[-3000:])
    assert "Traceback" not in run.proc.stderr, run.proc.stderr[-3000:]
    return run


class Runs:
    """Futures of every CLI run of this module, by name."""

    def __init__(self, root: Path, jobs: dict):
        self.root, self._jobs = root, jobs

    def __getitem__(self, name) -> Run:
        return self._jobs[name].result()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    images = root / "images"
    images.mkdir()
    other_target = write_rgb(images / "other_target.png", make_test_image(256, 256, seed=1))  # toy size
    odd_source = write_rgb(images / "odd_source.png", make_test_image(31, 21, seed=0))
    odd_target = write_rgb(images / "odd_target.png", make_test_image(40, 30, seed=1))
    small_source = write_rgb(images / "small_source.png", make_test_image(64, 48, seed=0))
    small_target = write_rgb(images / "small_target.png", make_test_image(64, 48, seed=1))
    large_source = write_rgb(images / "large_source.png", make_test_image(LARGE_W, LARGE_H, seed=0))
    large_target = write_rgb(images / "large_target.png", make_test_image(LARGE_W, LARGE_H, seed=1))
    random_file = images / "random.npz"
    random_file.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())

    toy = ["-s", TOY_A, "-t", TOY_B, "--size", SMALL_SIZE, "-q"]
    a_out = root / "a"
    maps = a_out / "morph" / "maps.npz"
    pool = ThreadPoolExecutor(max_workers=2)
    jobs = {}

    def after_a(job):
        def run():
            jobs["a"].result()
            return job()
        return run

    # A first; the long large-input run beside it; then everything that reads A's maps.
    jobs["a"] = pool.submit(_cli, [*toy, "-e", A_EPOCHS, "--steps", A_STEPS, "--seed", 0,
                                   "--formats", "mp4,gif,frames"], a_out)
    jobs["large"] = pool.submit(_cli_measured, [
        "-s", large_source, "-t", large_target, "--size", 32, "-e", 1, "--steps", 2,
        "--formats", "frames", "--plain", "-q"], root / "large", source=large_source, target=large_target)
    # B: same images and steps, no -q so that its progress output can be checked
    jobs["b"] = pool.submit(after_a(lambda: _cli(
        ["-s", TOY_A, "-t", TOY_B, "--size", SMALL_SIZE, "--steps", A_STEPS, "--maps", maps,
         "--formats", "frames"], root / "b")))
    jobs["new_steps"] = pool.submit(after_a(lambda: _cli(
        [*toy, "--maps", maps, "--steps", 7, "--fps", 20, "--formats", "mp4,gif", "--plain"],
        root / "new_steps")))
    jobs["working"] = pool.submit(after_a(lambda: _cli(
        [*toy, "--maps", maps, "--steps", A_STEPS, "--render", "working", "--formats", "frames", "--plain"],
        root / "working")))
    jobs["boomerang"] = pool.submit(after_a(lambda: _cli(
        [*toy, "--maps", maps, "--steps", 5, "--boomerang", "--formats", "mp4,frames", "--plain"],
        root / "boomerang")))
    other = ["-s", TOY_A, "-t", other_target, "--size", SMALL_SIZE, "-q", "--steps", 3, "--plain"]
    jobs["refused"] = pool.submit(after_a(lambda: _cli(
        [*other, "--maps", maps, "--formats", "mp4"], root / "refused")))
    jobs["forced"] = pool.submit(after_a(lambda: _cli(
        [*other, "--maps", maps, "--force", "--formats", "mp4"], root / "forced")))
    jobs["warp_scale"] = pool.submit(after_a(lambda: _cli(
        [*toy, "--maps", maps, "-w", 0.1, "--steps", 3, "--formats", "mp4", "--plain"], root / "warp_scale")))
    jobs["checkpoint"] = pool.submit(after_a(lambda: _cli(
        [*toy, "--maps", a_out / "morph" / "checkpoint.npz", "--steps", 3, "--formats", "mp4", "--plain"],
        root / "checkpoint")))
    jobs["random"] = pool.submit(lambda: _cli(
        [*toy, "--maps", random_file, "--steps", 3, "--formats", "mp4", "--plain"], root / "random"))
    jobs["odd"] = pool.submit(_cli, [
        "-s", odd_source, "-t", odd_target, "--size", 32, "-e", 2, "--steps", 4, "--seed", 0,
        "--formats", "mp4,gif,frames", "--plain", "-q"], root / "odd", source=odd_source, target=odd_target)
    jobs["small"] = pool.submit(_cli, [
        "-s", small_source, "-t", small_target, "--size", 32, "-e", 2, "--steps", 4, "--seed", 0,
        "--formats", "mp4,gif,frames", "--gif-max-side", 16, "--frames-dir", root / "small_frames",
        "--plain", "-q"], root / "small", frames_dir=root / "small_frames")
    try:
        yield Runs(root, jobs)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------------------------------- helpers


def _frames(folder) -> list[np.ndarray]:
    """The numbered PNG frames of a folder, in order, as uint8 RGB."""
    paths = sorted(Path(folder).glob("frame_*.png"))
    assert [p.name for p in paths] == [f"frame_{i:05d}.png" for i in range(len(paths))]
    return [read_rgb(p) for p in paths]



def _read_gif(path):
    """(frame count, (width, height), per-frame durations in ms) of a GIF."""
    with Image.open(path) as gif:
        durations = [frame.info.get("duration") for frame in ImageSequence.Iterator(gif)]
        return gif.n_frames, gif.size, durations


def _assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("diffmorph: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def _files_under(folder) -> list[Path]:
    return [p for p in Path(folder).rglob("*") if not p.is_dir()]


# ----------------------------------------------------------------------------- 1. maps round trip


def test_maps_round_trip_frames_are_identical(runs):
    a, b = _ok(runs["a"]), _ok(runs["b"])
    frames_a, frames_b = _frames(a.out / "morph" / "frames"), _frames(b.out / "morph" / "frames")
    assert len(frames_a) == len(frames_b) == A_STEPS
    for i, (x, y) in enumerate(zip(frames_a, frames_b)):
        assert np.array_equal(x, y), f"frame {i} differs"


def test_maps_run_does_not_optimise(runs):
    a, b = _ok(runs["a"]), _ok(runs["b"])
    assert "Optimising" not in b.proc.stderr and "Epoch" not in b.proc.stderr, b.proc.stderr[-2000:]
    assert "Rendering" in b.proc.stderr  # B ran without -q: its progress is there
    assert not _files_under(b.out / "train"), "a --maps run wrote training snapshots"
    for name in ("morph/checkpoint.npz", "morph/maps.npz", "preds.npy"):
        assert not (b.out / name).exists(), name
    assert b.seconds < a.seconds, f"--maps render took {b.seconds:.1f}s, the optimising run {a.seconds:.1f}s"


def test_maps_npz_contents(runs):
    from diffmorph import __version__
    from diffmorph.io import mapsfile
    from diffmorph.io.images import load_image, pixels_digest

    a = _ok(runs["a"])
    meta, arrays = mapsfile.load(a.out / "morph" / "maps.npz")
    low = arrays["low"]
    assert low.shape == (1, 84, 84, 16) and low.dtype == np.float32
    assert np.isfinite(low).all()
    assert meta["size"] == SMALL_SIZE
    assert (meta["add_scale"], meta["mult_scale"], meta["warp_scale"]) == (0.4, 0.4, 0.05)
    assert meta["add_first"] is False
    assert meta["version"] == __version__
    assert meta["source_sha256"] == pixels_digest(load_image(TOY_A).pixels)
    assert meta["target_sha256"] == pixels_digest(load_image(TOY_B).pixels)
    assert meta["source_sha256"] != meta["target_sha256"]


# ----------------------------------------------------------------------------- 2. new steps and fps


def test_maps_with_new_steps_and_fps(runs):
    run = _ok(runs["new_steps"])
    frames, meta = read_video(run.out / "morph" / "morph.mp4")
    assert len(frames) == 7
    assert meta["fps"] == pytest.approx(20)
    count, size, durations = _read_gif(run.out / "morph" / "morph.gif")
    assert count == 7  # distinct toy images: no identical consecutive frames for Pillow to merge
    assert size == (256, 256)
    assert durations == [50] * 7


# ----------------------------------------------------------------------------- 3. refusals


def test_maps_for_another_target_are_refused(runs):
    run = runs["refused"]
    _assert_one_line_error(run.proc, "was made for another morph (the target image differs",
                           "use --force")
    assert str(Path("a") / "morph" / "maps.npz") in run.proc.stderr
    assert not (run.out / "morph" / "morph.mp4").exists()
    assert not _files_under(run.out), _files_under(run.out)  # nothing at all, morph/ included


def test_maps_for_another_target_with_force(runs):
    run = _ok(runs["forced"])
    frames, _ = read_video(run.out / "morph" / "morph.mp4")
    assert len(frames) == 3
    for name in ("result.jpg", "maps.jpg"):
        assert (run.out / "morph" / name).is_file(), name


def test_maps_with_other_settings_are_refused(runs):
    run = runs["warp_scale"]
    _assert_one_line_error(run.proc, "was made for another morph", "warp_scale", "use --force")
    assert not _files_under(run.out)


def test_checkpoint_as_maps_is_refused(runs):
    run = runs["checkpoint"]
    _assert_one_line_error(run.proc, "holds no maps")
    assert not _files_under(run.out)


def test_random_file_as_maps_is_refused(runs):
    run = runs["random"]
    _assert_one_line_error(run.proc, "not a diffmorph maps file")
    assert not _files_under(run.out)


@pytest.mark.parametrize("flags, needle", [
    (["--force"], "--force only applies with --maps"),
    (["--maps", "whatever.npz", "--resume"], "--maps and --resume cannot be combined"),
])
def test_force_and_resume_usage_errors(tmp_path, flags, needle):
    proc = run_cli(["-s", TOY_A, "-t", TOY_B, "--size", 32, "-q", *flags, "-o", tmp_path / "out"])
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "usage:" in proc.stderr and f"diffmorph: error: {needle}" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- 4. H.264


def test_video_is_h264_yuv420p(runs):
    a = _ok(runs["a"])
    path = a.out / "morph" / "morph.mp4"
    frames, meta = read_video(path)
    assert len(frames) == A_STEPS
    assert meta["size"] == (256, 256)
    if "codec" in meta and "pix_fmt" in meta:
        assert "h264" in meta["codec"], meta
        assert meta["pix_fmt"].startswith("yuv420p"), meta
    else:  # an imageio-ffmpeg that does not report them: ask ffmpeg itself
        import imageio_ffmpeg

        probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                               capture_output=True, text=True)
        stream = [line for line in probe.stderr.splitlines() if "Video:" in line]
        assert stream and "h264" in stream[0] and "yuv420p" in stream[0], probe.stderr


# ----------------------------------------------------------------------------- 5. odd sizes


def test_odd_sizes(runs):
    run = _ok(runs["odd"])
    source, target = read_rgb(run.extra["source"]), read_rgb(run.extra["target"])
    assert source.shape == (21, 31, 3) and target.shape == (30, 40, 3)

    frames = _frames(run.out / "morph" / "frames")
    assert len(frames) == 4
    assert all(f.shape == (21, 31, 3) for f in frames)
    assert np.array_equal(frames[0], source)
    assert np.array_equal(frames[-1], cv2.resize(target, (31, 21), interpolation=cv2.INTER_AREA))

    count, size, _ = _read_gif(run.out / "morph" / "morph.gif")
    assert (count, size) == (4, (31, 21))

    video, meta = read_video(run.out / "morph" / "morph.mp4")
    assert len(video) == 4 and meta["size"] == (32, 22)
    first = video[0].astype(np.int16)
    # the padding replicates the last real column / row (H.264 + yuv420p: close, not exact)
    assert np.abs(first[:, 31] - first[:, 30]).max() <= 12
    assert np.abs(first[21, :] - first[20, :]).max() <= 12
    assert np.abs(first[:21, :31] - source.astype(np.int16)).mean() < 15  # the picture


# ----------------------------------------------------------------------------- 6. working render


def test_working_render(runs):
    a, run = _ok(runs["a"]), _ok(runs["working"])
    source = read_rgb(TOY_A)
    frames = _frames(run.out / "morph" / "frames")
    native = _frames(a.out / "morph" / "frames")
    assert len(frames) == len(native) == A_STEPS
    assert all(f.shape == source.shape for f in frames)
    assert np.abs(frames[0].astype(np.int16) - source).mean() < 6
    assert any(not np.array_equal(x, y) for x, y in zip(frames, native))


# ----------------------------------------------------------------------------- 7. boomerang


def test_boomerang(runs):
    run = _ok(runs["boomerang"])
    video, _ = read_video(run.out / "morph" / "morph.mp4")
    assert len(video) == 2 * 5 - 2
    frames = _frames(run.out / "morph" / "frames")
    assert len(frames) == 8
    for back, forward in ((5, 3), (6, 2), (7, 1)):
        assert np.array_equal(frames[back], frames[forward]), (back, forward)
    assert not np.array_equal(frames[4], frames[3])  # the turn is not repeated
    assert np.array_equal(frames[0], read_rgb(TOY_A))


# ----------------------------------------------------------------------------- 8. --frames-dir


def test_frames_dir(runs):
    run = _ok(runs["small"])
    folder = run.extra["frames_dir"]
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"frame_{i:05d}.png" for i in range(4)]
    assert all(f.shape == (48, 64, 3) for f in _frames(folder))
    assert not (run.out / "morph" / "frames").exists()


# ----------------------------------------------------------------------------- 9. --gif-max-side


def test_gif_max_side(runs):
    run = _ok(runs["small"])
    count, size, _ = _read_gif(run.out / "morph" / "morph.gif")
    assert (count, size) == (4, (16, 12))
    video, meta = read_video(run.out / "morph" / "morph.mp4")
    assert meta["size"] == (64, 48) and len(video) == 4


# ----------------------------------------------------------------------------- 10. default layout


def test_default_layout_snapshots(runs):
    a = _ok(runs["a"])
    names = sorted(p.name for p in (a.out / "train").iterdir())
    assert names == sorted(f"{d}_{n}.jpg" for d in ("a_to_b", "b_to_a") for n in (10, 12))
    for name in names:
        assert read_rgb(a.out / "train" / name).shape == (256, 256, 3), name
    for name in ("morph.mp4", "morph.gif", "result.jpg", "maps.jpg", "maps.npz", "checkpoint.npz"):
        assert (a.out / "morph" / name).is_file(), name


def test_preds_are_the_upsampled_maps(runs):
    from diffmorph.io import mapsfile
    from diffmorph.core.model import upsample_maps

    a = _ok(runs["a"])
    preds = np.load(a.out / "preds.npy")
    assert preds.shape == (1, SMALL_SIZE, SMALL_SIZE, 16) and preds.dtype == np.float32
    _, arrays = mapsfile.load(a.out / "morph" / "maps.npz")
    np.testing.assert_allclose(preds, upsample_maps(arrays["low"], SMALL_SIZE).numpy(), rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- 11. large input


def test_large_input_renders_at_full_size(runs):
    run = _ok(runs["large"])
    frames = sorted((run.out / "morph" / "frames").glob("frame_*.png"))
    assert [p.name for p in frames] == ["frame_00000.png", "frame_00001.png"]
    first = read_rgb(frames[0])
    assert first.shape == (LARGE_H, LARGE_W, 3)
    assert np.array_equal(first, read_rgb(run.extra["source"]))
    last = read_rgb(frames[1])
    assert np.array_equal(last, read_rgb(run.extra["target"]))


def test_large_input_peak_rss_is_bounded(runs):
    run = _ok(runs["large"])
    peak = run.extra["peak_rss"]
    assert peak is not None, run.proc.stdout[-2000:]
    print(f"peak RSS of the 3000x2000 run: {peak / 1e9:.2f} GB ({run.seconds:.1f} s)")
    assert peak < MAX_PEAK_RSS, f"peak RSS {peak / 1e9:.2f} GB >= {MAX_PEAK_RSS / 1e9:.1f} GB"
