"""The public Python API (``import diffmorph``): morph, render_frames, morph_sequence, load_image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import diffmorph
from conftest import TOY_A, TOY_B, make_test_image, read_rgb, read_video

CONFIG = diffmorph.MorphConfig(size=32, train_steps=3, frames=4, seed=0)


class Recorder(diffmorph.Progress):
    """Records what the pipeline reports."""

    def __init__(self):
        self.events = []

    def notice(self, text):
        self.events.append(("notice", text))

    def start(self, phase, total, done=0):
        self.events.append(("start", phase, total, done))

    def update(self, done, status=None):
        self.events.append(("update", done))

    def end(self):
        self.events.append(("end",))


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "out"
    source, target = make_test_image(40, 30, seed=0), make_test_image(40, 30, seed=1)
    recorder = Recorder()
    result = diffmorph.morph(
        source, target, out, CONFIG, progress=recorder, options=diffmorph.OutputOptions(formats=("mp4", "frames"))
    )
    return result, recorder, source, target, out


def test_public_names():
    assert {
        "morph",
        "morph_sequence",
        "render_frames",
        "load_image",
        "MorphConfig",
        "OutputOptions",
        "Progress",
        "InputError",
        "OutputError",
        "__version__",
    } <= set(diffmorph.__all__)
    assert set(diffmorph.__all__) <= set(dir(diffmorph))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        diffmorph.nope  # noqa: B018


def test_morph_returns_the_maps_and_writes_the_layout(api_run):
    result, _, source, _, out = api_run
    assert result.maps_low.shape == (1, 84, 84, 16) and np.isfinite(result.maps_low).all()
    assert result.config == CONFIG and result.frames == 4 and result.train_steps == 3
    assert result.paths.root == out
    frames = sorted((out / "morph" / "frames").iterdir())
    assert [p.name for p in frames] == [f"frame_{i:05d}.png" for i in range(4)]
    np.testing.assert_array_equal(read_rgb(frames[0]), source)
    assert not (out / "morph" / "morph.gif").exists()
    assert len(read_video(out / "morph" / "morph.mp4")[0]) == 4


def test_progress_reports_phases_in_order(api_run):
    _, recorder, *_ = api_run
    starts = [e for e in recorder.events if e[0] == "start"]
    assert starts == [("start", "optimise", 3, 0), ("start", "render", 4, 0)]
    assert recorder.events.count(("end",)) == 2
    updates = [e[1] for e in recorder.events if e[0] == "update"]
    assert updates == [1, 2, 3, 1, 2, 3, 4]


def test_render_frames_equals_the_written_frames(api_run):
    result, _, source, target, out = api_run
    frames = list(diffmorph.render_frames(result.maps_low, source, target, result.config))
    written = [read_rgb(p) for p in sorted((out / "morph" / "frames").iterdir())]
    assert len(frames) == 4
    for frame, png in zip(frames, written):
        assert frame.dtype == np.uint8 and frame.shape == (30, 40, 3)
        np.testing.assert_array_equal(frame, png)
    np.testing.assert_array_equal(frames[0], source)
    np.testing.assert_array_equal(frames[-1], target)


def test_render_frames_from_a_maps_file_uses_its_settings(api_run):
    result, _, source, target, out = api_run
    frames = list(diffmorph.render_frames(out / "morph" / "maps.npz", source, target, alphas=[0.0, 0.5, 1.0]))
    middle = next(diffmorph.render_frames(result.maps_low, source, target, result.config, alphas=[0.5]))
    assert len(frames) == 3
    np.testing.assert_array_equal(frames[1], middle)  # same size and scales as the run that made the file


@pytest.mark.slow
def test_render_frames_follows_the_configs_schedule_and_colour_path(api_run, tmp_path):
    """render_frames gives the frames morph() writes for the same settings: pacing, hold and
    the Bures colour path included."""
    from diffmorph.core.colour import ColourPath

    result, _, source, target, _ = api_run
    config = result.config.replace(pacing="uniform", hold=1, colour_path="bures")
    frames = list(diffmorph.render_frames(result.maps_low, source, target, config))
    again = diffmorph.morph(
        source,
        target,
        tmp_path / "out",
        config,
        maps=result.maps_low,
        options=diffmorph.OutputOptions(formats=("frames",)),
    )
    written = [read_rgb(p) for p in sorted((tmp_path / "out" / "morph" / "frames").iterdir())]
    assert again.frames == len(frames) == len(written) == 4 + 2
    for frame, png in zip(frames, written, strict=True):
        np.testing.assert_array_equal(frame, png)
    np.testing.assert_array_equal(frames[0], source)
    np.testing.assert_array_equal(frames[1], source)  # the hold
    np.testing.assert_array_equal(frames[-1], target)
    plain = next(diffmorph.render_frames(result.maps_low, source, target, result.config, alphas=[0.5]))
    coloured = next(diffmorph.render_frames(result.maps_low, source, target, config, alphas=[0.5]))
    np.testing.assert_array_equal(coloured, ColourPath(source, target).apply(plain, 0.5))
    assert not np.array_equal(coloured, plain)


def test_render_frames_refuses_maps_of_other_images(api_run):
    _, _, source, _, out = api_run
    other = make_test_image(40, 30, seed=3)
    with pytest.raises(diffmorph.InputError, match="was made for another morph .*the target image differs"):
        next(diffmorph.render_frames(out / "morph" / "maps.npz", source, other))
    assert next(diffmorph.render_frames(out / "morph" / "maps.npz", source, other, force=True)).shape == (30, 40, 3)


def test_morph_from_saved_maps_does_not_optimise(api_run, tmp_path, monkeypatch):
    from diffmorph.app import fit

    result, _, source, target, out = api_run
    monkeypatch.setattr(fit.Fitter, "fit", lambda *a, **k: pytest.fail("optimised again"))
    again = diffmorph.morph(
        source,
        target,
        tmp_path / "again",
        maps=out / "morph" / "maps.npz",
        options=diffmorph.OutputOptions(formats=("frames",)),
    )
    assert again.config.size == 32 and again.train_steps == 3
    np.testing.assert_array_equal(again.maps_low, result.maps_low)
    assert not (tmp_path / "again" / "train").exists()


@pytest.mark.parametrize(
    "image, needle",
    [
        (np.zeros((8, 8, 3), np.float32), "expected a uint8 array"),
        (np.zeros((8, 8, 5), np.uint8), "expected an (H, W, 3) RGB array"),
        (np.zeros((1, 8, 3), np.uint8), "too small"),
    ],
)
def test_bad_arrays_are_input_errors(tmp_path, image, needle):
    with pytest.raises(diffmorph.InputError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        diffmorph.morph(image, make_test_image(8, 8), tmp_path / "out", CONFIG)
    assert not (tmp_path / "out").exists()


def test_grey_and_rgba_arrays_are_rgb(tmp_path):
    grey = np.full((8, 8), 100, np.uint8)
    rgba = np.zeros((8, 8, 4), np.uint8)  # fully transparent: white
    frames = list(diffmorph.render_frames(np.zeros((1, 4, 4, 16), np.float32), grey, rgba, CONFIG, alphas=[0.0, 1.0]))
    assert (frames[0] == 100).all() and (frames[1] == 255).all()


@pytest.mark.slow
def test_morph_sequence(tmp_path):
    images = [make_test_image(24, 16, seed=k) for k in range(3)]
    result = diffmorph.morph_sequence(
        images, tmp_path / "show.mp4", CONFIG.replace(frames=3), options=diffmorph.OutputOptions(formats=("mp4",))
    )
    assert result.frames == 6 and result.pairs == 2 and result.reused == 0
    frames, meta = read_video(tmp_path / "show.mp4")
    assert len(frames) == 6 and meta["size"] == (24, 16)
    assert sorted(p.name for p in (tmp_path / "show_pairs").iterdir() if p.is_dir()) == [
        "000_image1_to_image2",
        "001_image2_to_image3",
    ]
    again = diffmorph.morph_sequence(
        images, tmp_path / "show.mp4", CONFIG.replace(frames=3), options=diffmorph.OutputOptions(formats=("mp4",))
    )
    assert again.reused == 2


def test_load_image():
    pixels = diffmorph.load_image(TOY_A)
    assert pixels.shape == (256, 256, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, read_rgb(TOY_A))
    with pytest.raises(diffmorph.InputError, match="no such file"):
        diffmorph.load_image(TOY_B.with_name("missing.png"))


@pytest.mark.slow
def test_a_second_morph_reuses_the_compiled_optimiser_and_repeats_the_first(tmp_path, monkeypatch):
    from diffmorph.app import fit
    from diffmorph.core import optimise

    built = []
    real_init = optimise.Trainer.__init__
    monkeypatch.setattr(optimise.Trainer, "__init__", lambda self, *a: (built.append(1), real_init(self, *a))[1])
    diffmorph.clear_compiled()
    source, target = make_test_image(24, 16, seed=0), make_test_image(24, 16, seed=1)
    options = diffmorph.OutputOptions(formats=("gif",))
    first = diffmorph.morph(source, target, tmp_path / "a", CONFIG, options=options)
    second = diffmorph.morph(source, target, tmp_path / "b", CONFIG.replace(frames=3, fps=10), options=options)
    assert built == [1]  # compiled once; frames and fps do not change the optimiser
    np.testing.assert_array_equal(first.maps_low, second.maps_low)  # a reset net repeats a fresh one
    diffmorph.morph(source, target, tmp_path / "c", CONFIG.replace(warp_scale=0.1), options=options)
    assert built == [1, 1] and len(fit._COMPILED) == 2  # other scales: compiled again, both kept
    third = diffmorph.morph(source, target, tmp_path / "d", CONFIG, options=options)
    assert built == [1, 1]  # back to the first settings: nothing compiled again
    np.testing.assert_array_equal(first.maps_low, third.maps_low)
    diffmorph.clear_compiled()
    assert fit._COMPILED == {}


def test_the_package_exports_nothing_from_the_layers_above_the_library():
    """``diffmorph.X`` is the library: no name comes from the command line or the web app (the layers above)."""
    import diffmorph

    above = [
        f"{name} from {module}" for name, module in diffmorph._EXPORTS.items() if module.split(".")[1] in ("cli", "web")
    ]
    assert above == []
    bars = diffmorph.BarProgress(quiet=True)
    assert type(bars).__module__ == "diffmorph.app.bars"


def test_one_first_line_and_one_formats_across_the_package():
    """Helpers of the same meaning are defined once (a second copy drifts: another length, another rule)."""
    import re

    package = Path(diffmorph.__file__).parent
    defined = {"first_line": [], "FORMATS": []}
    for path in package.rglob("*.py"):
        text = path.read_text()
        if re.search(r"^def _?first_line\(", text, re.M):
            defined["first_line"].append(path.relative_to(package).as_posix())
        if re.search(r"^FORMATS\s*=", text, re.M):
            defined["FORMATS"].append(path.relative_to(package).as_posix())
    assert defined == {"first_line": ["errors.py"], "FORMATS": ["app/write.py"]}


def test_kept_optimisers_are_bounded_by_count_and_working_pixels(monkeypatch):
    from diffmorph.app import fit

    monkeypatch.setattr(fit, "_COMPILED", fit.collections.OrderedDict())
    keys = [diffmorph.MorphConfig(size=size, seed=None) for size in (256, 512, 128)]
    for key in keys:
        with fit._COMPILED_LOCK:
            fit._make_room(fit.working_pixels(key))
            fit._COMPILED[key] = key.size
    assert list(fit._COMPILED.values()) == [256, 512, 128]  # three fit (count and pixels)
    big = diffmorph.MorphConfig(size=1024)
    fit._make_room(fit.working_pixels(big))  # 1024^2 + the rest > COMPILED_PIXELS: the oldest go first
    assert list(fit._COMPILED.values()) == [512, 128]
    fit._make_room(fit.working_pixels(diffmorph.MorphConfig(size=64)))  # a third fits: nothing goes
    assert list(fit._COMPILED.values()) == [512, 128]
    fit._COMPILED[diffmorph.MorphConfig(size=64)] = 64
    fit._make_room(fit.working_pixels(diffmorph.MorphConfig(size=64)))
    assert list(fit._COMPILED.values()) == [128, 64]
    staged = diffmorph.preset_config("fast", size=1024)  # every stage's working pixels count
    assert fit.working_pixels(staged) == sum(s * s for s, _ in staged.stages())
    assert fit.working_pixels(diffmorph.MorphConfig(size=1024)) == 1024 * 1024
