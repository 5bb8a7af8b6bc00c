"""A third pass over hostile inputs (issue 18), one section per class:

1. nothing the user did not name as an output is deleted or replaced (inputs, folders
   holding other files, the previous run's snapshots when a run fails);
2. every limit is checked before any work (colour-transfer's solver settings, the strip's
   JPEG width, the GIF's memory with held frames, repeated formats);
3. the Python API checks its arguments as the command line does;
4. morphs from several threads at once;
5. ``report`` reading diffmorph's own outputs (odd-sized MP4s, its own report.png), and
   one rule for an output folder that is a file.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from conftest import (
    TOY_A,
    TOY_B,
    assert_one_line_error,
    file_bytes,
    files_under,
    make_test_image,
    part_files,
    read_rgb,
    run_cli,
    write_rgb,
)
from diffmorph.errors import InputError, OutputError

TINY = ["--size", 16, "-e", 2, "--steps", 2, "--seed", 0, "--plain", "-q"]


def api_config(**changes):
    from diffmorph.config import MorphConfig

    return MorphConfig(**{"size": 16, "train_steps": 2, "frames": 2, "seed": 0, "plain": True, **changes})


def gif_of(path, frames):
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], loop=0, duration=100)
    return path


# ------------------------------------------------------------- 1. outputs never destroy what is not theirs


def test_sequence_never_deletes_an_input_gif_named_like_its_gif_output(tmp_path):
    """``sequence photo.gif b.png -o photo.mp4``: the GIF output would be the input."""
    photo = gif_of(tmp_path / "photo.gif", [make_test_image(24, 20, 1), make_test_image(24, 20, 2)])
    other = write_rgb(tmp_path / "b.png", make_test_image(24, 20, 3))
    before = photo.read_bytes()
    run = run_cli(["sequence", photo, other, "-o", tmp_path / "photo.mp4", *TINY])
    assert_one_line_error(run, 2, "photo.gif", "is the input")
    assert photo.read_bytes() == before
    assert not (tmp_path / "photo.mp4").exists()

    # --formats mp4: photo.gif is no output of this run, and never one of an earlier run: kept
    run = run_cli(["sequence", photo, other, "-o", tmp_path / "photo.mp4", *TINY, "--formats", "mp4"])
    assert run.returncode == 0, run.stderr
    assert photo.read_bytes() == before
    assert (tmp_path / "photo.mp4").is_file()


def test_sequence_keeps_a_user_folder_named_like_its_frames_output(tmp_path):
    """``sequence trip_frames/01.png trip_frames/02.png -o trip.mp4``: trip_frames/ is the user's."""
    folder = tmp_path / "trip_frames"
    folder.mkdir()
    a = write_rgb(folder / "01.png", make_test_image(20, 16, 1))
    b = write_rgb(folder / "02.png", make_test_image(20, 16, 2))
    (folder / "notes.txt").write_text("my notes")
    before = file_bytes(folder)
    run = run_cli(["sequence", a, b, "-o", tmp_path / "trip.mp4", *TINY, "--formats", "gif"])
    assert run.returncode == 0, run.stderr
    assert file_bytes(folder) == before
    assert (tmp_path / "trip.gif").is_file()


def test_sequence_frames_output_over_the_inputs_folder_is_refused_before_work(tmp_path):
    """Variant: asking for frames into the folder that holds the inputs."""
    folder = tmp_path / "trip_frames"
    folder.mkdir()
    a = write_rgb(folder / "frame_00000.png", make_test_image(20, 16, 1))
    b = write_rgb(folder / "frame_00001.png", make_test_image(20, 16, 2))
    before = file_bytes(folder)
    run = run_cli(["sequence", a, b, "-o", tmp_path / "trip.mp4", *TINY, "--formats", "frames"])
    assert_one_line_error(run, 2, "trip_frames", "holding the input")
    assert file_bytes(folder) == before
    assert not (tmp_path / "trip_pairs").exists() or files_under(tmp_path / "trip_pairs") == []


