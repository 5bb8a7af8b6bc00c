"""Faults: full disks, kills, interrupts and divergence never leave a half-written output.

Unit tests make the atomic writers of :mod:`diffmorph.io` fail midway. The command is
then called in-process (``run_cli``) with a fault injected into one phase: Ctrl-C or
SIGTERM (a monkeypatched function raises KeyboardInterrupt or sends the process
SIGTERM, which ``main`` turns into KeyboardInterrupt and whose old handler it
restores), a full disk (ENOSPC in the middle of a file), a NaN on the last train
step, a folder locked by another run. Each test checks the exit status, the one line
on stderr and every file left: the previous set byte for byte, the checkpoint, no
temporary files. Two tests use real processes and real signals: SIGINT during
optimisation (then ``--resume``) and SIGKILL while rendering.
"""

from __future__ import annotations

import builtins
import errno
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import (
    REPO,
    SMALL_SIZE,
    TINY,
    TOY_A,
    TOY_B,
    assert_one_line_error,
    cli_env,
    file_bytes,
    files_under,
    maps_low,
    part_files,
    read_video,
    rerender_args,
    run_cli,
)
from diffmorph.errors import OutputError

MAPS = "morph/maps.npz"  # a run's maps file, below its output folder
ENOSPC = os.strerror(errno.ENOSPC)  # "No space left on device"
# the shared rendered_run's optimisation: a run with these flags makes the same maps
RENDERED = ["--size", SMALL_SIZE, "-e", 12, "--seed", 0, "--plain"]


# ----------------------------------------------------------------- atomic writes


