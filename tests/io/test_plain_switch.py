"""The fused/plain switch is one setting, ``MorphConfig.plain`` (flag ``--plain``); no setting is called ``fast``."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from diffmorph.config import MorphConfig, preset_config
from diffmorph.io import mapsfile

DIGESTS = ("a" * 64, "b" * 64)


def test_plain_is_off_by_default_and_no_setting_is_called_fast():
    fields = {f.name for f in dataclasses.fields(MorphConfig)}
    assert "plain" in fields and "fast" not in fields
    assert MorphConfig().plain is False
    with pytest.raises(ValueError, match="unknown setting 'fast'"):
        preset_config("faithful", fast=False)


@pytest.mark.parametrize("fast, plain", [(True, False), (False, True)])
def test_maps_file_storing_the_old_fast_key_still_loads(tmp_path, fast, plain):
    meta = mapsfile.describe(MorphConfig(size=64), *DIGESTS, kind=mapsfile.MAPS_KIND, steps_done=5)
    meta["fast"] = fast  # as an earlier version would have stored it
    path = tmp_path / "maps.npz"
    np.savez(path, meta=np.asarray(json.dumps(meta)), low=np.full((1, 6, 6, 16), 0.25, np.float32))
    saved = mapsfile.load_maps(path)
    assert "fast" not in saved.meta and saved.meta["plain"] is plain
    settings = mapsfile.stored_settings(saved.meta, path)
    assert settings["size"] == 64 and "fast" not in settings
    MorphConfig(**settings)  # the stored settings make a config