def test_morph_gif_only_keeps_a_frames_folder_holding_a_user_file(tmp_path):
    """``morph --formats gif`` with OUT/morph/frames/ holding a user's file: left alone."""
    out = tmp_path / "out"
    frames = out / "morph" / "frames"
    frames.mkdir(parents=True)
    (frames / "mine.txt").write_text("keep me")
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *TINY, "--formats", "gif", "-o", out])
    assert run.returncode == 0, run.stderr
    assert (frames / "mine.txt").read_text() == "keep me"
    assert (out / "morph" / "morph.gif").is_file()


def test_an_earlier_frames_folder_with_a_file_added_is_not_retired(tmp_path):
    """Variant: our own frames folder of an earlier run, with a user's file added since."""
    out = tmp_path / "out"
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *TINY, "--formats", "gif,frames", "-o", out])
    assert run.returncode == 0, run.stderr
    frames = out / "morph" / "frames"
    (frames / "notes.txt").write_text("mine")
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *TINY, "--formats", "gif", "-o", out])
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in frames.iterdir()) == ["frame_00000.png", "frame_00001.png", "notes.txt"]

    # without the user's file, the earlier run's frames are its own: retired
    (frames / "notes.txt").unlink()
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *TINY, "--formats", "gif", "-o", out])
    assert run.returncode == 0, run.stderr
    assert not frames.exists()


def test_a_users_file_put_in_place_of_an_earlier_gif_is_kept(tmp_path):
    """Variant: morph.gif replaced by the user after the run is no longer ours to remove."""
    out = tmp_path / "out"
    assert run_cli(["-s", TOY_A, "-t", TOY_B, *TINY, "--formats", "gif", "-o", out]).returncode == 0
    gif = out / "morph" / "morph.gif"
    gif.write_bytes(b"the user's own file")
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *TINY, "--formats", "frames", "-o", out])
    assert run.returncode == 0, run.stderr
    assert gif.read_bytes() == b"the user's own file"


def test_morph_source_inside_an_output_name_is_refused(tmp_path):
    """Variant: the source image saved as OUT/morph/result.jpg would be replaced by the strip."""
    out = tmp_path / "out"
    (out / "morph").mkdir(parents=True)
    source = write_rgb(out / "morph" / "result.jpg", make_test_image(24, 24, 1))
    before = source.read_bytes()
    run = run_cli(["-s", source, "-t", TOY_B, *TINY, "--formats", "gif", "-o", out])
    assert_one_line_error(run, 2, "result.jpg", "is the input")
    assert source.read_bytes() == before


def test_a_run_diverging_at_its_first_step_keeps_the_previous_snapshots_and_set(tmp_path):
    """``-a 1e30``: the previous run's train/ snapshots, maps and video stay in place."""
    out = tmp_path / "out"
    args = ["-s", TOY_A, "-t", TOY_B, "--size", 16, "-e", 10, "--steps", 2, "--seed", 0, "--plain", "-q"]
    assert run_cli([*args, "--formats", "gif", "-o", out]).returncode == 0
    before = file_bytes(out)
    assert "train/a_to_b_10.jpg" in before
    run = run_cli([*args, "-a", "1e30", "--formats", "gif", "-o", out])
    assert_one_line_error(run, 1, "at step 1", "scales are likely too large")
    assert file_bytes(out) == before
    assert not part_files(out)


def test_a_run_diverging_after_a_snapshot_puts_the_previous_snapshots_back(tmp_path, monkeypatch):
    """Variant: the new run wrote its step-10 snapshots, then its final maps are NaN."""
    from diffmorph.core.optimise import Trainer

    out = tmp_path / "out"
    args = ["-s", TOY_A, "-t", TOY_B, "--size", 16, "-e", 12, "--steps", 2, "--plain", "-q", "--formats", "gif"]
    assert run_cli([*args, "--seed", 0, "-o", out]).returncode == 0
    before = {k: v for k, v in file_bytes(out).items() if k != "morph/checkpoint.npz"}
    real = Trainer.maps_low
    monkeypatch.setattr(
        Trainer, "maps_low", lambda self: np.full_like(real(self), np.nan) if self.step_count >= 12 else real(self)
    )
    run = run_cli([*args, "--seed", 1, "-o", out])  # another seed: other snapshots at step 10
    assert_one_line_error(run, 1, "diverged at train step 12")
    after = {k: v for k, v in file_bytes(out).items() if k != "morph/checkpoint.npz"}
    assert after == before


