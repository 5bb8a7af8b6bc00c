"""Rendering as a stream (:mod:`diffmorph.app.stream`): the frames the outputs are written from,
one at a time, with their pair, index and alpha; ``diffmorph.stream_frames`` for previews."""

from __future__ import annotations

import numpy as np
import pytest

import diffmorph
from conftest import TOY_A, TOY_B, read_rgb
from diffmorph import MorphConfig
from diffmorph.app.stream import FrameStream, PairFrames, StreamFrame, frame_order

SIZE = 16  # working size: tiny


def still_maps(n: int = 6) -> np.ndarray:
    """Maps that move nothing and change no colour: every frame is the cross-fade of the pair."""
    return np.zeros((1, n, n, 16), np.float32)


def small_pair():
    a = np.zeros((12, 20, 3), np.uint8)
    b = np.full((12, 20, 3), 200, np.uint8)
    return a, b


class Counting(diffmorph.Progress):
    """A progress that counts the cancellation checks."""

    def __init__(self):
        super().__init__()
        self.checks = 0

    def check_cancelled(self):
        self.checks += 1
        super().check_cancelled()


def test_stream_frames_yields_place_alpha_and_the_cross_fade():
    a, b = small_pair()
    frames = list(diffmorph.stream_frames(still_maps(), a, b, MorphConfig(size=SIZE, frames=5)))
    assert all(isinstance(f, StreamFrame) for f in frames)
    assert [(f.pair, f.index, f.forward, f.tiles) for f in frames] == [(0, i, True, None) for i in range(5)]
    assert [f.alpha for f in frames] == [0.0, 0.25, 0.5, 0.75, 1.0]
    for f in frames:  # no warp, no colour change: (1 - alpha) * a + alpha * b, to the nearest level or below
        assert f.image.dtype == np.uint8 and f.image.shape == (12, 20, 3)
        assert abs(int(f.image[6, 10, 0]) - 200 * f.alpha) <= 1, (f.alpha, f.image[6, 10])
    np.testing.assert_array_equal(frames[0].image, a)
    np.testing.assert_array_equal(frames[-1].image, b)


def test_render_frames_is_the_stream_s_images(rendered_run):
    _, out = rendered_run
    maps = out / "morph" / "maps.npz"
    config = diffmorph.preset_config("faithful", frames=4, render="working")  # the file's size (64), not 1024
    streamed = list(diffmorph.stream_frames(maps, TOY_A, TOY_B, config, explicit={"frames", "render"}))
    rendered = list(diffmorph.render_frames(maps, TOY_A, TOY_B, config, explicit={"frames", "render"}))
    assert len(streamed) == len(rendered) == 4
    for s, r in zip(streamed, rendered):
        np.testing.assert_array_equal(s.image, r)


def test_the_stream_gives_the_written_frames_bit_for_bit(rendered_run):
    """The frames a morph wrote (PNG) are the stream's frames of its maps and settings."""
    _, out = rendered_run
    written = sorted((out / "morph" / "frames").glob("frame_*.png"))
    streamed = list(diffmorph.stream_frames(out / "morph" / "maps.npz", TOY_A, TOY_B, MorphConfig(size=64, frames=6)))
    assert len(written) == len(streamed) == 6
    for path, frame in zip(written, streamed):
        np.testing.assert_array_equal(read_rgb(path), frame.image)


def test_pairs_boomerang_tiles_and_one_check_per_frame():
    a, b = small_pair()
    pairs = [PairFrames(a, b, still_maps()), PairFrames(b, a, still_maps())]
    progress = Counting()
    stream = FrameStream(pairs, MorphConfig(size=SIZE, frames=10), boomerang=True, tiles=[1], progress=progress)
    assert stream.frames == 10 and stream.total == 2 * 20 - 2
    frames = list(stream)
    assert [(f.pair, f.index) for f in frames] == list(frame_order(2, 10, True))
    assert [f.forward for f in frames] == [True] * 20 + [False] * 18
    with_tiles = [(f.pair, f.index) for f in frames if f.tiles is not None]
    assert with_tiles == [(1, 9)]  # the strip's frame (every 10th) of the pair asked for, on the way forward
    assert all(t.shape == (SIZE, SIZE, 3) and t.dtype == np.uint8 for t in frames[19].tiles)
    assert progress.checks == len(frames)


def test_a_hold_renders_a_repeated_frame_once(monkeypatch):
    from diffmorph.core.render import FrameRenderer

    a, b = small_pair()
    calls = []
    real = FrameRenderer.render

    def counted(self, index, alpha, with_tiles=False):
        calls.append(index)
        return real(self, index, alpha, with_tiles)

    monkeypatch.setattr(FrameRenderer, "render", counted)
    frames = list(FrameStream([PairFrames(a, b, still_maps())], MorphConfig(size=SIZE, frames=3, hold=2)))
    assert [f.alpha for f in frames] == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0]
    assert calls == [0, 3, 4]  # each alpha rendered once
    assert frames[1].image is frames[0].image and frames[6].image is frames[4].image


def test_cancel_stops_the_stream_before_the_next_frame():
    a, b = small_pair()
    progress = diffmorph.Progress()
    got = []
    with pytest.raises(diffmorph.Cancelled):
        for frame in diffmorph.stream_frames(still_maps(), a, b, MorphConfig(size=SIZE, frames=6), progress=progress):
            got.append(frame.index)
            if frame.index == 1:
                progress.cancel()  # e.g. a Stop button, from any thread
    assert got == [0, 1]


def test_render_programs_are_kept_per_render_setting_and_render_the_same_frames():
    from diffmorph.app import stream
    from diffmorph.core.render import FrameRenderer, RenderPrograms

    stream.clear_render_programs()
    a, b = small_pair()
    rng = np.random.default_rng(3)
    maps = rng.normal(0, 0.3, (1, 6, 6, 16)).astype(np.float32)  # maps that move and recolour
    config = MorphConfig(size=SIZE, frames=4)
    first = [f.image for f in diffmorph.stream_frames(maps, a, b, config)]
    kept = stream.render_programs(config)
    assert stream.render_programs(config.replace(frames=7, size=32, seed=3, fps=10)) is kept  # not render settings
    assert stream.render_programs(config.replace(mult_floor=0.5)) is not kept
    again = [f.image for f in diffmorph.stream_frames(maps, a, b, config)]
    fresh = FrameRenderer(a, b, maps, config, programs=RenderPrograms(config))  # its own programs
    for x, y, alpha in zip(first, again, [0, 1 / 3, 2 / 3, 1]):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, fresh.render(0, alpha).image)
    for n in range(stream.RENDER_PROGRAMS_KEPT + 1):  # bounded: the least recently used go first
        stream.render_programs(config.replace(add_scale=0.5 + n / 10))
    assert len(stream._RENDER_PROGRAMS) == stream.RENDER_PROGRAMS_KEPT
    assert stream.render_programs(config) is not kept
    stream.clear_render_programs()
    assert stream._RENDER_PROGRAMS == {}
