"""Tests of the ``diffmorph`` command: outputs, the original's flags, subcommands, exit statuses.

Almost everything calls the entry point in-process (``run_cli``). Four tests start a
real process: the entry scripts (``morph.py``, ``python -m diffmorph``), the lazy
TensorFlow import, and TensorFlow's start-up noise muted in a real run.
"""

from __future__ import annotations

import re
import signal
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import (
    REPO,
    SMALL_SIZE,
    TOY_A,
    TOY_B,
    assert_one_line_error,
    make_test_image,
    read_gif,
    read_rgb,
    read_video,
    run_cli,
    run_process,
    tiny_flags,
    write_rgb,
)
from diffmorph import __version__
from diffmorph.cli.main import build_parser, main, with_subcommand
from diffmorph.cli.options import explicit_settings, make_config
from diffmorph.config import MorphConfig

E2E_FRAMES = 12


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def e2e(cli_run):
    run, out = cli_run
    assert run.returncode == 0, run.stderr
    assert run.lines == [], run.stderr  # -q: nothing to say
    return out


def test_e2e_files(e2e):
    expected = [
        "morph/maps.jpg",
        "morph/maps.npz",
        "morph/checkpoint.npz",
        "morph/morph.gif",
        "morph/morph.mp4",
        "morph/result.jpg",
        "preds.npy",
        "train/a_to_b_10.jpg",
        "train/a_to_b_12.jpg",
        "train/b_to_a_10.jpg",
        "train/b_to_a_12.jpg",
    ]
    found = sorted(str(p.relative_to(e2e)) for p in e2e.rglob("*") if p.is_file() and not p.name.startswith("."))
    assert found == sorted(expected)
    assert not [p for p in e2e.rglob("*") if ".part" in p.name or p.name.endswith(".publish.json")]


def test_e2e_maps_npz_holds_the_final_maps(e2e):
    import tensorflow as tf

    from diffmorph.io import mapsfile

    saved = mapsfile.load_maps(e2e / "morph" / "maps.npz")
    assert saved.meta["size"] == SMALL_SIZE and saved.meta["steps_done"] == 12 and saved.meta["seed"] == 0
    assert saved.meta["kind"] == "maps" and saved.meta["train_steps"] == 12
    assert saved.maps_low.shape == (1, 84, 84, 16)
    preds = np.load(e2e / "preds.npy")
    assert preds.shape == (1, SMALL_SIZE, SMALL_SIZE, 16) and preds.dtype == np.float32
    np.testing.assert_allclose(tf.image.resize(saved.maps_low, [SMALL_SIZE, SMALL_SIZE]).numpy(), preds, atol=1e-6)


def test_e2e_checkpoint_resumes_the_same_net(e2e):
    from diffmorph.io import mapsfile

    meta, state = mapsfile.load_checkpoint(e2e / "morph" / "checkpoint.npz")
    assert int(state["step"]) == 12 and meta["kind"] == "checkpoint"
    assert state["map_net/conv1/kernel"].shape == (5, 5, 8, 64)


def test_e2e_images(e2e):
    for name in ("a_to_b_10", "b_to_a_10", "a_to_b_12", "b_to_a_12"):
        assert read_rgb(e2e / "train" / f"{name}.jpg").shape == (256, 256, 3), name
    # strip: 3 rows of S, one column for 12 frames (frame 9)
    assert read_rgb(e2e / "morph" / "result.jpg").shape == (3 * SMALL_SIZE, SMALL_SIZE, 3)
    maps = read_rgb(e2e / "morph" / "maps.jpg")
    assert maps.shape == (2 * SMALL_SIZE, 3 * SMALL_SIZE, 3)
    # the flow tiles' blue channel is the constant 0 -> 127 (JPEG may move it slightly)
    assert abs(int(np.median(maps[:, 2 * SMALL_SIZE :, 2])) - 127) <= 3


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
    assert len(frames) == E2E_FRAMES
    assert all(f.shape == (256, 256, 3) for f in frames)
    assert np.abs(frames[0].astype(int) - a).mean() < 3
    assert np.abs(frames[-1].astype(int) - b).mean() < 3
    middle = frames[E2E_FRAMES // 2].astype(int)
    assert np.abs(middle - a).mean() > 3 and np.abs(middle - b).mean() > 3


def test_e2e_gif(e2e):
    frames, durations, loop = read_gif(e2e / "morph" / "morph.gif")
    assert len(frames) == E2E_FRAMES and frames[0].shape == (256, 256, 3)
    assert loop == 0
    assert durations == [round(100 / 45) * 10] * E2E_FRAMES  # 20 ms


@pytest.mark.slow
def test_progress_bars_and_done_line(tmp_path):
    flags = tiny_flags(train_steps=2, frames=2, formats="gif", plain=False, quiet=False)
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *flags, "-o", tmp_path / "out"])
    assert run.returncode == 0, run.stderr
    assert "Optimising" in run.stderr and "Rendering" in run.stderr and "loss" in run.stderr
    assert run.lines == [f"diffmorph: done: {tmp_path / 'out' / 'morph'} (2 frames)"]