# ------------------------------------------------------------------ 2. limits checked before any work


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--stages", "5000"], ["--stages", "from 1 to 64", "5000"]),
        (["--iters", "100000000000000000000"], ["--iters", "from 1 to 100000"]),
        (["--stages", "64", "--iters", "100000"], ["--iters", "at most 15625 with 64 stages"]),
        (["--lambda", "1e300"], ["--lambda", "1e-06 to 1e+06"]),
        (["--eps", "1e-30"], ["--eps", "1e-06 to 1e+06"]),
    ],
)
def test_colour_transfer_settings_out_of_range_are_one_line(tmp_path, flags, needles):
    out = tmp_path / "out.png"
    run = run_cli(["colour-transfer", TOY_A, "--palette", TOY_B, "-o", out, *flags])
    assert_one_line_error(run, 2, *needles)
    assert not out.exists()


def test_transfer_settings_in_python_name_the_setting():
    from diffmorph.core.colour import TransferSettings

    with pytest.raises(ValueError, match="^stages must be an integer from 1 to 64"):
        TransferSettings(stages=5000)
    with pytest.raises(ValueError, match="^iters must be an integer from 1 to 100000"):
        TransferSettings(iters=10**20)
    assert TransferSettings(stages=np.int64(3), iters=np.int32(4)).iterations == 12  # numpy integers count


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--size", 2048, "--steps", 320], ["result.jpg", "65536 pixels wide", "65500", "at most 319 frames"]),
        (["--steps", 640], ["result.jpg", "65536 pixels wide"]),  # at the default size 1024
    ],
)
def test_a_strip_wider_than_jpeg_is_refused_before_optimising(tmp_path, monkeypatch, flags, needles):
    from diffmorph.core.optimise import Trainer

    monkeypatch.setattr(Trainer, "step", lambda self: pytest.fail("optimised before refusing"))
    out = tmp_path / "out"
    run = run_cli(["-s", TOY_A, "-t", TOY_B, "-e", 2, "-q", *flags, "-o", out])
    assert_one_line_error(run, 2, *needles)
    assert not out.exists()


def test_the_largest_strip_that_fits_is_accepted_by_the_check():
    """The limit is exact: 639 frames at 1024 make a strip of 63 x 1024 = 64512 pixels."""
    from diffmorph.app.write import OutputOptions, check_outputs
    from diffmorph.config import MorphConfig

    check_outputs((16, 16), 1, MorphConfig(frames=639), OutputOptions(formats=("mp4",)))
    with pytest.raises(InputError, match="at most 639 frames"):
        check_outputs((16, 16), 1, MorphConfig(frames=640), OutputOptions(formats=("mp4",)))


def test_sequence_strip_too_wide_is_refused_before_work(tmp_path):
    """Variant: the strip of each pair of a sequence, made too wide by its frames."""
    run = run_cli(["sequence", TOY_A, TOY_B, "-o", tmp_path / "v.mp4", "--size", 512, "--steps", 1300, "-q"])
    assert_one_line_error(run, 2, "result.jpg", "frames 1300")
    assert not (tmp_path / "v_pairs").exists()


def test_gif_memory_counts_the_held_frames(tmp_path):
    """Variant: 2 frames + 2 x 8000 held ones of 256 x 256 pass the GIF's 1 GB budget."""
    out = tmp_path / "out"
    run = run_cli(["-s", TOY_A, "-t", TOY_B, "--size", 16, "-e", 2, "--steps", 2, "--hold", 8000, "-o", out, "-q"])
    assert_one_line_error(run, 2, "GIF of 16002 frames")
    assert not out.exists()


