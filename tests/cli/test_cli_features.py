"""The features beyond the original, end to end in-process: pacing, easing and holds, the
Bures colour path, --report, the report and colour-transfer subcommands, and a run
publishing exactly its outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import (
    IMAGES,
    TOY_A,
    TOY_B,
    assert_one_line_error,
    files_under,
    frames_in,
    make_test_image,
    read_gif,
    read_rgb,
    read_video,
    rerender,
    run_cli,
    tiny_flags,
    write_rgb,
)

PHOTO_A, PHOTO_B = IMAGES / "astronaut.jpg", IMAGES / "cat.jpg"
RUN = tiny_flags(train_steps=8, frames=None, formats="frames", plain=False)


def frames_of(out):
    return frames_in(out / "morph" / "frames")


@pytest.fixture(scope="module")
def maps_run(tmp_path_factory):
    """One optimised morph of the photo pair; re-rendered from its maps by the tests."""
    out = tmp_path_factory.mktemp("features") / "base"
    run = run_cli(["-s", PHOTO_A, "-t", PHOTO_B, *RUN, "--steps", 9, "-o", out])
    assert run.returncode == 0, run.stderr
    return out


def rerender_photos(maps_run, tmp_path, *flags):
    """Frames re-rendered from ``maps_run``'s maps with ``flags`` into ``tmp_path/out``: (frames, out)."""
    out = tmp_path / "out"
    rerender(maps_run / "morph" / "maps.npz", out, "--formats", "frames", *flags, pair=(PHOTO_A, PHOTO_B), plain=False)
    return frames_of(out), out


def step_mad(frames):
    return np.array([np.abs(a.astype(float) - b).mean() for a, b in zip(frames, frames[1:])])


def test_uniform_pacing_evens_the_steps_and_keeps_the_ends(maps_run, tmp_path):
    linear = frames_of(maps_run)
    uniform, _ = rerender_photos(maps_run, tmp_path, "--steps", 9, "--pacing", "uniform")
    assert len(uniform) == 9
    np.testing.assert_array_equal(uniform[0], read_rgb(PHOTO_A))
    np.testing.assert_array_equal(uniform[-1], read_rgb(PHOTO_B))
    spread = [steps.std() / steps.mean() for steps in (step_mad(linear), step_mad(uniform))]
    assert spread[1] < 0.6 * spread[0], spread


def test_hold_rests_on_each_image(maps_run, tmp_path):
    held, _ = rerender_photos(maps_run, tmp_path, "--steps", 5, "--hold", 2)
    assert len(held) == 5 + 4
    for k in range(3):
        np.testing.assert_array_equal(held[k], read_rgb(PHOTO_A))
        np.testing.assert_array_equal(held[-1 - k], read_rgb(PHOTO_B))
    assert np.abs(held[3].astype(int) - held[2]).mean() > 1  # then it moves


def test_ease_slows_the_ends(maps_run, tmp_path):
    eased, _ = rerender_photos(maps_run, tmp_path, "--steps", 9, "--ease", "cubic")
    linear = frames_of(maps_run)
    assert step_mad(eased)[0] < 0.5 * step_mad(linear)[0]
    np.testing.assert_array_equal(eased[0], linear[0])
    np.testing.assert_array_equal(eased[-1], linear[-1])


def test_colour_path_brings_the_middle_frame_onto_the_geodesic(maps_run, tmp_path):
    from diffmorph.core.colour import bures_geodesic, gaussian_stats, w2_gaussian

    coloured, _ = rerender_photos(maps_run, tmp_path, "--steps", 9, "--colour-path", "bures")
    plain = frames_of(maps_run)
    a, b = gaussian_stats(read_rgb(PHOTO_A)), gaussian_stats(read_rgb(PHOTO_B))
    goal = bures_geodesic(a, b, 0.5)
    scale = w2_gaussian(a, b)
    before = w2_gaussian(gaussian_stats(plain[4]), goal) / scale
    after = w2_gaussian(gaussian_stats(coloured[4]), goal) / scale
    assert after < 0.02 and after < before / 5, (before, after)
    np.testing.assert_array_equal(coloured[0], plain[0])
    np.testing.assert_array_equal(coloured[-1], plain[-1])


def test_bad_feature_flags_are_usage_errors(tmp_path):
    for flags, needle in (
        (["--pacing", "fast"], "invalid choice: 'fast'"),
        (["--hold", "-1"], "--hold must be"),
        (["--colour-path", "lab"], "invalid choice: 'lab'"),
    ):
        run = run_cli(["-s", TOY_A, "-t", TOY_B, *flags], cwd=tmp_path)
        assert_one_line_error(run, 2, needle)