class FullDisk:
    """A file handle that writes half of the first ``write`` and then fails with ENOSPC."""

    def __init__(self, handle):
        self._handle = handle

    def write(self, data):
        self._handle.write(bytes(data)[: max(1, len(data) // 2)])
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
    "mapsfile_save": (
        ".npz",
        lambda dio, path: __import__("diffmorph.io.mapsfile", fromlist=["save"]).save(
            path, {"format": "x"}, low=np.zeros((1, 4, 4, 16), np.float32)
        ),
    ),
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
        monkeypatch.setattr(
            dio.os,
            "replace",
            lambda src, dst: (
                (fired.append(dst), _raise_enospc()) if pathlib.Path(dst) == dest else real_replace(src, dst)
            ),
        )
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
    with pytest.raises(exc), atomic_path(dest) as tmp:
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


# -------------------------------------------------------------- helpers for the command


def copy_of(rendered_run, tmp_path) -> pathlib.Path:
    """A writable copy of the shared complete run's output folder."""
    out = tmp_path / "out"
    shutil.copytree(rendered_run[1], out)
    return out


def run_keeping_handler(args) -> object:
    """``run_cli(args)`` with a sentinel SIGTERM handler installed; asserts ``main`` restored it."""

    def sentinel(signum, frame):
        raise AssertionError("the test's own SIGTERM handler ran: main() did not install its handler")

    previous = signal.signal(signal.SIGTERM, sentinel)
    try:
        run = run_cli(args)
        assert signal.getsignal(signal.SIGTERM) is sentinel, "main() did not restore the SIGTERM handler"
    finally:
        signal.signal(signal.SIGTERM, previous)
    return run


def interrupt(monkeypatch, owner, name: str, after: int, how: str) -> list:
    """Replace ``owner.name`` so that its call number ``after + 1`` is interrupted, once.

    ``how``: ``"ctrl-c"`` raises KeyboardInterrupt; ``"sigterm"`` sends this process
    SIGTERM (main's handler raises KeyboardInterrupt there). Returns the list of calls.
    """
    real = getattr(owner, name)
    calls = []

    def injected(*args, **kwargs):
        calls.append(1)
        if len(calls) == after + 1:
            if how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
                pytest.fail("SIGTERM did not interrupt the run")
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, injected)
    return calls


def full_disk_at(monkeypatch, needle: str, skip: int = 0) -> list:
    """``open`` for writing a file whose name holds ``needle`` writes half its data, then fails with ENOSPC.

    The first ``skip`` such files are written normally. Returns the names that failed.
    """
    real_open = builtins.open
    seen, failed = [], []

    def fake_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        name = pathlib.Path(os.fsdecode(file)).name if isinstance(file, (str, bytes, os.PathLike)) else ""
        if any(flag in mode for flag in "wax") and needle in name:
            seen.append(name)
            if len(seen) > skip:
                failed.append(name)
                return FullDisk(handle)
        return handle

    monkeypatch.setattr(builtins, "open", fake_open)
    return failed


def set_files(out) -> dict[str, bytes]:
    """The published set of a morph folder (not the work state: snapshots and checkpoint), by bytes."""
    return {
        name: data
        for name, data in file_bytes(out).items()
        if not name.startswith("train/") and name != "morph/checkpoint.npz"
    }


def interrupted_at(step: int, checkpoint) -> str:
    """The line of a Ctrl-C during optimisation, after ``step`` train steps."""
    return (
        f"diffmorph: interrupted at train step {step}; checkpoint saved in {checkpoint}; "
        "run the same command with --resume to continue"
    )


# ------------------------------------------------------------- Ctrl-C / SIGTERM, in-process


HOWS = ["ctrl-c", "sigterm"]


@pytest.mark.parametrize("how", HOWS)
def test_interrupt_at_startup(tmp_path, monkeypatch, how):
    """While TensorFlow loads: nothing written at all."""
    import diffmorph.app.morph as app_morph

    out = tmp_path / "out"
    calls = interrupt(monkeypatch, app_morph, "import_tensorflow_quietly", 0, how)
    run = run_keeping_handler(["-s", TOY_A, "-t", TOY_B, *TINY, "-o", out])
    assert calls, "the injection was never reached"
    assert run.returncode == 130, run.stderr
    assert run.lines == ["diffmorph: interrupted; nothing was written"], run.stderr
    assert files_under(out) == []


@pytest.mark.parametrize("how", HOWS)
def test_interrupt_before_the_first_train_step(tmp_path, monkeypatch, how):
    from diffmorph.core.optimise import Trainer

    out = tmp_path / "out"
    interrupt(monkeypatch, Trainer, "step", 0, how)
    run = run_keeping_handler(["-s", TOY_A, "-t", TOY_B, *TINY, "-o", out])
    assert run.returncode == 130, run.stderr
    assert run.lines == ["diffmorph: interrupted before the first train step; nothing was saved"], run.stderr
    assert files_under(out) == []  # no checkpoint, no snapshot, no output
    assert not part_files(out)


@pytest.mark.slow
def test_sigterm_during_optimisation_then_resume_gives_the_uninterrupted_maps(tmp_path, monkeypatch, rendered_run):
    """SIGTERM at step 5 of 12 saves a checkpoint (a real SIGINT is the subprocess test below); resumed,
    the run ends with the maps of the shared run's uninterrupted 12 steps."""
    from diffmorph.core.optimise import Trainer
    from diffmorph.io import mapsfile

    out = tmp_path / "out"
    checkpoint = out / "morph" / "checkpoint.npz"
    args = ["-s", TOY_A, "-t", TOY_B, *RENDERED, "--steps", 3, "-q", "--formats", "mp4", "-o", out]
    with monkeypatch.context() as patch:
        interrupt(patch, Trainer, "step", 5, "sigterm")  # steps 1..5 done, the 6th interrupted
        run = run_keeping_handler(args)
    assert run.returncode == 130, run.stderr
    assert run.lines == [interrupted_at(5, checkpoint)], run.stderr
    assert files_under(out) == ["morph/checkpoint.npz"]  # no snapshot yet (the first is at 10), no output
    meta, state = mapsfile.load_checkpoint(checkpoint)
    assert int(state["step"]) == 5 and meta["kind"] == "checkpoint" and meta["train_steps"] == 12

    run = run_cli([*args, "--resume"])
    assert run.returncode == 0, run.stderr
    assert run.lines == ["diffmorph: resuming at train step 5 of 12"], run.stderr
    np.testing.assert_allclose(
        maps_low(out / "morph" / "maps.npz"), maps_low(rendered_run[1] / "morph" / "maps.npz"), rtol=0, atol=1e-6
    )
    assert sorted(p.name for p in (out / "train").iterdir()) == [
        "a_to_b_10.jpg",
        "a_to_b_12.jpg",
        "b_to_a_10.jpg",
        "b_to_a_12.jpg",
    ]
    assert len(read_video(out / "morph" / "morph.mp4")[0]) == 3
    assert not part_files(out)


def _render_target():
    from diffmorph.core.render import FrameRenderer

    return FrameRenderer, "render", 2  # the third frame


def _mp4_target():
    from diffmorph.io.video import Mp4Writer

    return Mp4Writer, "close", 0  # finishing the video


def _gif_target():
    from diffmorph.io.video import GifWriter

    return GifWriter, "close", 0  # encoding the GIF


def _publish_target():
    from diffmorph.io import outputs

    return outputs, "_move", 3  # the fourth rename while publishing the set


WRITING_PHASES = {
    "rendering": _render_target,
    "encoding-mp4": _mp4_target,
    "encoding-gif": _gif_target,
    "publishing": _publish_target,
}


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("phase", sorted(WRITING_PHASES))
def test_interrupt_while_writing_keeps_the_previous_set(tmp_path, monkeypatch, rendered_run, phase, how):
    """A re-render (--maps) over a complete set, interrupted while writing: the previous set, byte for byte."""
    out = copy_of(rendered_run, tmp_path)
    before = file_bytes(out)
    owner, name, after = WRITING_PHASES[phase]()
    calls = interrupt(monkeypatch, owner, name, after, how)
    run = run_keeping_handler(rerender_args(out / MAPS, out, "--steps", 4, "--formats", "mp4,gif,frames"))
    assert len(calls) > after, "the injection was never reached"
    assert run.returncode == 130, run.stderr
    assert run.lines == ["diffmorph: interrupted while writing the outputs; the previous outputs are unchanged"], (
        run.stderr
    )
    assert file_bytes(out) == before
    assert not part_files(out)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["ctrl-c", "disk-full"])
def test_failure_while_writing_after_optimising_then_resume(tmp_path, monkeypatch, fault):
    """Ctrl-C while rendering, or a full disk while writing maps.jpg, after optimising: the optimised
    maps are kept in the checkpoint, and --resume writes the outputs without optimising again."""
    from diffmorph.core.optimise import Trainer
    from diffmorph.core.render import FrameRenderer
    from diffmorph.io import mapsfile

    out = tmp_path / "out"
    checkpoint = out / "morph" / "checkpoint.npz"
    args = ["-s", TOY_A, "-t", TOY_B, *TINY, "-o", out]
    with monkeypatch.context() as patch:
        if fault == "ctrl-c":
            interrupt(patch, FrameRenderer, "render", 1, "ctrl-c")
        else:
            failed = full_disk_at(patch, "maps.jpg.part-")
        run = run_keeping_handler(args)
    kept = f"the optimised maps are kept in {checkpoint}"
    if fault == "ctrl-c":
        assert run.returncode == 130, run.stderr
        assert run.lines == [
            f"diffmorph: interrupted while writing the outputs; the previous outputs are unchanged; "
            f"{kept}; run the same command with --resume to continue"
        ], run.stderr
    else:
        assert failed, "maps.jpg was never written"
        line = assert_one_line_error(run, 1, "maps.jpg", ENOSPC)
        assert line.endswith(f"{ENOSPC}; {kept} (resume with --resume to write the outputs)"), line
    assert files_under(out) == ["morph/checkpoint.npz", "train/a_to_b_3.jpg", "train/b_to_a_3.jpg"]
    assert not part_files(out)
    assert int(mapsfile.load_checkpoint(checkpoint)[1]["step"]) == 3

    steps = []
    monkeypatch.setattr(Trainer, "step", lambda self: steps.append(1) or pytest.fail("optimised again"))
    run = run_cli([*args, "--resume"])
    assert run.returncode == 0, run.stderr
    assert run.lines == ["diffmorph: resuming at train step 3 of 3"], run.stderr
    assert steps == []
    assert mapsfile.load_maps(out / "morph" / "maps.npz").meta["steps_done"] == 3
    assert len(read_video(out / "morph" / "morph.mp4")[0]) == 3
    assert not part_files(out)
    if fault == "disk-full":
        assert ".part" not in line, f"the message names a temporary file, not the output: {line}"


# --------------------------------------------------------------------- disk full, in-process


def test_disk_full_while_writing_the_gif_keeps_the_previous_set(tmp_path, monkeypatch, rendered_run):
    """ENOSPC half-way through the GIF of a re-render with other frames: nothing of the new set is published."""
    out = copy_of(rendered_run, tmp_path)
    before = file_bytes(out)
    failed = full_disk_at(monkeypatch, "morph.gif.part-")  # the GIF's temporary file
    run = run_cli(rerender_args(out / MAPS, out, "--steps", 8, "--formats", "mp4,gif"))
    assert failed, "the GIF was never written"
    line = assert_one_line_error(run, 1, "morph.gif", ENOSPC)
    assert file_bytes(out) == before
    assert not part_files(out)
    assert ".part" not in line, f"the message names a temporary file, not the output: {line}"


@pytest.mark.slow
def test_disk_full_while_writing_a_snapshot(tmp_path, monkeypatch):
    out = tmp_path / "out"
    failed = full_disk_at(monkeypatch, "a_to_b_10.jpg.part-")
    run = run_cli(["-s", TOY_A, "-t", TOY_B, "--size", 32, "-e", 12, "--steps", 2, "--plain", "-q", "-o", out])
    assert failed, "the snapshot was never written"
    assert_one_line_error(run, 1, f"cannot write {out / 'train' / 'a_to_b_10.jpg'}: {ENOSPC}")
    assert files_under(out) == []  # no half snapshot, no checkpoint of a step without its snapshots, no output
    assert not part_files(out)


@pytest.mark.slow
def test_disk_full_while_writing_the_checkpoint_then_resume(tmp_path, monkeypatch, rendered_run):
    """The step-12 checkpoint fails: the step-10 one is intact, and --resume from it gives the same maps."""
    from diffmorph.io import mapsfile

    out = tmp_path / "out"
    args = ["-s", TOY_A, "-t", TOY_B, *RENDERED, "--steps", 3, "-q", "--formats", "mp4", "-o", out]
    with monkeypatch.context() as patch:
        failed = full_disk_at(patch, "checkpoint.npz.part-", skip=1)  # the first (step 10) is written
        run = run_cli(args)
    assert len(failed) == 1, failed
    assert_one_line_error(run, 1, f"cannot write {out / 'morph' / 'checkpoint.npz'}: {ENOSPC}")
    assert files_under(out) == [
        "morph/checkpoint.npz",
        "train/a_to_b_10.jpg",
        "train/a_to_b_12.jpg",
        "train/b_to_a_10.jpg",
        "train/b_to_a_12.jpg",
    ]
    assert not part_files(out)
    assert int(mapsfile.load_checkpoint(out / "morph" / "checkpoint.npz")[1]["step"]) == 10

    run = run_cli([*args, "--resume"])
    assert run.returncode == 0, run.stderr
    assert run.lines == ["diffmorph: resuming at train step 10 of 12"], run.stderr
    np.testing.assert_allclose(
        maps_low(out / "morph" / "maps.npz"), maps_low(rendered_run[1] / "morph" / "maps.npz"), rtol=0, atol=1e-6
    )


# --------------------------------------------------------------------------- divergence


@pytest.mark.slow
def test_nan_on_the_last_train_step_publishes_nothing(tmp_path, monkeypatch, rendered_run):
    from diffmorph.core.optimise import Trainer

    out = copy_of(rendered_run, tmp_path)
    before = set_files(out)
    real = Trainer.maps_low

    def diverged(self):
        low = real(self)
        return np.full_like(low, np.nan) if self.step_count >= 3 else low

    monkeypatch.setattr(Trainer, "maps_low", diverged)
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *TINY, "--formats", "mp4,gif,frames", "-o", out])
    assert_one_line_error(run, 1, "diverged at train step 3")
    assert set_files(out) == before  # the previous set, byte for byte
    assert not (out / "train" / "a_to_b_3.jpg").exists()  # no snapshot of non-finite maps
    assert not part_files(out)


