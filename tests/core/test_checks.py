"""One integer rule for every setting: Python and NumPy integers count, bools and floats do not."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from diffmorph.checks import is_int, is_positive
from diffmorph.config import MorphConfig
from diffmorph.core.colour import ColourPath, TransferSettings, check_bins


@pytest.mark.parametrize("value", [0, 7, -3, 10**30, np.int64(5), np.uint8(200), np.int32(-1)])
def test_integers_count(value):
    assert is_int(value)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 3.0, np.float64(3.0), "3", None, [3]])
def test_bools_floats_and_others_do_not(value):
    assert not is_int(value)


@pytest.mark.parametrize("value", [1, 0.5, np.float32(0.1), np.int64(2), 10**400])
def test_positive_numbers(value):
    assert is_positive(value)


@pytest.mark.parametrize("value", [0, -1, 0.0, math.inf, math.nan, np.float64("nan"), True, "1", None])
def test_not_positive_numbers(value):
    assert not is_positive(value)


def test_config_takes_numpy_integers_and_stores_python_ints():
    config = MorphConfig(size=np.int64(64), train_steps=np.int32(3), frames=np.uint16(5), seed=np.int64(7))
    assert (config.size, config.train_steps, config.frames, config.seed) == (64, 3, 5, 7)
    assert all(type(x) is int for x in (config.size, config.train_steps, config.frames, config.seed))
    json.dumps(config.__dict__)  # maps files store the settings as JSON: NumPy scalars would fail here


def test_config_and_colour_refuse_the_same_values():
    for bad in (True, 64.0):
        with pytest.raises(ValueError, match=r"^size must be an integer from 16 to 2048"):
            MorphConfig(size=bad)
        with pytest.raises(ValueError, match=r"^bins must be an integer from 8 to 128"):
            check_bins(bad)
        with pytest.raises(ValueError, match=r"^stages must be an integer from 1 to 64"):
            TransferSettings(stages=bad)
        with pytest.raises(ValueError, match=r"^refine must be an integer >= 0"):
            ColourPath(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2, 3), np.uint8), refine=bad)


def test_colour_takes_numpy_integers_like_config():
    assert TransferSettings(bins=np.int64(16), stages=np.int64(2), iters=np.uint8(3)).iterations == 6
    path = ColourPath(np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 255, np.uint8), refine=np.int64(1))
    assert path.apply(np.full((2, 2, 3), 128, np.uint8), 0.5).dtype == np.uint8
