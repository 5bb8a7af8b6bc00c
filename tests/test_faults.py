"""Faults: full disks, kills and interrupts never leave a half-written output.

Unit tests make the atomic writers of :mod:`diffmorph.io` fail midway; the CLI tests
run ``python morph.py`` (cwd = the repo root) and kill it with SIGKILL, SIGINT or
SIGTERM at chosen moments, then check every file left under the output folder.
"""

from __future__ import annotations

import builtins
import errno
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np

from diffmorph.errors import OutputError
import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
TOY_A = REPO / "images" / "toy_a.png"
TOY_B = REPO / "images" / "toy_b.png"
PREFIX = "diffmorph: error:"
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # "No space left on device"


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def part_files(folder: pathlib.Path) -> list[pathlib.Path]:
    return [p for p in pathlib.Path(folder).rglob("*") if ".part" in p.name]


# ----------------------------------------------------------------- atomic writes

class FullDisk:
    """A file handle that writes half of the first ``write`` and then fails with ENOSPC."""

    def __init__(self, handle):
        self._handle = handle

    def write(self, data):
        self._handle.write(bytes(data)[:max(1, len(data) // 2)])
        self._handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()
        return False

    def __getattr__(self, name):
        return getattr(self._handle, name)


def full_disk_open(fired: list, match=lambda path: True):
    """A replacement for ``open`` whose write handles (to names ``match`` accepts) fill the disk."""
    real_open = builtins.open

    def fake_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if any(flag in mode for flag in "wax") and match(pathlib.Path(os.fsdecode(file))):
            fired.append(file)
            return FullDisk(handle)
        return handle

    return fake_open


def _raise_enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


WRITERS = {
    "write_bytes": (".bin", lambda dio, path: dio.write_bytes(path, b"new content " * 5000)),
    "save_image_jpg": (".jpg", lambda dio, path: dio.save_image(path, np.full((64, 64, 3), 77, np.uint8))),
    "save_image_png": (".png", lambda dio, path: dio.save_image(path, np.full((64, 64, 3), 77, np.uint8))),
    "save_arrays": (".npz", lambda dio, path: dio.save_arrays(path, x=np.arange(50000), y=np.ones(3))),
    "save_npy": (".npy", lambda dio, path: dio.save_npy(path, np.arange(50000, dtype=np.float32))),
    "mapsfile_save": (".npz", lambda dio, path: __import__("diffmorph.io.mapsfile", fromlist=["save"]).save(
        path, {"format": "x"}, low=np.zeros((1, 4, 4, 16), np.float32))),
}


@pytest.mark.parametrize("fault", ["write", "fsync", "replace"])
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_atomic_write_disk_full(tmp_path, monkeypatch, writer, fault):
    import diffmorph.io.files as dio

    suffix, write = WRITERS[writer]
    dest = tmp_path / f"output{suffix}"
    dest.write_bytes(b"previous content")
    fired = []
    if fault == "write":
        monkeypatch.setattr(dio, "open", full_disk_open(fired), raising=False)
    elif fault == "fsync":
        monkeypatch.setattr(dio.os, "fsync", lambda fd: (fired.append(fd), _raise_enospc()))
    else:
        real_replace = os.replace
        monkeypatch.setattr(dio.os, "replace", lambda src, dst: (fired.append(dst), _raise_enospc())
                            if pathlib.Path(dst) == dest else real_replace(src, dst))
    with pytest.raises(OutputError) as info:
        write(dio, dest)
    assert fired, f"the {fault} fault was never reached (did io.py change how it writes?)"
    message = str(info.value)
    assert "No space left" in message and "\n" not in message, message
    assert dest.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == [dest.name]  # no .part file left


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit, RuntimeError])
def test_atomic_path_interrupted_block(tmp_path, exc):
    from diffmorph.io.files import atomic_path

    dest = tmp_path / "movie.mp4"
    dest.write_bytes(b"old")
    with pytest.raises(exc):
        with atomic_path(dest) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".")  # hidden temporary name
            tmp.write_bytes(b"half a vid")
            raise exc()
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["movie.mp4"]


def test_atomic_write_new_file_and_missing_folder(tmp_path):
    import diffmorph.io.files as dio

    dio.write_bytes(tmp_path / "fresh.bin", b"abc")
    assert (tmp_path / "fresh.bin").read_bytes() == b"abc"
    with pytest.raises(OutputError) as info:
        dio.write_bytes(tmp_path / "no_such_folder" / "x.bin", b"abc")
    assert "\n" not in str(info.value) and "no_such_folder" in str(info.value)


