"""Alpha schedules (:mod:`diffmorph.core.pacing`): hand-computed inversions, easing, hold.

A fake renderer stands in for :class:`~diffmorph.core.render.FrameRenderer`: its frames
are a fine grey ramp shifted by ``200 * g(alpha)`` levels, so the mean absolute
difference of two frames is ``200 |g(a1) - g(a0)|`` (to ~1e-3 level) and the dense
curve is known in closed form.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from typing import NamedTuple

import numpy as np
import pytest

from conftest import REPO
from diffmorph.core import pacing
from diffmorph.core.pacing import linear_alphas


class Frame(NamedTuple):
    image: np.ndarray


class RampRenderer:
    """Frames whose grey level is ``ramp + 200 * g(alpha)``; records the alphas rendered."""

    def __init__(self, g=lambda a: a * a, width: int = 1000):
        self.g, self.alphas = g, []
        self.ramp = np.linspace(0, 1, width, endpoint=False)[None, :, None]  # (1, W, 1) fractions of a level

    def render(self, index, alpha):
        self.alphas.append(alpha)
        level = np.floor(self.ramp + 20 + 200 * self.g(alpha) + 0.5)  # rounds like the renderer's uint8
        return Frame(np.broadcast_to(level, (24, self.ramp.shape[1], 3)).astype(np.uint8))


def test_inversion_of_a_piecewise_linear_curve_by_hand():
    # C = [0, 1/4, 1/4, 3/4, 1]: a flat part between alpha 0.25 and 0.5
    alphas = pacing.invert_curve([0, 0.25, 0.5, 0.75, 1], [1, 0, 2, 1], [0, 0.125, 0.25, 0.5, 0.75, 0.875, 1])
    assert alphas == pytest.approx([0, 0.125, 0.25, 0.625, 0.75, 0.875, 1], abs=1e-15)
    # uneven dense alphas: C = [0, 1/4, 1/2, 1] at a = [0, 0.1, 0.5, 1]
    assert pacing.invert_curve([0, 0.1, 0.5, 1], [1, 1, 2], [0.375, 0.75]) == pytest.approx([0.3, 0.75], abs=1e-15)


def test_all_zero_curve_falls_back_to_linear():
    progress = linear_alphas(7)
    assert pacing.invert_curve([0, 0.5, 1], [0, 0], progress) == progress
    still = RampRenderer(g=lambda a: 0.0)
    assert pacing.alphas_for(7, "uniform", renderer=still) == progress


def test_defaults_are_the_original_schedule():
    for frames in (2, 3, 100):
        assert pacing.alphas_for(frames) == linear_alphas(frames)


def test_uniform_pacing_inverts_the_measured_curve():
    renderer = RampRenderer()
    alphas = pacing.alphas_for(50, "uniform", renderer=renderer, dense=8)
    dense = [k / 8 for k in range(9)]
    assert renderer.alphas == dense  # one dense pass, dense + 1 frames at k / m
    expected = pacing.invert_curve(dense, np.diff([200 * a * a for a in dense]), linear_alphas(50))
    assert alphas == pytest.approx(expected, abs=2e-3)
    assert alphas[0] == 0.0 and alphas[-1] == 1.0
    assert all(b >= a for a, b in itertools.pairwise(alphas))
    assert alphas[25] > 0.5  # slow start (g = alpha^2 changes little near 0): the middle comes later


def test_easing_values():
    for kind in pacing.EASES:
        assert pacing.eased(0.0, kind) == 0.0 and pacing.eased(0.5, kind) == 0.5 and pacing.eased(1.0, kind) == 1.0
    assert pacing.eased(0.25, "sine") == pytest.approx((1 - math.cos(math.pi / 4)) / 2, abs=1e-15)
    assert pacing.eased(0.25, "cubic") == pytest.approx(0.0625, abs=1e-15)
    assert pacing.eased(0.75, "cubic") == pytest.approx(0.9375, abs=1e-15)
    for t in (0.1, 0.3, 0.45):
        for kind in pacing.EASES:
            assert pacing.eased(1 - t, kind) == pytest.approx(1 - pacing.eased(t, kind), abs=1e-15)


def test_ease_composes_with_both_pacings():
    alphas = pacing.alphas_for(5, ease="cubic")
    assert alphas == [0.0, 0.0625, 0.5, 0.9375, 1.0]
    renderer = RampRenderer()
    eased = pacing.alphas_for(9, "uniform", ease="sine", renderer=renderer, dense=4)
    dense = [k / 4 for k in range(5)]
    progress = [pacing.eased(t, "sine") for t in linear_alphas(9)]
    assert eased == pytest.approx(pacing.invert_curve(dense, np.diff([200 * a * a for a in dense]), progress), abs=2e-3)
    assert eased[0] == 0.0 and eased[-1] == 1.0


def test_hold_repeats_the_ends():
    alphas = pacing.alphas_for(5, hold=3)
    assert len(alphas) == 11
    assert alphas[:4] == [0.0] * 4 and alphas[-4:] == [1.0] * 4 and alphas[3:8] == linear_alphas(5)
    assert pacing.with_hold([0.0, 1.0], 0) == [0.0, 1.0]


def test_msssim_distance_is_a_square_root():
    renderer = RampRenderer(width=40)
    alphas, distances = pacing.measure_path(renderer, dense=3, distance="msssim")
    assert alphas == [0, 1 / 3, 2 / 3, 1.0] and len(distances) == 3
    assert all(d > 0 for d in distances)
    from diffmorph.core.metrics import msssim_distance

    frames = [renderer.render(0, a).image for a in alphas[:2]]
    assert distances[0] == pytest.approx(math.sqrt(msssim_distance(*frames)), rel=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"frames": 1}, "frames"),
        ({"frames": 5, "pacing": "even"}, "pacing"),
        ({"frames": 5, "ease": "quad"}, "ease"),
        ({"frames": 5, "hold": -1}, "hold"),
        ({"frames": 5, "pacing": "uniform"}, "renderer"),
        ({"frames": 5, "pacing": "uniform", "renderer": RampRenderer(), "dense": 0}, "dense"),
        ({"frames": 5, "pacing": "uniform", "renderer": RampRenderer(), "distance": "lpips"}, "distance"),
    ],
)
def test_bad_settings_name_themselves(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pacing.alphas_for(**kwargs)


def test_bad_curves_are_refused():
    with pytest.raises(ValueError, match="increase"):
        pacing.invert_curve([0, 0.6, 0.5, 1], [1, 1, 1], [0.5])
    with pytest.raises(ValueError, match=">= 0"):
        pacing.invert_curve([0, 1], [-1], [0.5])
    with pytest.raises(ValueError, match="m distances"):
        pacing.invert_curve([0, 1], [1, 1], [0.5])


@pytest.mark.slow
def test_importing_the_schedules_and_the_report_loads_no_tensorflow():
    code = (
        "import sys; import diffmorph.core.pacing, diffmorph.core.metrics, diffmorph.app.report, "
        "diffmorph.io.readers; print('tensorflow' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "False"