def test_repeated_formats_are_refused_in_python():
    from diffmorph.app.write import OutputOptions

    with pytest.raises(ValueError, match="formats names frames twice"):
        OutputOptions(formats=("gif", "frames", "frames"))
    with pytest.raises(ValueError, match="formats must be a tuple"):
        OutputOptions(formats="gif")
    assert OutputOptions(formats=["gif"], gif_max_side=np.int64(64)).gif_max_side == 64


# ------------------------------------------------------------------ 3. API arguments checked like flags


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        (None, "source must be an image file path or a uint8 (H, W, 3) array (got NoneType)"),
        ([str(TOY_A)], "source must be an image file path or a uint8 (H, W, 3) array (got list)"),
        (np.zeros((8, 8, 3), np.float32), "expected a uint8 array"),
        (np.zeros((8, 8, 5), np.uint8), "got shape (8, 8, 5)"),
        ("", "got an empty path"),
    ],
)
def test_morph_refuses_unusable_image_arguments(tmp_path, source, needle):
    import diffmorph

    with pytest.raises(InputError) as error:
        diffmorph.morph(source, TOY_B, tmp_path / "out", api_config())
    assert needle in str(error.value)
    assert not (tmp_path / "out").exists()


def test_sequence_refuses_unusable_image_arguments(tmp_path):
    import diffmorph

    with pytest.raises(InputError, match="images must be a list"):
        diffmorph.morph_sequence(None, tmp_path / "v.mp4", api_config())
    with pytest.raises(InputError, match="images must be a list"):
        diffmorph.morph_sequence(str(TOY_A), tmp_path / "v.mp4", api_config())
    with pytest.raises(InputError, match="image2 must be an image file path"):
        diffmorph.morph_sequence([TOY_A, None], tmp_path / "v.mp4", api_config())
    with pytest.raises(InputError, match="config must be a MorphConfig"):
        diffmorph.morph_sequence([TOY_A, TOY_B], tmp_path / "v.mp4", {"size": 16})


def test_morph_config_accepts_numpy_integers_as_integers():
    from diffmorph.config import MorphConfig

    config = MorphConfig(size=np.int64(64), frames=np.int32(5), seed=np.uint32(7), add_first=np.bool_(True))
    assert (config.size, config.frames, config.seed, config.add_first) == (64, 5, 7, True)
    assert type(config.size) is int and type(config.seed) is int and type(config.add_first) is bool
    assert type(MorphConfig(fps=np.float32(30)).fps) is float
    with pytest.raises(ValueError, match=r"^size must be an integer from 16 to 2048 \(got np.float64\(64.0\)\)"):
        MorphConfig(size=np.float64(64))
    with pytest.raises(ValueError, match="^frames must be an integer"):
        MorphConfig(frames=np.bool_(True))


@pytest.mark.parametrize(
    ("alphas", "needle"),
    [
        ([-0.5, 1.5], "alphas[0] must be in [0, 1] (got -0.5)"),
        ([0.0, float("nan")], "alphas[1] must be a finite number in [0, 1] (got nan)"),
        ([0.0, 1.0000001], "alphas[1] must be in [0, 1]"),
        ("0.5", "alphas must be a sequence of numbers"),
        ([], "alphas must hold at least one value"),
    ],
)
def test_render_frames_refuses_alphas_outside_the_morph_at_the_call(toy_pair, alphas, needle):
    import diffmorph

    maps = np.zeros((1, 4, 4, 16), np.float32)
    with pytest.raises(InputError) as error:
        diffmorph.render_frames(maps, *toy_pair, api_config(), alphas=alphas)  # raised by the call itself
    assert needle in str(error.value)


def test_render_frames_with_numpy_alphas_renders_the_ends(toy_pair):
    import diffmorph

    maps = np.zeros((1, 4, 4, 16), np.float32)
    frames = list(diffmorph.render_frames(maps, *toy_pair, api_config(), alphas=np.array([0.0, 1.0])))
    assert len(frames) == 2
    np.testing.assert_array_equal(frames[0], toy_pair[0])


