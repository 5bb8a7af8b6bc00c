"""The pairs of a sequence and the rows of a batch take one path (:mod:`diffmorph.app.pairs`): jobs fitted by
:func:`~diffmorph.app.pairs.fit_serially` (or a cluster's ``fit``), maps judged finished by every setting."""

from __future__ import annotations

import numpy as np

import diffmorph
from conftest import make_test_image
from diffmorph.app import sequence
from diffmorph.app.pairs import PairJob

CONFIG = diffmorph.MorphConfig(size=16, train_steps=2, frames=2, seed=0)
GIF = diffmorph.OutputOptions(formats=("gif",))


def test_a_sequence_fits_its_pairs_as_jobs_of_the_shared_path(tmp_path, monkeypatch):
    seen = []
    real = sequence.fit_serially

    def recording(jobs, config, progress, time_limit=None):
        jobs = list(jobs)
        seen.extend(jobs)
        return real(jobs, config, progress, time_limit)

    monkeypatch.setattr(sequence, "fit_serially", recording)
    images = [make_test_image(24, 16, seed=k) for k in range(3)]
    result = diffmorph.morph_sequence(images, tmp_path / "s.mp4", CONFIG, options=GIF)
    assert result.pairs == 2 and result.reused == 0
    assert [type(job) for job in seen] == [PairJob, PairJob]
    assert [job.label for job in seen] == ["pair 1/2", "pair 2/2"]
    assert [job.paths.root.name for job in seen] == ["000_image1_to_image2", "001_image2_to_image3"]


def test_a_sequence_reuses_a_pair_only_for_the_same_settings(tmp_path):
    """The seed (as any setting the maps depend on) changed since: the pairs are fitted again, not reused."""
    images = [make_test_image(24, 16, seed=k) for k in range(2)]
    out = tmp_path / "s.mp4"
    assert diffmorph.morph_sequence(images, out, CONFIG, options=GIF).reused == 0
    assert diffmorph.morph_sequence(images, out, CONFIG.replace(frames=3), options=GIF).reused == 1  # render only
    again = diffmorph.morph_sequence(images, out, CONFIG.replace(seed=1), options=GIF)
    assert again.reused == 0
    maps = np.load(tmp_path / "s_pairs" / "000_image1_to_image2" / "morph" / "maps.npz")
    assert '"seed": 1' in str(maps["meta"])
