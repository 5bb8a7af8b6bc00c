"""Maps files and checkpoints (:mod:`diffmorph.io.mapsfile`): settings round trip, mismatches, validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from diffmorph.config import MAPS_SETTINGS, MorphConfig
from diffmorph.errors import InputError
from diffmorph.io import mapsfile

DIGESTS = ("a" * 64, "b" * 64)


def maps_low(n=6, value=0.25):
    return np.full((1, n, n, 16), value, np.float32)


def write_raw(path, meta, **arrays):
    """An .npz as a hand-editor or another program would write it."""
    extra = {} if meta is None else {"meta": np.asarray(meta if isinstance(meta, str) else json.dumps(meta))}
    np.savez(path, **extra, **arrays)
    return path


def good_meta(**changes):
    meta = mapsfile.describe(MorphConfig(size=64), *DIGESTS, kind=mapsfile.MAPS_KIND, steps_done=5)
    meta.update(changes)
    return meta


def test_maps_round_trip_keeps_values_and_settings(tmp_path):
    config = MorphConfig(
        size=96,
        add_scale=0.3,
        mult_scale=0.2,
        warp_scale=0.07,
        add_first=True,
        seed=7,
        train_steps=40,
        learning_rate=0.001,
        lr_schedule="cosine",
    )
    path = tmp_path / "maps.npz"
    mapsfile.save_maps(path, maps_low(value=0.5), config, DIGESTS, steps_done=40)
    saved = mapsfile.load_maps(path)
    assert saved.path == path and saved.maps_low.dtype == np.float32
    np.testing.assert_array_equal(saved.maps_low, maps_low(value=0.5))
    settings = mapsfile.stored_settings(saved.meta, path)
    assert settings == {
        "size": 96,
        "add_scale": 0.3,
        "mult_scale": 0.2,
        "warp_scale": 0.07,
        "add_first": True,
        "map_size": 96,
        "mult_floor": 0.1,
        "seed": 7,
        "train_steps": 40,
        "learning_rate": 0.001,
        "lr_schedule": "cosine",
        "size_schedule": (),
        "point_prior": "auto",  # large deformations: what a guided morph used (auto: none without points)
        "colour_maps": "auto",
        "consistency_weight": 1.0,
        "geometry": "auto",
    }
    assert MorphConfig(**settings).replace(frames=3) == config.replace(frames=3)
    assert saved.meta["steps_done"] == 40 and saved.meta["kind"] == "maps"
    assert mapsfile.mismatches(saved.meta, config, *DIGESTS) == []
    assert mapsfile.mismatches(saved.meta, config, *DIGESTS, optimiser=True) == []


def test_optimiser_settings_are_compared_only_when_asked():
    """Rendering ignores the optimiser's settings; resuming compares them, and a file from
    diffmorph 0.1 (without them) counts as made with the defaults."""
    meta = good_meta(learning_rate=0.002, lr_schedule="cosine")
    config = MorphConfig(size=64)
    assert mapsfile.mismatches(meta, config, *DIGESTS) == []
    assert mapsfile.mismatches(meta, config, *DIGESTS, optimiser=True) == [
        "learning_rate was 0.002, now 0.0002",
        "lr_schedule was 'cosine', now 'constant'",
    ]
    legacy = {k: v for k, v in good_meta().items() if k not in ("learning_rate", "lr_schedule")}
    assert mapsfile.mismatches(legacy, config, *DIGESTS, optimiser=True) == []
    assert mapsfile.mismatches(legacy, config.replace(learning_rate=0.001), *DIGESTS, optimiser=True) == [
        "learning_rate was 0.0002, now 0.001"
    ]


def test_mismatches_name_what_differs():
    meta = good_meta()
    config = MorphConfig(size=128, warp_scale=0.1)
    problems = mapsfile.mismatches(meta, config, "c" * 64, DIGESTS[1])
    assert problems == ["the source image differs", "size was 64, now 128", "warp_scale was 0.05, now 0.1"]
    assert mapsfile.mismatches(meta, MorphConfig(size=64, frames=7, fps=12, seed=3), *DIGESTS) == []


def test_maps_settings_are_what_changes_the_maps():
    assert set(MAPS_SETTINGS) == {
        "size",
        "add_scale",
        "mult_scale",
        "warp_scale",
        "add_first",
        "map_size",
        "mult_floor",
    }


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "checkpoint.npz"
    state = {"map_net/conv1/kernel": np.ones((5, 5, 8, 64), np.float32), "step": np.asarray(3)}
    mapsfile.save(path, mapsfile.describe(MorphConfig(size=32), *DIGESTS, kind=mapsfile.CHECKPOINT_KIND), **state)
    meta, loaded = mapsfile.load_checkpoint(path)
    assert meta["kind"] == "checkpoint" and int(loaded["step"]) == 3
    np.testing.assert_array_equal(loaded["map_net/conv1/kernel"], state["map_net/conv1/kernel"])


def test_legacy_maps_file_of_version_0_1_still_loads(tmp_path):
    """0.1 wrote no kind and stored -e as 'epochs'."""
    meta = {key: value for key, value in good_meta().items() if key not in ("kind", "train_steps")}
    meta["epochs"] = 12
    path = write_raw(tmp_path / "old.npz", meta, low=maps_low())
    saved = mapsfile.load_maps(path)
    assert saved.meta["kind"] == "maps" and saved.meta["train_steps"] == 12


@pytest.mark.parametrize(
    "name, meta, arrays, needle",
    [
        ("not-npz.npz", None, None, "not a diffmorph maps file (unreadable"),
        ("no-meta.npz", None, {"low": maps_low()}, "no valid metadata"),
        ("meta-not-json.npz", "{not json", {"low": maps_low()}, "no valid metadata"),
        ("meta-a-list.npz", [1, 2], {"low": maps_low()}, "metadata is not a JSON object"),
        ("other-format.npz", {"format": "something"}, {"low": maps_low()}, "format 'something'"),
        ("wrong-shape.npz", "good", {"low": np.zeros((1, 6, 6, 8), np.float32)}, "maps of shape (1, 6, 6, 8)"),
        ("wrong-rank.npz", "good", {"low": np.zeros((6, 6, 16), np.float32)}, "maps of shape (6, 6, 16)"),
        ("not-square.npz", "good", {"low": np.zeros((1, 6, 5, 16), np.float32)}, "expected float (1, n, n, 16)"),
        ("integers.npz", "good", {"low": np.zeros((1, 6, 6, 16), np.int32)}, "(int32)"),
        ("nan.npz", "good", {"low": maps_low(value=np.nan)}, "NaN or infinite"),
        ("inf.npz", "good", {"low": maps_low(value=np.inf)}, "NaN or infinite"),
        ("checkpoint.npz", "checkpoint", {"step": np.asarray(2)}, "is a checkpoint (for resume=True), not maps"),
        ("preds.npy", "npy", None, "preds.npy holds the working-size maps"),
        ("missing.npz", "missing", None, "no such file"),
    ],
)
def test_bad_maps_files_are_one_clear_line(tmp_path, name, meta, arrays, needle):
    path = tmp_path / name
    if meta == "npy":
        np.save(path, np.zeros((1, 8, 8, 16), np.float32))
    elif meta == "missing":
        pass
    elif arrays is None:
        path.write_bytes(b"PK\x03\x04 not really a zip")
    else:
        named = {"good": good_meta(), "checkpoint": good_meta(kind="checkpoint")}
        write_raw(path, named.get(meta, meta) if isinstance(meta, str) else meta, **arrays)
    with pytest.raises(InputError) as info:
        mapsfile.load_maps(path)
    message = str(info.value)
    assert needle in message and "\n" not in message, message
    assert str(path) in message


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"size": 8}, "size must be an integer from 16"),
        ({"warp_scale": "fast"}, "warp_scale must be a finite number"),
        ({"add_first": "yes"}, "add_first must be True or False"),
        ({"map_size": 5}, "map_size must be an integer from 13"),
        ({"seed": -4}, "seed must be an integer"),
    ],
)
def test_invalid_stored_settings_are_refused(tmp_path, changes, needle):
    path = write_raw(tmp_path / "edited.npz", good_meta(**changes), low=maps_low())
    saved = mapsfile.load_maps(path)
    with pytest.raises(InputError, match="stores invalid settings") as info:
        mapsfile.stored_settings(saved.meta, path)
    assert needle in str(info.value)


def test_checkpoint_checks(tmp_path):
    maps_path = write_raw(tmp_path / "maps.npz", good_meta(), low=maps_low())
    with pytest.raises(InputError, match="is not a checkpoint"):
        mapsfile.load_checkpoint(maps_path)
    bad = write_raw(
        tmp_path / "nan.npz",
        good_meta(kind="checkpoint"),
        step=np.asarray(2),
        **{"map_net/conv1/bias": np.full(64, np.nan, np.float32)},
    )
    with pytest.raises(InputError, match="map_net/conv1/bias holds NaN"):
        mapsfile.load_checkpoint(bad)


def test_name_with_a_newline_stays_on_one_line(tmp_path):
    path = tmp_path / "bad\nname.npz"
    path.write_text("x")
    with pytest.raises(InputError) as info:
        mapsfile.load_maps(path)
    assert "\n" not in str(info.value) and "bad\\nname.npz" in str(info.value)