@pytest.mark.parametrize(
    ("maps", "needle"),
    [
        (np.zeros((1, 0, 0, 16), np.float32), "got shape (1, 0, 0, 16)"),
        (np.zeros((1, 8, 9, 16), np.float32), "got shape (1, 8, 9, 16)"),
        (np.zeros((1, 8, 8, 16), object), "got dtype object"),
        (np.full((1, 4, 4, 16), np.inf, np.float32), "NaN or infinite"),
        ([[1.0]], "maps must be a maps file path or a float32"),
    ],
)
def test_maps_arrays_of_the_wrong_shape_are_input_errors(tmp_path, toy_pair, maps, needle):
    import diffmorph

    with pytest.raises(InputError) as error:
        diffmorph.morph(*toy_pair, tmp_path / "out", api_config(), maps=maps, options=_gif_only())
    assert needle in str(error.value)
    with pytest.raises(InputError):
        diffmorph.render_frames(maps, *toy_pair, api_config())


def test_morph_refuses_wrong_types_of_other_arguments(tmp_path, toy_pair):
    import diffmorph

    for kwargs, needle in (
        ({"out_dir": None}, "out_dir must be a folder path"),
        ({"resume": "yes"}, "resume must be a bool"),
        ({"options": {"formats": ("gif",)}}, "options must be a OutputOptions"),
        ({"config": {"size": 16}}, "config must be a MorphConfig"),
    ):
        arguments = {"out_dir": tmp_path / "out", "config": api_config(), **kwargs}
        with pytest.raises(InputError, match=needle):
            diffmorph.morph(*toy_pair, **arguments)


def _gif_only():
    from diffmorph.app.write import OutputOptions

    return OutputOptions(formats=("gif",))


# ------------------------------------------------------------------------------------- 4. threads


def _in_threads(*calls):
    """Run each call in its own thread, started together; returns what each returned or raised."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(k, call):
        barrier.wait()
        try:
            results[k] = call()
        except BaseException as exc:  # noqa: BLE001 (the test inspects it)
            results[k] = exc

    threads = [threading.Thread(target=run, args=(k, call)) for k, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a morph thread hangs"
    return results


def test_two_threads_on_one_folder_one_runs_the_other_is_refused(tmp_path, toy_pair):
    """A run holding the folder (kept busy until the other has been answered) refuses the other."""
    import diffmorph
    from diffmorph.app.progress import Progress

    out = tmp_path / "out"
    holding, answered = threading.Event(), threading.Event()

    class Waits(Progress):
        def update(self, done, status=None):
            holding.set()  # called while optimising, so while holding the folder's lock
            answered.wait(timeout=120)  # holds the folder until the second call returned

    def first():
        return diffmorph.morph(*toy_pair, out, api_config(), options=_gif_only(), progress=Waits())

    def second():
        try:
            return diffmorph.morph(*toy_pair, out, api_config(), options=_gif_only())
        finally:
            answered.set()

    results = []
    thread = threading.Thread(target=lambda: results.append(first()))
    thread.start()
    assert holding.wait(timeout=300), "the first morph never started optimising"
    with pytest.raises(OutputError, match="another diffmorph run is writing to"):
        second()
    thread.join(timeout=300)
    assert len(results) == 1 and results[0].frames == 2
    assert diffmorph.morph(*toy_pair, out, api_config(), options=_gif_only()).frames == 2  # later calls work


def test_two_threads_started_together_on_one_folder(tmp_path, toy_pair):
    """Started at once: each succeeds or is refused with the folder-lock message; never another error."""
    import diffmorph

    out = tmp_path / "out"
    call = lambda: diffmorph.morph(*toy_pair, out, api_config(), options=_gif_only())  # noqa: E731
    results = _in_threads(call, call)
    for result in results:
        if isinstance(result, BaseException):
            assert isinstance(result, OutputError) and "another diffmorph run is writing to" in str(result), result
        else:
            assert result.frames == 2
    assert any(not isinstance(r, BaseException) for r in results)
    assert call().frames == 2  # the process is still usable
    assert not part_files(out)


def test_two_threads_on_two_folders_both_finish(tmp_path, toy_pair):
    """A web app's server threads: two morphs at once into two folders, with two settings."""
    import diffmorph

    results = _in_threads(
        lambda: diffmorph.morph(*toy_pair, tmp_path / "a", api_config(), options=_gif_only()),
        lambda: diffmorph.morph(*toy_pair, tmp_path / "b", api_config(add_scale=0.2), options=_gif_only()),
    )
    for result in results:
        assert not isinstance(result, BaseException), repr(result)
        assert result.frames == 2
    for name in ("a", "b"):
        assert (tmp_path / name / "morph" / "morph.gif").is_file()
        assert (tmp_path / name / "morph" / "maps.npz").is_file()