def test_huge_warp_scale_is_one_line(tmp_path):
    """-w 1e38 is a valid setting whose optimisation diverges: exit 1, one line, nothing published."""
    out = tmp_path / "out"
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *TINY, "-e", 5, "-w", "1e38", "-o", out])
    assert_one_line_error(run, 1, "warp")
    assert [name for name in files_under(out) if not name.startswith(("train/", "morph/checkpoint"))] == []
    assert not part_files(out)


# ------------------------------------------------------------------------- folder lock


def test_second_run_on_a_locked_folder_is_refused(tmp_path, rendered_run):
    from diffmorph.io.outputs import FolderLock

    out = copy_of(rendered_run, tmp_path)
    before = file_bytes(out)
    with FolderLock(out):  # another run is writing there
        run = run_cli(rerender_args(out / MAPS, out, "--steps", 3))
    assert_one_line_error(run, 1, f"another diffmorph run is writing to {out}")
    assert file_bytes(out) == before
    run = run_cli(rerender_args(out / MAPS, out, "--steps", 3))  # once it is done, the same command works
    assert run.returncode == 0, run.stderr
    assert len(read_video(out / "morph" / "morph.mp4")[0]) == 3


# ------------------------------------------------------------------ real signals (subprocesses)


# A child started while SIGINT is ignored (pytest run as a background job) inherits that and
# Python then keeps ignoring it; such a child restores Python's own handler first, as in a terminal.
# (preexec_fn is avoided: it is not safe in a process with TensorFlow's threads.)
RESTORE_SIGINT = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def start_morph(tmp_path, *args) -> tuple[subprocess.Popen, pathlib.Path]:
    """Start ``python morph.py ARGS`` (a user's shell environment); returns (process, stderr file)."""
    log = tmp_path / f"stderr_{time.monotonic_ns()}.txt"
    shim = ["-c", RESTORE_SIGINT] if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else []
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, *shim, str(REPO / "morph.py"), *map(str, args)],
            cwd=str(REPO),
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    return proc, log


