"""report.json's layout: neighbour distances under ``distances``; old reports (``steps``) still read."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from diffmorph.app.report import figure_png, format_table, read_report
from diffmorph.core.meter import measure
from diffmorph.core.report_layout import upgrade
from diffmorph.errors import InputError


def ramp(count: int = 5) -> list[np.ndarray]:
    return [np.full((24, 32, 3), 40 + 30 * k, np.uint8) for k in range(count)]


@pytest.fixture(scope="module")
def current():
    return measure(ramp())


def as_old(result: dict) -> dict:
    """The same report as diffmorph 0.2.0 wrote it: neighbour distances under "steps"."""
    old = copy.deepcopy(result)
    for name in ("distance", "mad", "colour"):
        old[name] = {("steps" if k == "distances" else k): v for k, v in old[name].items()}
    return old


def test_neighbour_distances_are_called_distances(current):
    for name in ("distance", "mad", "colour"):
        assert "steps" not in current[name]
        assert len(current[name]["distances"]) == 4  # 5 frames, 4 neighbour pairs
    assert current["mad"]["distances"] == [30.0] * 4


def test_upgrade_renames_old_keys_and_leaves_the_input_alone(current):
    old = as_old(current)
    before = copy.deepcopy(old)
    assert upgrade(old) == current
    assert old == before  # not modified in place
    assert upgrade(current) == current  # a current report is already up to date


def test_read_report_reads_old_and_new_files(tmp_path, current):
    for name, result in (("old.json", as_old(current)), ("new.json", current)):
        path = tmp_path / name
        path.write_text(json.dumps(result))
        assert read_report(path) == current


def test_old_reports_still_draw_and_print(current):
    old = as_old(current)
    assert format_table(old) == format_table(current)
    assert figure_png(old, []).startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    "text, message",
    [("{not json", "cannot be read as a report"), ("[1, 2]", "not a diffmorph report"), ('{"frames": 3}', "not a")],
)
def test_read_report_refuses_what_is_not_a_report(tmp_path, text, message):
    path = tmp_path / "report.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as caught:
        read_report(path)
    assert "\n" not in str(caught.value)


def test_read_report_of_a_missing_file(tmp_path):
    with pytest.raises(InputError, match="cannot be read as a report"):
        read_report(tmp_path / "missing.json")