# ------------------------------------------------------------------------ 5. report reads our outputs


def odd_pair(tmp_path):
    a = write_rgb(tmp_path / "a.png", make_test_image(33, 17, 1))
    b = write_rgb(tmp_path / "b.png", make_test_image(33, 17, 2))
    return a, b


def test_report_reads_an_odd_sized_mp4_at_its_true_size(tmp_path):
    a, b = odd_pair(tmp_path)
    out = tmp_path / "out"
    assert run_cli(["-s", a, "-t", b, *TINY, "--formats", "mp4", "-o", out]).returncode == 0
    run = run_cli(["report", out, "--source", a, "--target", b, "-q"])
    assert run.returncode == 0, run.stderr
    import json

    result = json.loads((out / "morph" / "report.json").read_text())
    assert result["size"] == [17, 33]
    assert result["endpoints"]["source"] is not None


def test_report_crops_a_padded_mp4_without_the_size_note_to_the_source(tmp_path):
    """Variant: an MP4 padded to 34x18 by another encoder (no size note): cropped to the source's 33x17."""
    import imageio_ffmpeg

    a, b = odd_pair(tmp_path)
    frames = [np.pad(read_rgb(p), ((0, 1), (0, 1), (0, 0)), mode="edge") for p in (a, b, b)]
    video = tmp_path / "other.mp4"
    writer = imageio_ffmpeg.write_frames(str(video), (34, 18), fps=10, macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    from diffmorph.app.report import report

    result = report(video, source=a, target=b)
    assert result["size"] == [17, 33]


def test_report_twice_on_a_frames_folder_named_morph(tmp_path):
    """The first run's report.png (written into the folder) is not read as a frame by the second."""
    folder = tmp_path / "morph"
    folder.mkdir()
    for k in range(4):
        write_rgb(folder / f"frame_{k:05d}.png", make_test_image(24, 16, k))
    for _ in range(2):
        run = run_cli(["report", folder, "-q"])
        assert run.returncode == 0, run.stderr
        assert (folder / "report.png").is_file()
    import json

    assert json.loads((folder / "report.json").read_text())["frames"] == 4


def test_report_never_replaces_a_users_frame_named_report_png(tmp_path):
    """Variant: a frames folder whose user frame is called report.png is an input: refused."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(2):
        write_rgb(folder / f"f{k}.png", make_test_image(24, 16, k))
    mine = write_rgb(folder / "report.png", make_test_image(24, 16, 5))
    before = mine.read_bytes()
    run = run_cli(["report", folder, "-o", folder, "-q"])
    assert_one_line_error(run, 2, "report.png", "is the input")
    assert mine.read_bytes() == before


@pytest.mark.parametrize("command", ["morph", "sequence", "report", "colour-transfer"])
def test_an_output_folder_that_is_a_file_exits_2_for_every_command(tmp_path, command):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    args = {
        "morph": ["-s", TOY_A, "-t", TOY_B, *TINY, "-o", blocker],
        "sequence": ["sequence", TOY_A, TOY_B, "-o", blocker / "v.mp4", *TINY],
        "report": ["report", TOY_A.parent, "-o", blocker, "-q"],
        "colour-transfer": ["colour-transfer", TOY_A, "--palette", TOY_B, "-o", blocker / "out.png"],
    }[command]
    if command == "report":
        folder = tmp_path / "frames"
        folder.mkdir()
        for k in range(2):
            write_rgb(folder / f"f{k}.png", make_test_image(24, 16, k))
        args[1] = folder
    run = run_cli(args)
    assert_one_line_error(run, 2, "blocker", "is not a folder")
    assert blocker.read_text() == "a file"


def test_sequence_never_replaces_an_unrelated_gif_beside_its_output(tmp_path):
    """Variant: OUT.gif exists, is no input and was not written by an earlier run: refused, kept."""
    gif = gif_of(tmp_path / "v.gif", [make_test_image(24, 20, 1), make_test_image(24, 20, 2)])
    before = gif.read_bytes()
    run = run_cli(["sequence", TOY_A, TOY_B, "-o", tmp_path / "v.mp4", *TINY, "--formats", "gif"])
    assert_one_line_error(run, 2, "v.gif", "is in the way")
    assert gif.read_bytes() == before
    # its own GIF of an earlier run is replaced as usual
    gif.unlink()
    assert run_cli(["sequence", TOY_A, TOY_B, "-o", tmp_path / "v.mp4", *TINY, "--formats", "gif"]).returncode == 0
    assert run_cli(["sequence", TOY_A, TOY_B, "-o", tmp_path / "v.mp4", *TINY, "--formats", "gif"]).returncode == 0


def test_a_frames_dir_of_frames_diffmorph_did_not_write_is_refused(tmp_path):
    """Variant: --frames-dir holding a user's own frame_00000.png... (no input): never replaced."""
    frames = tmp_path / "my_frames"
    frames.mkdir()
    mine = write_rgb(frames / "frame_00000.png", make_test_image(24, 16, 1))
    before = mine.read_bytes()
    out = tmp_path / "out"
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *TINY, "--formats", "frames", "--frames-dir", frames, "-o", out])
    assert_one_line_error(run, 2, "my_frames", "did not write")
    assert mine.read_bytes() == before
    # frames this folder's runs published are replaced as usual
    frames_ok = tmp_path / "ok"
    for _ in range(2):
        run = run_cli(["-s", TOY_A, "-t", TOY_B, *TINY, "--formats", "frames", "--frames-dir", frames_ok, "-o", out])
        assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in frames_ok.iterdir()) == ["frame_00000.png", "frame_00001.png"]