@pytest.mark.slow
def test_default_output_dir_is_cwd(tmp_path):
    """Without -o the outputs land in the current directory, as in the original."""
    write_rgb(tmp_path / "a.png", make_test_image(40, 30, seed=0))
    write_rgb(tmp_path / "b.png", make_test_image(40, 30, seed=1))
    run = run_cli(["-s", "a.png", "-t", "b.png", "--size", 32, "-e", 2, "--steps", 3, "--seed", 0, "-q"], cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for name in (
        "train/a_to_b_2.jpg",
        "train/b_to_a_2.jpg",
        "preds.npy",
        "morph/morph.mp4",
        "morph/morph.gif",
        "morph/result.jpg",
        "morph/maps.jpg",
    ):
        assert (tmp_path / name).is_file(), name
    assert read_rgb(tmp_path / "train" / "a_to_b_2.jpg").shape == (30, 40, 3)
    assert np.load(tmp_path / "preds.npy").shape == (1, 32, 32, 16)
    # fewer than 10 frames: the strip holds the last frame only
    assert read_rgb(tmp_path / "morph" / "result.jpg").shape == (3 * 32, 32, 3)


def test_non_finite_loss_is_a_clean_failure(tmp_path):
    flags = tiny_flags(train_steps=3, frames=2, formats=None)
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *flags, "-a", "1e38", "-m", "1e38", "-o", tmp_path / "out"])
    assert_one_line_error(run, 1, "scale", "1e+38")
    assert not (tmp_path / "out" / "preds.npy").exists()
    assert not (tmp_path / "out" / "morph" / "morph.mp4").exists()


@pytest.mark.slow
def test_different_sizes_are_resized_to_the_source(tmp_path):
    """Relative paths from another working folder; the target is resized with one notice."""
    write_rgb(tmp_path / "src.png", make_test_image(48, 40, seed=0))  # 48 wide, 40 high
    write_rgb(tmp_path / "tgt.png", make_test_image(30, 50, seed=1))
    out = tmp_path / "out"
    run = run_cli(
        ["-s", "src.png", "-t", "tgt.png", "--size", SMALL_SIZE, "-e", 2, "--steps", 3, "--seed", 0, "-q", "-o", "out"],
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.lines == ["diffmorph: target is 30x50, source 48x40: resizing the target to the source's size"]
    frames, meta = read_video(out / "morph" / "morph.mp4")
    assert meta["size"] == (48, 40)
    assert [f.shape for f in frames] == [(40, 48, 3)] * 3
    assert read_rgb(out / "train" / "b_to_a_2.jpg").shape == (40, 48, 3)
    with Image.open(out / "morph" / "morph.gif") as gif:
        assert gif.size == (48, 40) and gif.n_frames == 3


# ----------------------------------------------------------------------------- the original's flags


def _config(*argv):
    args = build_parser().parse_args(with_subcommand(["-s", "a.png", "-t", "b.png", *map(str, argv)]))
    return args, make_config(MorphConfig(), explicit_settings(args))


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], False),
        (["-add_first", "False"], False),
        (["-add_first", "false"], False),
        (["-add_first", "0"], False),
        (["--add_first", "no"], False),
        (["-add_first", "True"], True),
        (["-add_first", "1"], True),
        (["--add_first", "yes"], True),
        (["--add_first"], True),  # the published notebook's bare flag
        (["-add_first"], True),
    ],
)
def test_add_first_parsing(argv, expected):
    assert _config(*argv)[1].add_first is expected


def test_bare_add_first_before_another_flag():
    args = build_parser().parse_args(with_subcommand(["--add_first", "-s", "a.png", "-t", "b.png"]))
    assert args.add_first is True and args.source == "a.png"


def test_original_short_flags():
    args, config = _config("-e", 7, "-a", 0.1, "-m", 0.2, "-w", 0.3, "--fps", 30, "--steps", 20)
    assert (config.train_steps, config.add_scale, config.mult_scale, config.warp_scale) == (7, 0.1, 0.2, 0.3)
    assert (config.fps, config.frames) == (30, 20)
    assert (args.source, args.target) == ("a.png", "b.png")