def wait_until(proc, condition, what: str, timeout: float = 120.0) -> None:
    """Poll ``condition`` (every 10 ms) until it holds; fail if the process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the command exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def finish(proc, timeout: float = 120.0) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("the command did not stop after the signal")


def check_every_file(out: pathlib.Path) -> dict[str, int]:
    """Every file under ``out`` with a visible name is complete (it loads); temporaries are hidden.

    Returns a count of the files checked, by suffix ("hidden" for temporaries).
    """
    import imageio_ffmpeg
    from PIL import Image

    from diffmorph.io import mapsfile

    seen: dict[str, int] = {}
    for name in files_under(out):
        path = out / name
        if any(part.startswith(".") for part in pathlib.Path(name).parts):
            assert ".part" in name, f"unexpected hidden file {name}"
            seen["hidden"] = seen.get("hidden", 0) + 1
            continue
        suffix = path.suffix.lower()
        if name.endswith("checkpoint.npz"):
            mapsfile.load_checkpoint(path)  # raises InputError if truncated
        elif suffix == ".npz":
            mapsfile.load_maps(path)
        elif suffix in (".jpg", ".png", ".gif"):
            with Image.open(path) as image:
                image.load()
        elif suffix == ".npy":
            array = np.load(path, allow_pickle=False)
            assert array.ndim == 4 and np.isfinite(array).all(), name
        elif suffix == ".mp4":
            assert imageio_ffmpeg.count_frames_and_secs(str(path))[0] > 0, name
        else:
            pytest.fail(f"unexpected output file {name}")
        seen[suffix] = seen.get(suffix, 0) + 1
    return seen


@pytest.mark.slow
def test_real_sigint_during_optimisation_then_resume(tmp_path):
    from diffmorph.io import mapsfile

    out = tmp_path / "out"
    checkpoint = out / "morph" / "checkpoint.npz"
    common = ["-s", TOY_A, "-t", TOY_B, "--size", 32, "--steps", 2, "--formats", "mp4", "--plain", "-q", "-o", out]
    proc, log = start_morph(tmp_path, *common, "-e", 100000)
    wait_until(proc, checkpoint.exists, "morph/checkpoint.npz exists")  # after train step 10
    proc.send_signal(signal.SIGINT)
    code = finish(proc)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert code == 130, lines
    reached = int(mapsfile.load_checkpoint(checkpoint)[1]["step"])
    assert reached >= 10
    assert lines == [interrupted_at(reached, checkpoint)]
    seen = check_every_file(out)
    assert ".mp4" not in seen and "hidden" not in seen, seen  # nothing published, no temporary left

    run = run_cli([*common, "-e", reached + 3, "--resume"])
    assert run.returncode == 0, run.stderr
    assert run.lines == [f"diffmorph: resuming at train step {reached} of {reached + 3}"], run.stderr
    assert int(mapsfile.load_checkpoint(checkpoint)[1]["step"]) == reached + 3
    assert mapsfile.load_maps(out / "morph" / "maps.npz").meta["steps_done"] == reached + 3
    seen = check_every_file(out)
    assert seen.get(".mp4") == 1 and "hidden" not in seen, seen


@pytest.mark.slow
def test_real_sigkill_while_rendering_leaves_the_previous_set(tmp_path, rendered_run):
    """SIGKILL while frames are being written over a complete set: the set stays, byte for byte; the
    killed run's temporaries are hidden, and the next run removes them."""
    out = copy_of(rendered_run, tmp_path)
    before = file_bytes(out)

    def rendering():
        return len(list((out / "morph").glob(".frames.part-*/frame_*.png"))) >= 3

    proc, _ = start_morph(tmp_path, *rerender_args(out / MAPS, out, "--steps", 10000, "--formats", "frames"))
    wait_until(proc, rendering, "some frames are rendered")
    proc.kill()
    assert finish(proc) == -signal.SIGKILL
    after = file_bytes(out)
    assert {name: after[name] for name in before} == before
    assert all(".part" in name for name in set(after) - set(before)), sorted(set(after) - set(before))
    check_every_file(out)

    run = run_cli(rerender_args(out / MAPS, out, "--steps", 3, "--formats", "frames"))
    assert run.returncode == 0, run.stderr
    assert not part_files(out)
    assert sorted(p.name for p in (out / "morph" / "frames").iterdir()) == [f"frame_{i:05d}.png" for i in range(3)]