@pytest.mark.slow
def test_report_on_a_morph_is_part_of_its_set(tmp_path):
    out = tmp_path / "out"
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *RUN, "--steps", 6, "--report", "-o", out])
    assert run.returncode == 0, run.stderr
    result = json.loads((out / "morph" / "report.json").read_text())
    assert result["frames"] == 6
    assert result["endpoints"]["source"] == {"psnr": None, "ssim": 1.0, "max_abs_diff": 0, "exact": True}  # PSNR inf
    assert result["endpoints"]["target"]["exact"] is True and result["input"]["kind"] == "rendered frames"
    assert (out / "morph" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["alignment"]["geometry"] == "scaled" and result["alignment"]["points"] is None  # unguided
    # the next run does not ask for a report: the old one goes with the old set
    run = run_cli(["-s", TOY_A, "-t", TOY_B, "--maps", out / "morph" / "maps.npz", "-q", "--formats", "gif", "-o", out])
    assert run.returncode == 0, run.stderr
    assert files_under(out / "morph") == ["checkpoint.npz", "maps.jpg", "maps.npz", "morph.gif", "result.jpg"]


@pytest.mark.slow
def test_report_command_on_a_folder_a_video_and_a_gif(tmp_path):
    out = tmp_path / "out"
    flags = tiny_flags(train_steps=4, frames=5, formats="mp4,gif,frames", plain=False)
    assert run_cli(["-s", TOY_A, "-t", TOY_B, *flags, "-o", out]).returncode == 0
    for target, folder in (
        (out, out / "morph"),
        (out / "morph" / "morph.mp4", out / "morph"),
        (out / "morph" / "frames", out / "morph"),
    ):
        run = run_cli(["report", target, "--source", TOY_A, "--target", TOY_B])
        assert run.returncode == 0, run.stderr
        assert "path length" in run.stdout and "std/mean" in run.stdout and "alignment" in run.stdout
        result = json.loads((folder / "report.json").read_text())
        assert result["frames"] == 5
    gif = run_cli(["report", out / "morph" / "morph.gif", "-o", tmp_path / "gif_report", "-q"])
    assert gif.returncode == 0 and gif.stdout == ""
    assert json.loads((tmp_path / "gif_report" / "report.json").read_text())["frames"] == 5


@pytest.mark.parametrize("case", ["missing", "one frame", "truth size"])
def test_report_command_bad_inputs_write_nothing(tmp_path, case):
    folder = tmp_path / "frames"
    folder.mkdir()
    write_rgb(folder / "frame_00000.png", make_test_image(20, 16))
    extra = []
    if case == "truth size":
        write_rgb(folder / "frame_00001.png", make_test_image(20, 16, seed=1))
        extra = ["--truth", write_rgb(tmp_path / "mid.png", make_test_image(10, 8))]
    target = tmp_path / "nope.mp4" if case == "missing" else folder
    run = run_cli(["report", target, *extra, "-o", tmp_path / "rep"])
    assert_one_line_error(run, 2)
    assert not (tmp_path / "rep").exists()


def test_colour_transfer_command(tmp_path):
    out = tmp_path / "recoloured.png"
    run = run_cli(
        ["colour-transfer", PHOTO_A, "--palette", PHOTO_B, "-o", out, "--bins", 16, "--stages", 3, "--iters", 20, "-q"]
    )
    assert run.returncode == 0, run.stderr
    w2 = [float(x) for x in run.lines[0].split(":")[2].split("before")[0].split()]
    after = float(run.lines[0].split(",")[1].split()[0])
    assert run.lines[0].startswith("diffmorph: W2 between the colour Gaussians") and after < w2[0]
    result = read_rgb(out)
    assert result.shape == read_rgb(PHOTO_A).shape
    gaussian = tmp_path / "g.png"
    assert (
        run_cli(
            ["colour-transfer", PHOTO_A, "--palette", PHOTO_B, "-o", gaussian, "--method", "gaussian", "-q"]
        ).returncode
        == 0
    )
    assert np.abs(read_rgb(gaussian).astype(int) - read_rgb(PHOTO_A)).mean() > 5


@pytest.mark.parametrize(
    "flags, needle, code",
    [
        (["--bins", "4"], "bins must be an integer from 8 to 128", 2),
        (["--palette", "missing.png"], "no such file", 2),
        (["-o", "out.xyz"], "xyz", 2),
    ],
)
def test_colour_transfer_bad_input_writes_nothing(tmp_path, flags, needle, code):
    args = {"--palette": PHOTO_B, "-o": tmp_path / "out.png"}
    for flag, value in zip(flags[::2], flags[1::2]):
        args[flag] = tmp_path / value if flag in ("--palette", "-o") else value
    run = run_cli(["colour-transfer", PHOTO_A, *[x for pair in args.items() for x in pair], "-q"])
    assert_one_line_error(run, code, needle)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_sequence_report_and_pacing(tmp_path):
    images = [write_rgb(tmp_path / f"{k}.png", make_test_image(24, 16, seed=k)) for k in range(3)]
    out = tmp_path / "show.mp4"
    flags = tiny_flags(frames=4, formats="mp4,gif", plain=False)
    run = run_cli(["sequence", *images, "-o", out, *flags, "--report", "--hold", 1])
    assert run.returncode == 0, run.stderr
    frames, _ = read_video(out)
    assert len(frames) == 2 * (4 + 2)
    result = json.loads((tmp_path / "show_report.json").read_text())
    assert result["frames"] == 12
    assert len(read_gif(tmp_path / "show.gif")[0]) < 12  # Pillow merges the held frames
