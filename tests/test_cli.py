"""Tests of the command line (``morph.py`` / ``diffmorph.cli``): outputs, flags, errors.

The end-to-end run (``cli_run`` in conftest.py) is one subprocess shared by the output
assertions; flag parsing uses ``build_parser()`` in-process; exit codes and stderr of
bad invocations are checked on real subprocesses.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, SMALL_SIZE, TOY_A, TOY_B, make_test_image, read_rgb, read_video, run_cli, write_rgb
from diffmorph import __version__
from diffmorph.cli import build_parser, main, make_config

E2E_STEPS = 12



def _assert_clean_failure(proc, code=2):
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert proc.stderr.strip(), "expected a message on stderr"
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "error" in proc.stderr.lower(), proc.stderr


def _in_process(argv):
    """``cli.main(argv)`` in this process, restoring the SIGTERM handler it installs."""
    saved = signal.getsignal(signal.SIGTERM)
    try:
        return main([str(a) for a in argv])
    finally:
        signal.signal(signal.SIGTERM, saved)


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def e2e(cli_run):
    proc, out = cli_run
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return out


def test_e2e_files_exist(e2e):
    expected = ["train/a_to_b_10.jpg", "train/b_to_a_10.jpg", "train/a_to_b_12.jpg", "train/b_to_a_12.jpg",
                "preds.npy", "morph/morph.mp4", "morph/morph.gif", "morph/result.jpg", "morph/maps.jpg",
                "morph/maps.npz"]
    for name in expected:
        assert (e2e / name).is_file(), name
        assert (e2e / name).stat().st_size > 0, name
    # only the snapshot steps (10 and the last, 12) are written
    assert sorted(p.name for p in (e2e / "train").iterdir()) == [
        "a_to_b_10.jpg", "a_to_b_12.jpg", "b_to_a_10.jpg", "b_to_a_12.jpg"]
    # no temporary files left behind by the atomic writers
    leftovers = [p for p in e2e.rglob("*") if ".part" in p.name]
    assert leftovers == []


def test_e2e_preds(e2e):
    preds = np.load(e2e / "preds.npy")
    assert preds.dtype == np.float32
    assert preds.shape == (1, SMALL_SIZE, SMALL_SIZE, 16)
    assert np.isfinite(preds).all()
    assert np.abs(preds).max() > 0  # optimised maps, not zeros


def test_e2e_maps_npz_holds_the_final_maps(e2e):
    import tensorflow as tf

    from diffmorph.io import mapsfile

    meta, arrays = mapsfile.load(e2e / "morph" / "maps.npz")
    assert meta["size"] == SMALL_SIZE and meta["steps_done"] == 12
    assert arrays["low"].shape == (1, 84, 84, 16)
    preds = np.load(e2e / "preds.npy")
    np.testing.assert_allclose(tf.image.resize(arrays["low"], [SMALL_SIZE, SMALL_SIZE]).numpy(), preds,
                               atol=1e-6)


def test_e2e_images(e2e):
    for name in ("a_to_b_10", "b_to_a_10", "a_to_b_12", "b_to_a_12"):
        assert read_rgb(e2e / "train" / f"{name}.jpg").shape == (256, 256, 3), name
    # strip: 3 rows of S, one column for 12 steps (frame 9)
    assert read_rgb(e2e / "morph" / "result.jpg").shape == (3 * SMALL_SIZE, SMALL_SIZE, 3)
    maps = read_rgb(e2e / "morph" / "maps.jpg")
    assert maps.shape == (2 * SMALL_SIZE, 3 * SMALL_SIZE, 3)
    # the flow tiles' blue channel is the constant 0 -> 127 (JPEG may move it slightly)
    assert abs(int(np.median(maps[:, 2 * SMALL_SIZE:, 2])) - 127) <= 3


def test_e2e_snapshots_resemble_the_other_image(e2e, toy_pair):
    """After 12 small steps the A->B snapshot is still mostly A (and B->A mostly B)."""
    a, b = toy_pair
    a2b = read_rgb(e2e / "train" / "a_to_b_12.jpg").astype(int)
    b2a = read_rgb(e2e / "train" / "b_to_a_12.jpg").astype(int)
    assert np.abs(a2b - a).mean() < np.abs(a2b - b).mean()
    assert np.abs(b2a - b).mean() < np.abs(b2a - a).mean()


def test_e2e_video(e2e, toy_pair):
    a, b = toy_pair
    frames, meta = read_video(e2e / "morph" / "morph.mp4")
    assert meta["codec"] == "h264"
    assert meta["fps"] == pytest.approx(45)
    assert len(frames) == E2E_STEPS
    assert all(f.shape == (256, 256, 3) for f in frames)
    assert np.abs(frames[0].astype(int) - a).mean() < 3
    assert np.abs(frames[-1].astype(int) - b).mean() < 3
    middle = frames[E2E_STEPS // 2].astype(int)
    assert np.abs(middle - a).mean() > 3 and np.abs(middle - b).mean() > 3


def test_e2e_gif(e2e):
    with Image.open(e2e / "morph" / "morph.gif") as gif:
        assert gif.n_frames == E2E_STEPS
        assert gif.size == (256, 256)
        assert gif.info["loop"] == 0
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
    assert durations == [round(100 / 45) * 10] * E2E_STEPS  # 20 ms


def test_default_output_dir_is_cwd(tmp_path, monkeypatch):
    """Without -o the outputs land in the current directory, as in the original."""
    write_rgb(tmp_path / "a.png", make_test_image(40, 30, seed=0))
    write_rgb(tmp_path / "b.png", make_test_image(40, 30, seed=1))
    monkeypatch.chdir(tmp_path)
    code = _in_process(["-s", "a.png", "-t", "b.png", "--size", 32, "-e", 2, "--steps", 3, "--seed", 0, "-q"])
    assert code == 0
    for name in ("train/a_to_b_2.jpg", "train/b_to_a_2.jpg", "preds.npy", "morph/morph.mp4",
                 "morph/morph.gif", "morph/result.jpg", "morph/maps.jpg"):
        assert (tmp_path / name).is_file(), name
    assert read_rgb(tmp_path / "train" / "a_to_b_2.jpg").shape == (30, 40, 3)
    assert np.load(tmp_path / "preds.npy").shape == (1, 32, 32, 16)
    # fewer than 10 frames: the strip holds the last frame only
    assert read_rgb(tmp_path / "morph" / "result.jpg").shape == (3 * 32, 32, 3)


def test_non_finite_loss_is_a_clean_failure(tmp_path, capsys):
    code = _in_process(["-s", TOY_A, "-t", TOY_B, "--size", 32, "-e", 3, "--steps", 2, "--seed", 0, "-q",
                        "--plain", "-a", "1e38", "-m", "1e38", "-o", tmp_path / "out"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "error" in err and "scale" in err and "1e+38" in err
    assert not (tmp_path / "out" / "preds.npy").exists()
    assert not (tmp_path / "out" / "morph" / "morph.mp4").exists()


def test_out_of_range_seed_is_a_usage_error(tmp_path):
    proc = run_cli(["-s", TOY_A, "-t", TOY_B, "--size", 32, "-e", 1, "--steps", 2, "-q",
                    "--seed", 2**63, "-o", tmp_path / "out"])
    assert "Traceback" not in proc.stderr and "Exception encountered" not in proc.stderr, proc.stderr[-800:]
    assert proc.returncode == 2, proc.stderr[-800:]
    assert "--seed" in proc.stderr


def test_different_sizes_are_resized_to_the_source(tmp_path):
    """Also runs morph.py from another directory with relative paths."""
    write_rgb(tmp_path / "src.png", make_test_image(48, 40, seed=0))  # 48 wide, 40 high
    write_rgb(tmp_path / "tgt.png", make_test_image(30, 50, seed=1))
    out = tmp_path / "out"
    proc = run_cli(["-s", "src.png", "-t", "tgt.png", "--size", SMALL_SIZE, "-e", 2, "--steps", 3, "--seed", 0,
                    "-q", "-o", "out"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    notices = [line for line in proc.stderr.splitlines() if "resiz" in line.lower()]
    assert len(notices) == 1, proc.stderr
    assert "30x50" in notices[0] and "48x40" in notices[0]
    frames, meta = read_video(out / "morph" / "morph.mp4")
    assert meta["size"] == (48, 40)
    assert len(frames) == 3
    np.testing.assert_array_equal(np.array([f.shape for f in frames]), [[40, 48, 3]] * 3)
    assert read_rgb(out / "train" / "b_to_a_2.jpg").shape == (40, 48, 3)
    with Image.open(out / "morph" / "morph.gif") as gif:
        assert gif.size == (48, 40) and gif.n_frames == 3


# ----------------------------------------------------------------------------- flag parsing


def _parse(*argv):
    return build_parser().parse_args(["-s", "a.png", "-t", "b.png", *map(str, argv)])


@pytest.mark.parametrize("argv, expected", [
    ([], False),
    (["-add_first", "False"], False),
    (["-add_first", "false"], False),
    (["-add_first", "0"], False),
    (["--add_first", "no"], False),
    (["-add_first", "True"], True),
    (["-add_first", "1"], True),
    (["--add_first", "yes"], True),
    (["--add_first"], True),  # the notebook's bare flag
    (["-add_first"], True),
])
def test_add_first_parsing(argv, expected):
    assert _parse(*argv).add_first is expected


def test_bare_add_first_before_another_flag():
    args = build_parser().parse_args(["--add_first", "-s", "a.png", "-t", "b.png"])
    assert args.add_first is True and args.source == "a.png"


def test_add_first_garbage_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        _parse("-add_first", "maybe")
    assert info.value.code == 2
    assert "maybe" in capsys.readouterr().err


def test_add_first_garbage_subprocess():
    proc = run_cli(["-s", TOY_A, "-t", TOY_B, "-add_first", "maybe"])
    _assert_clean_failure(proc)
    assert "add_first" in proc.stderr


def test_original_short_flags():
    args = _parse("-e", 7, "-a", 0.1, "-m", 0.2, "-w", 0.3, "--fps", 30, "--steps", 20)
    config = make_config(args, build_parser())
    assert (config.epochs, config.add_scale, config.mult_scale, config.warp_scale) == (7, 0.1, 0.2, 0.3)
    assert (config.fps, config.steps) == (30, 20)
    assert (args.source, args.target) == ("a.png", "b.png")


def test_original_long_flags():
    args = build_parser().parse_args(
        ["--source", "x.png", "--target", "y.png", "--train_epochs", "9", "--add_scale", "0.5",
         "--mult_scale", "0.6", "--warp_scale", "0.07", "--add_first", "true", "--fps", "24",
         "--steps", "30"])
    config = make_config(args, build_parser())
    assert (args.source, args.target) == ("x.png", "y.png")
    assert config.epochs == 9
    assert (config.add_scale, config.mult_scale, config.warp_scale) == (0.5, 0.6, 0.07)
    assert config.add_first is True
    assert (config.fps, config.steps) == (24, 30)


def test_defaults_are_the_originals():
    args = _parse()
    config = make_config(args, build_parser())
    assert (config.epochs, config.add_scale, config.mult_scale, config.warp_scale) == (1000, 0.4, 0.4, 0.05)
    assert (config.steps, config.fps, config.size, config.add_first) == (100, 45, 1024, False)
    assert args.output_dir == "."


# ----------------------------------------------------------------------------- bad invocations


@pytest.mark.parametrize("argv, needle", [
    (["-t", TOY_B], "source"),
    (["-s", TOY_A], "target"),
    (["-s", TOY_A, "-t", TOY_B, "--steps", "1"], "--steps"),
    (["-s", TOY_A, "-t", TOY_B, "--size", "8"], "--size"),
    (["-s", TOY_A, "-t", TOY_B, "-e", "0"], "epochs"),
    (["-s", TOY_A, "-t", TOY_B, "--fps", "0"], "--fps"),
    (["-s", TOY_A, "-t", TOY_B, "-w", "nan"], "warp_scale"),
    (["-s", TOY_A, "-t", TOY_B, "-e", "ten"], "epochs"),
    (["-s", TOY_A, "-t", TOY_B, "--no-such-flag"], "--no-such-flag"),
], ids=["no-source", "no-target", "steps-1", "size-8", "epochs-0", "fps-0", "warp-nan", "epochs-word",
        "unknown-flag"])
def test_usage_errors(argv, needle):
    started = time.monotonic()
    proc = run_cli(argv)
    _assert_clean_failure(proc)
    assert needle in proc.stderr
    assert "usage:" in proc.stderr
    assert time.monotonic() - started < 10  # answered before TensorFlow is imported


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_inputs")
    (folder / "x.jpg").write_text("this is not a JPEG\n")
    (folder / "a_folder.png").mkdir()
    return folder


@pytest.mark.parametrize("which, needle", [
    ("missing", "no such file"),
    ("folder", "directory"),
    ("text", "not an image"),
])
def test_bad_input_files(bad_files, which, needle):
    path = {"missing": bad_files / "nope.png", "folder": bad_files / "a_folder.png",
            "text": bad_files / "x.jpg"}[which]
    out = bad_files / f"out_{which}"
    proc = run_cli(["-s", path, "-t", TOY_B, "--size", SMALL_SIZE, "-e", 1, "--steps", 2, "-o", out])
    _assert_clean_failure(proc)
    assert needle in proc.stderr
    assert str(path) in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr  # one line, TensorFlow's start-up noise muted
    assert not (out / "preds.npy").exists()


def test_bad_target_file(bad_files):
    proc = run_cli(["-s", TOY_A, "-t", bad_files / "x.jpg", "-o", bad_files / "out_t"])
    _assert_clean_failure(proc)
    assert "x.jpg" in proc.stderr


def test_output_dir_is_a_file(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("I am a file")
    proc = run_cli(["-s", TOY_A, "-t", TOY_B, "--size", SMALL_SIZE, "-e", 1, "--steps", 2, "-o", blocker])
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "error" in lines[0] and "blocker" in lines[0]
    assert blocker.read_text() == "I am a file"


# ----------------------------------------------------------------------------- --version


def test_version_is_quick():
    started = time.monotonic()
    proc = run_cli(["--version"])
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"diffmorph \d+\.\d+\.\d+\S*", proc.stdout.strip()), proc.stdout
    assert proc.stdout.strip() == f"diffmorph {__version__}"
    assert elapsed < 3, f"--version took {elapsed:.1f} s"


def test_version_and_usage_errors_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "from diffmorph import cli\n"
        "for argv in (['--version'], ['--help'], ['-s', 'a.png'], ['-s', 'a', '-t', 'b', '--steps', '1']):\n"
        "    try:\n"
        "        cli.main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False False"