def test_other_public_functions_name_their_bad_arguments(tmp_path):
    import diffmorph
    from diffmorph.app.colour_transfer import transfer_file
    from diffmorph.app.report import report

    with pytest.raises(InputError, match="path must be an image file path"):
        diffmorph.load_image(None)
    with pytest.raises(InputError, match="folder must be a file or folder path"):
        diffmorph.images_in(None)
    with pytest.raises(InputError, match="frames must be a file or folder path"):
        report(["a.mp4"])
    with pytest.raises(InputError, match="source must be an image file path"):
        report(TOY_A.parent, source=[1, 2])
    with pytest.raises(InputError, match="progress must be a diffmorph.Progress"):
        report(TOY_A.parent, progress=5)
    with pytest.raises(InputError, match="palette_path must be a file path"):
        transfer_file(TOY_A, None, tmp_path / "o.png")
    with pytest.raises(InputError, match="settings must be a TransferSettings"):
        transfer_file(TOY_A, TOY_B, tmp_path / "o.png", {"stages": 3})
    assert not (tmp_path / "o.png").exists()


def test_strip_columns_match_the_strip_builder():
    from diffmorph.app.write import strip_columns
    from diffmorph.core.render import strip_indices

    for frames in (2, 9, 10, 11, 19, 20, 639, 640, 2701):
        assert strip_columns(frames) == len(strip_indices(frames)), frames


def test_the_checks_before_work_do_not_load_tensorflow(tmp_path):
    """A refused run answers before TensorFlow loads (one line, no TensorFlow noise, quickly)."""
    from conftest import run_process

    done = run_process(["-s", TOY_A, "-t", TOY_B, "--steps", 640, "-o", tmp_path / "out"])
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()], done.stderr
    assert "result.jpg" in done.stderr