def test_original_long_flags():
    args = build_parser().parse_args(
        with_subcommand(
            [
                "--source",
                "x.png",
                "--target",
                "y.png",
                "--train_epochs",
                "9",
                "--add_scale",
                "0.5",
                "--mult_scale",
                "0.6",
                "--warp_scale",
                "0.07",
                "--add_first",
                "true",
                "--fps",
                "24",
                "--steps",
                "30",
            ]
        )
    )
    config = make_config(MorphConfig(), explicit_settings(args))
    assert (args.source, args.target) == ("x.png", "y.png")
    assert (config.train_steps, config.add_scale, config.mult_scale, config.warp_scale) == (9, 0.5, 0.6, 0.07)
    assert config.add_first is True
    assert (config.fps, config.frames) == (24, 30)


def test_defaults_are_the_originals():
    args, config = _config()
    assert explicit_settings(args) == {}
    assert config == MorphConfig()
    assert (config.train_steps, config.add_scale, config.mult_scale, config.warp_scale) == (1000, 0.4, 0.4, 0.05)
    assert (config.frames, config.fps, config.size, config.add_first) == (100, 45, 1024, False)
    assert args.output_dir == "."


def test_only_given_flags_are_explicit():
    args, config = _config("--size", 128, "--plain", "-add_first", "false")
    assert explicit_settings(args) == {"size": 128, "plain": True, "add_first": False}
    assert config == MorphConfig(size=128, plain=True)


# ----------------------------------------------------------------------------- subcommands


def test_with_subcommand():
    assert with_subcommand(["-s", "a", "-t", "b"]) == ["morph", "-s", "a", "-t", "b"]
    assert with_subcommand([]) == ["morph"]
    assert with_subcommand(["sequence", "a", "b"]) == ["sequence", "a", "b"]
    assert with_subcommand(["--version"]) == ["--version"]


def test_help_lists_the_subcommands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\s+morph\s", out, re.M) and re.search(r"^\s+sequence\s", out, re.M)
    assert "diffmorph -s A -t B" in out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["morph", "--help"], "--train_epochs"),
        (["sequence", "--help"], "--loop"),
    ],
)
def test_subcommand_help(capsys, argv, needle):
    assert main(argv) == 0
    assert needle in capsys.readouterr().out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"diffmorph {__version__}"


def test_main_restores_what_it_changes(tmp_path):
    def handler(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, handler)
    filters = list(warnings.filters)
    try:
        run_cli(["-s", tmp_path / "missing.png", "-t", TOY_B])
        run_cli(["--version"])
        assert signal.getsignal(signal.SIGTERM) is handler
        assert warnings.filters == filters
    finally:
        signal.signal(signal.SIGTERM, previous)


# ----------------------------------------------------------------------------- bad invocations


