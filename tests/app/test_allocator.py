"""TensorFlow's BFC CPU allocator (``diffmorph.app.runtime.use_bfc_allocator``): set unless the user chose,
and it changes no value."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from diffmorph.app import runtime

CHILD = """
import hashlib, json, os, sys
import numpy as np
from diffmorph.app.runtime import import_tensorflow_quietly
import_tensorflow_quietly()
from diffmorph.config import MorphConfig
from diffmorph.core.optimise import Trainer
rng = np.random.default_rng(0)
a = rng.uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
b = np.roll(a, 5, axis=2)
trainer = Trainer(a, b, MorphConfig(size=64, seed=3))
losses = [trainer.step() for _ in range(5)]
maps = trainer.maps_low()
np.save(sys.argv[1], maps)
print(json.dumps({"allocator": os.environ.get("TF_CPU_ALLOCATOR_USE_BFC"), "losses": losses}))
"""


def test_set_only_where_the_user_has_not(monkeypatch):
    monkeypatch.delenv(runtime.ALLOCATOR_ENV, raising=False)
    assert runtime.use_bfc_allocator() is True
    assert os.environ[runtime.ALLOCATOR_ENV] == "true"
    for chosen in ("false", "0", "true", ""):
        monkeypatch.setenv(runtime.ALLOCATOR_ENV, chosen)
        assert runtime.use_bfc_allocator() is False
        assert os.environ[runtime.ALLOCATOR_ENV] == chosen


def run_child(tmp_path, name: str, allocator: str | None) -> tuple[dict, np.ndarray]:
    env = {key: value for key, value in os.environ.items() if key != runtime.ALLOCATOR_ENV}
    env["PYTHONPATH"] = str(REPO)
    if allocator is not None:
        env[runtime.ALLOCATOR_ENV] = allocator
    out = tmp_path / f"{name}.npy"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(out)], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), np.load(out)


@pytest.mark.slow
def test_the_allocator_changes_no_value(tmp_path):
    """The same seed gives identical losses and maps with the BFC allocator (the package's choice when the
    variable is unset) and with TensorFlow's default (the user's explicit ``false``, left alone)."""
    chosen, bfc_maps = run_child(tmp_path, "bfc", None)
    kept, default_maps = run_child(tmp_path, "default", "false")
    assert chosen["allocator"] == "true" and kept["allocator"] == "false"
    assert chosen["losses"] == kept["losses"]
    np.testing.assert_array_equal(bfc_maps, default_maps)
    assert bfc_maps.shape == (1, 84, 84, 16) and np.abs(bfc_maps).max() > 0