def test_a_training_snapshot_as_the_source_is_refused(tmp_path):
    """Variant: morphing a snapshot of the output folder's train/ further would set it aside."""
    out = tmp_path / "out"
    args = ["-t", TOY_B, "--size", 16, "-e", 10, "--steps", 2, "--seed", 0, "--plain", "-q", "--formats", "gif"]
    assert run_cli(["-s", TOY_A, *args, "-o", out]).returncode == 0
    snapshot = out / "train" / "a_to_b_10.jpg"
    before = snapshot.read_bytes()
    run = run_cli(["-s", snapshot, *args, "-o", out])
    assert_one_line_error(run, 2, "a_to_b_10.jpg", "is the input")
    assert snapshot.read_bytes() == before


THREADS_SCRIPT = """
import sys, threading
sys.path.insert(0, sys.argv[2])  # the worktree's package
import numpy as np
import diffmorph
from diffmorph.app.write import OutputOptions

root = sys.argv[1]
pair = [np.full((16, 16, 3), v, np.uint8) for v in (40, 200)]
barrier = threading.Barrier(2)
results = {}

def run(name):
    barrier.wait()
    try:
        config = diffmorph.MorphConfig(size=16, train_steps=2, frames=2, seed=0, plain=True)
        results[name] = diffmorph.morph(*pair, f"{root}/{name}", config, options=OutputOptions(formats=("gif",))).frames
    except BaseException as exc:
        results[name] = repr(exc)

threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sorted(results.items()))
"""


def test_threads_in_a_fresh_process_import_tensorflow_once(tmp_path):
    """The import race of the issue: two threads start morphs before TensorFlow is loaded."""
    from conftest import REPO, run_process

    script = tmp_path / "threads.py"
    script.write_text(THREADS_SCRIPT)
    done = run_process([tmp_path, REPO], entry=[str(script)])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[('a', 2), ('b', 2)]", (done.stdout, done.stderr)


def test_held_frames_never_widen_the_strip_nor_block_a_format():
    """``--size 256 --hold 1300 --formats gif``: the strip shows the morph's own frames (10 of 100), so only
    the GIF, with its held frames, is checked (2,700 frames of 256 x 256 fit its budget)."""
    from diffmorph.app.write import OutputOptions, check_outputs
    from diffmorph.config import MorphConfig

    check_outputs((256, 256), 1, MorphConfig(size=256, hold=1300), OutputOptions(formats=("gif",)))
    with pytest.raises(InputError, match="GIF of 16002 frames"):  # the held frames still count where they are
        check_outputs((256, 256), 1, MorphConfig(size=256, frames=2, hold=8000), OutputOptions(formats=("gif",)))


def test_the_strip_shows_the_morphs_own_frames_not_the_held_ones(tmp_path):
    """With zero maps a frame is a cross-fade at its alpha: the strip's tile of 12 frames is frame 9 (alpha 9/11)
    whatever the hold (counted with the 2 x 3 held frames it would be frame 9 of 18: alpha 6/11)."""
    import diffmorph
    from diffmorph.config import MorphConfig

    dark, light = np.zeros((16, 16, 3), np.uint8), np.full((16, 16, 3), 220, np.uint8)
    still = np.zeros((1, 84, 84, 16), np.float32)
    strips = {}
    for hold in (0, 3):
        out = tmp_path / f"hold{hold}"
        config = MorphConfig(size=16, frames=12, hold=hold)
        diffmorph.morph(dark, light, out, config, maps=still, options=diffmorph.OutputOptions(formats=("gif",)))
        strips[hold] = read_rgb(out / "morph" / "result.jpg")
    assert strips[3].shape == strips[0].shape == (48, 16, 3)  # one column: frame / a2b / b2a
    assert abs(float(strips[3][:16].mean()) - 220 * 9 / 11) < 3
    assert np.abs(strips[3].astype(int) - strips[0].astype(int)).max() <= 2