@pytest.mark.parametrize(
    "argv, needle",
    [
        ([], "-s/--source and -t/--target are required"),
        (["-t", TOY_B], "-s/--source and -t/--target are required"),
        (["-s", TOY_A], "-s/--source and -t/--target are required"),
        (["-s", TOY_A, "-t", TOY_B, "--steps", "1"], "--steps must be an integer from 2 to 100000 (got 1)"),
        (["-s", TOY_A, "-t", TOY_B, "--size", "8"], "--size must be an integer from 16 to 2048 (got 8)"),
        (["-s", TOY_A, "-t", TOY_B, "--size", "100000"], "--size must be an integer from 16 to 2048"),
        (["-s", TOY_A, "-t", TOY_B, "-e", "0"], "-e/--train_epochs must be an integer from 1 to 1000000 (got 0)"),
        (["-s", TOY_A, "-t", TOY_B, "--fps", "0"], "--fps must be between 0.1 and 1000"),
        (["-s", TOY_A, "-t", TOY_B, "-w", "nan"], "-w/--warp_scale must be a finite number >= 0"),
        (["-s", TOY_A, "-t", TOY_B, "--seed", str(2**63)], "--seed must be an integer in [0, 4294967296)"),
        (["-s", TOY_A, "-t", TOY_B, "-e", "ten"], "epochs must be an integer, got 'ten'"),
        (["-s", TOY_A, "-t", TOY_B, "-add_first", "maybe"], "expected a boolean"),
        (["-s", TOY_A, "-t", TOY_B, "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["-s", TOY_A, "-t", TOY_B, "--force"], "--force only applies with --maps"),
        (["-s", TOY_A, "-t", TOY_B, "--maps", "m.npz", "--resume"], "--maps and --resume cannot be combined"),
        (["sequence", TOY_A, "-o", "x.mp4"], "give at least two images"),
        (["sequence", TOY_A, TOY_B], "the following arguments are required: -o/--output"),
    ],
    ids=[
        "nothing",
        "no-source",
        "no-target",
        "steps-1",
        "size-8",
        "size-huge",
        "epochs-0",
        "fps-0",
        "warp-nan",
        "seed-huge",
        "epochs-word",
        "add-first-word",
        "unknown-flag",
        "force-alone",
        "maps-and-resume",
        "sequence-one-image",
        "sequence-no-output",
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path, argv, needle):
    run = run_cli(argv, cwd=tmp_path)
    assert_one_line_error(run, 2, needle)
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_inputs")
    (folder / "x.jpg").write_text("this is not a JPEG\n")
    (folder / "a_folder.png").mkdir()
    return folder


@pytest.mark.parametrize("which, needle", [("missing", "no such file"), ("folder", "directory"), ("text", "x.jpg")])
@pytest.mark.parametrize("side", ["-s", "-t"])
def test_bad_input_files(bad_files, which, needle, side):
    path = {"missing": bad_files / "nope.png", "folder": bad_files / "a_folder.png", "text": bad_files / "x.jpg"}[which]
    out = bad_files / f"out_{which}{side}"
    pair = ["-s", path, "-t", TOY_B] if side == "-s" else ["-s", TOY_A, "-t", path]
    run = run_cli([*pair, "--size", SMALL_SIZE, "-e", 1, "--steps", 2, "-o", out])
    assert_one_line_error(run, 2, needle, str(path))
    assert not out.exists()


@pytest.mark.parametrize("flag", ["-o", "--frames-dir"])
def test_output_folder_that_is_a_file_is_a_bad_flag(tmp_path, flag):
    blocker = tmp_path / "blocker"
    blocker.write_text("I am a file")
    extra = ["-o", tmp_path / "out", "--formats", "frames"] if flag == "--frames-dir" else []
    run = run_cli(["-s", TOY_A, "-t", TOY_B, "--size", 32, "-e", 1, "--steps", 2, "-q", flag, blocker, *extra])
    assert_one_line_error(run, 2, "blocker", "is not a folder")
    assert blocker.read_text() == "I am a file"
    assert not (tmp_path / "out" / "train").exists()  # refused before any work


# ----------------------------------------------------------------------------- real processes


@pytest.mark.slow
def test_entry_scripts_answer_without_tensorflow():
    """morph.py and python -m diffmorph run the same command; --version/--help/usage errors never load TF."""
    code = (
        "import sys\n"
        "from diffmorph.cli.main import main\n"
        "codes = [main(a) for a in (['--version'], ['--help'], ['morph', '--help'], ['-s', 'a.png'],\n"
        "                             ['-s', 'a', '-t', 'b', '--steps', '1'], ['sequence', '--help'])]\n"
        "print(codes, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    proc = run_process(["-c", code], entry=[])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[0, 0, 0, 2, 2, 0] False False"
    version = run_process(["--version"])
    assert version.returncode == 0 and version.stdout.strip() == f"diffmorph {__version__}"


@pytest.mark.slow
def test_python_dash_m_diffmorph():
    proc = run_process(["sequence", "--help"], entry=["-m", "diffmorph"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: diffmorph sequence")


@pytest.mark.slow
def test_real_run_is_quiet_with_q(tmp_path):
    """TensorFlow's start-up noise (C++ logs, cuInit) is muted: -q prints nothing on success."""
    flags = tiny_flags(train_steps=1, frames=2, formats="gif", plain=False)
    proc = run_process(["-s", TOY_A, "-t", TOY_B, *flags, "-o", tmp_path / "out"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert (tmp_path / "out" / "morph" / "morph.gif").is_file()


@pytest.mark.slow
def test_morph_py_runs_subcommands(tmp_path):
    proc = run_process(["sequence", TOY_A, "-o", tmp_path / "x.mp4"], cwd=REPO)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "give at least two images" in proc.stderr


def allocate_too_much(*args, **kwargs):
    """A real out-of-memory error from TensorFlow's allocator: a 4 PiB tensor (ResourceExhaustedError)."""
    import tensorflow as tf

    return tf.zeros([1 << 20, 1 << 20, 1 << 10])


def ask_for_too_much(*args, **kwargs):
    """A real MemoryError from Python: a list of 2**62 items cannot be allocated."""
    return [0] * (1 << 62)


@pytest.mark.parametrize("exhaust", [allocate_too_much, ask_for_too_much], ids=["tensorflow", "python"])
def test_out_of_memory_is_one_line_exit_1(tmp_path, monkeypatch, exhaust):
    from diffmorph.app import fit

    monkeypatch.setattr(fit.Fitter, "fit", exhaust)
    flags = tiny_flags(train_steps=1, frames=2, formats=None)
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *flags, "-o", tmp_path / "out"])
    assert_one_line_error(run, 1, "not enough memory")


def test_a_bug_still_shows_its_traceback(tmp_path, monkeypatch):
    from diffmorph.app import fit

    monkeypatch.setattr(fit.Fitter, "fit", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        run_cli(["-s", TOY_A, "-t", TOY_B, "--size", 32, "-e", 1, "--steps", 2, "-q", "-o", tmp_path / "out"])