# ------------------------------------------------------------------- CLI helpers

def cli_env() -> dict:
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.pop("PYTHONPATH", None)
    return env


def _child_setup():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _preexec():
    """A child inherits an ignored SIGINT (e.g. pytest run as a background job) and Python then
    keeps ignoring it; only then reset it, so that the CLI gets KeyboardInterrupt as in a terminal.
    (preexec_fn is avoided otherwise: it is not safe with the threads TensorFlow starts.)"""
    return _child_setup if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else None


def start_morph(tmp_path, out, *extra) -> tuple[subprocess.Popen, pathlib.Path]:
    """Start ``python morph.py -s toy_a -t toy_b -q -o OUT EXTRA``; returns (process, stderr file)."""
    log = tmp_path / f"stderr_{time.monotonic_ns()}.txt"
    args = [sys.executable, "morph.py", "-s", str(TOY_A), "-t", str(TOY_B), "-q", "-o", str(out),
            *map(str, extra)]
    with open(log, "w") as err:
        proc = subprocess.Popen(args, cwd=str(REPO), env=cli_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, preexec_fn=_preexec())
    return proc, log


def wait_until(proc, condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the CLI exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def finish(proc, timeout: float = 90.0) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("the CLI did not stop after the signal")


def run_morph(out, *extra, timeout=240) -> subprocess.CompletedProcess:
    args = [sys.executable, "morph.py", "-s", str(TOY_A), "-t", str(TOY_B), "-q", "-o", str(out),
            *map(str, extra)]
    return subprocess.run(args, cwd=str(REPO), env=cli_env(), capture_output=True, text=True,
                          timeout=timeout)


def check_every_file(out: pathlib.Path) -> dict[str, int]:
    """Every file under ``out`` with a real name is complete; temporaries are hidden.

    Returns a count of the files checked by kind.
    """
    import imageio_ffmpeg
    from PIL import Image

    from diffmorph.io import mapsfile

    seen: dict[str, int] = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        if ".part" in path.name:
            assert path.name.startswith("."), f"temporary file with a visible name: {path}"
            seen["part"] = seen.get("part", 0) + 1
            continue
        assert not path.name.startswith("."), f"unexpected hidden file {path}"
        suffix = path.suffix.lower()
        if suffix == ".npz":
            meta, arrays = mapsfile.load(path)  # raises InputError if truncated
            assert arrays, path
        elif suffix in (".jpg", ".png", ".gif"):
            with Image.open(path) as image:
                image.load()
        elif suffix == ".npy":
            array = np.load(path, allow_pickle=False)
            assert array.ndim == 4 and np.isfinite(array).all(), path
        elif suffix == ".mp4":
            frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
            assert frames > 0, path
        else:
            pytest.fail(f"unexpected output file {path}")
        seen[suffix] = seen.get(suffix, 0) + 1
    return seen


# ------------------------------------------------------------- disk full, in-process

def test_disk_full_while_rendering_keeps_the_maps(tmp_path, monkeypatch, capsys):
    import diffmorph.io.files as dio
    from diffmorph import cli
    from diffmorph.io import mapsfile

    out = tmp_path / "out"
    fired = []
    monkeypatch.setattr(dio, "open", full_disk_open(fired, lambda p: p.name.startswith(".maps.jpg.")),
                        raising=False)
    previous_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        code = cli.main(["-s", str(TOY_A), "-t", str(TOY_B), "--size", "32", "-e", "2", "--steps", "2",
                         "-q", "--formats", "mp4", "-o", str(out)])
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
    err = capsys.readouterr().err
    assert fired, "maps.jpg was never written"
    assert code == 1, err
    assert "Traceback" not in err
    assert len(lines(err)) == 1, err
    line = lines(err)[0]
    assert line.startswith(PREFIX) and "No space left" in line and "maps.jpg" in line, line
    # the optimisation's result is safe: saved before rendering, and loadable
    meta, arrays = mapsfile.load(out / "morph" / "maps.npz")
    assert meta["steps_done"] == 2 and arrays["low"].shape[-1] == 16
    assert np.load(out / "preds.npy").shape == (1, 32, 32, 16)
    assert not (out / "morph" / "maps.jpg").exists()
    assert not (out / "morph" / "morph.mp4").exists()
    assert not part_files(out)


# ----------------------------------------------------------------------- kills

def test_sigkill_during_optimisation_leaves_no_truncated_file(tmp_path):
    from diffmorph.io import mapsfile

    out = tmp_path / "out"
    checkpoint = out / "morph" / "checkpoint.npz"
    proc, log = start_morph(tmp_path, out, "--size", "32", "-e", "100000", "--steps", "2", "--formats", "mp4")
    wait_until(proc, checkpoint.exists, "morph/checkpoint.npz exists")
    time.sleep(1.0)  # snapshots are written every 100 steps now: likely to hit one mid-write
    proc.kill()
    assert finish(proc) == -signal.SIGKILL
    seen = check_every_file(out)
    assert seen.get(".npz", 0) == 2 and seen.get(".jpg", 0) >= 2, seen
    meta, arrays = mapsfile.load(checkpoint)
    assert int(arrays["step"]) >= 10


def test_sigint_during_optimisation_then_resume(tmp_path):
    from diffmorph.io import mapsfile

    out = tmp_path / "out"
    checkpoint = out / "morph" / "checkpoint.npz"
    common = ["--size", "32", "--steps", "2", "--formats", "mp4"]
    proc, log = start_morph(tmp_path, out, *common, "-e", "100000")
    wait_until(proc, checkpoint.exists, "morph/checkpoint.npz exists")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    code = finish(proc)
    err = log.read_text()
    assert "Traceback" not in err, err
    assert code == 130, err
    assert len(lines(err)) == 1 and "--resume" in err, err
    check_every_file(out)
    meta, state = mapsfile.load(checkpoint)
    maps_meta, maps = mapsfile.load(out / "morph" / "maps.npz")
    reached = int(state["step"])
    assert reached >= 10 and maps_meta["steps_done"] == reached
    assert np.isfinite(maps["low"]).all()
    assert not (out / "morph" / "morph.mp4").exists()

    proc = run_morph(out, *common, "-e", reached + 3, "--resume")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert f"resuming at step {reached} of {reached + 3}" in proc.stderr, proc.stderr
    meta, state = mapsfile.load(checkpoint)
    assert int(state["step"]) == reached + 3
    assert mapsfile.load(out / "morph" / "maps.npz")[0]["steps_done"] == reached + 3
    seen = check_every_file(out)
    assert seen.get(".mp4") == 1 and "part" not in seen, seen


def test_sigterm_during_render(tmp_path):
    import imageio_ffmpeg

    from diffmorph.io import mapsfile

    out = tmp_path / "out"
    frames = out / "morph" / "frames"
    video = out / "morph" / "morph.mp4"
    proc, log = start_morph(tmp_path, out, "--steps", "400", "--size", "32", "-e", "1",
                            "--formats", "mp4,frames")

    def rendering():
        return frames.is_dir() and len(list(frames.glob("frame_*.png"))) >= 5

    wait_until(proc, rendering, "some frames are rendered")
    if video.exists():
        pytest.fail("the render finished before the test could interrupt it")
    proc.terminate()
    code = finish(proc)
    err = log.read_text()
    assert "Traceback" not in err, err
    assert code == 128 + signal.SIGTERM, err
    assert not video.exists() or imageio_ffmpeg.count_frames_and_secs(str(video))[0] > 0
    seen = check_every_file(out)
    assert seen.get(".png", 0) >= 5, seen
    assert not list(video.parent.glob(".morph.mp4*")), "the partial video was not removed"
    meta, arrays = mapsfile.load(out / "morph" / "maps.npz")  # saved before the render started
    assert meta["steps_done"] == 1 and "low" in arrays


# ------------------------------------------------------------------------- NaN

def test_non_finite_loss_is_one_line(tmp_path):
    out = tmp_path / "out"
    proc = run_morph(out, "--size", "32", "-e", "5", "--steps", "2", "--formats", "mp4",
                     "-m", "1e38", "-a", "1e38")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stderr
    assert len(lines(proc.stderr)) == 1, proc.stderr
    line = lines(proc.stderr)[0]
    assert line.startswith(PREFIX) and "scales" in line and "1e+38" in line, line
    assert not (out / "morph" / "morph.mp4").exists()
    assert not (out / "preds.npy").exists()
    check_every_file(out)
    assert not part_files(out)


def test_huge_warp_scale_is_one_line(tmp_path):
    proc = run_morph(tmp_path / "out", "--size", "32", "-e", "5", "--steps", "2", "--formats", "mp4",
                     "-w", "1e38")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (1, 2), proc.stderr
    assert len(lines(proc.stderr)) == 1, proc.stderr
