"""``DiffMorph.ipynb``: its structure, and a headless run (nbclient) with tiny settings.

The run uses a kernelspec written into ``tmp_path`` (found through ``JUPYTER_PATH``)
whose command is this interpreter, so the kernel sees the same packages as the tests,
and replaces the ``parameters`` cell's source with tiny settings and an output in
``tmp_path``.
"""

from __future__ import annotations

import json
import os
import sys

import nbclient  # noqa: E402  (test requirements)
import nbformat  # noqa: E402
import pytest

from conftest import REPO  # noqa: E402

NOTEBOOK = REPO / "DiffMorph.ipynb"
KERNEL = "diffmorph-test"
STEPS = 4


def parameters_cell(nb):
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    return cells[0]


def test_notebook_is_valid_and_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    source = parameters_cell(nb).source
    for name in ("IMAGES_DIR", "IMAGES", "TRAIN_STEPS", "SIZE", "FRAMES", "FPS", "OUT", "PRESET", "SETTINGS"):
        assert f"{name} =" in source
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "INSTALL = False" in code and "%pip install -q -e ." in code
    assert "diffmorph.morph_sequence(" in code and "argv" not in code and "main(" not in code  # the API


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """A kernelspec running this interpreter, visible through JUPYTER_PATH."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "diffmorph tests",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.mark.slow
def test_notebook_runs_headless(tmp_path, kernel_env):
    import imageio_ffmpeg

    nb = nbformat.read(NOTEBOOK, as_version=4)
    out = tmp_path / "nb out" / "seq.mp4"
    parameters_cell(nb).source = "\n".join(
        [
            'IMAGES_DIR = "images"',
            'IMAGES = ["images/toy_a.png", "images/toy_b.png"]',
            "TRAIN_STEPS = 3",
            "SIZE = 32",
            f"FRAMES = {STEPS}",
            "FPS = 10",
            "LOOP = False",
            "BOOMERANG = False",
            f"OUT = {str(out)!r}",
            "GIF_MAX_SIDE = 64",
            'PRESET = "best"',
            'SETTINGS = {"seed": 0, "plain": True}',
        ]
    )
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=300, resources={"metadata": {"path": str(REPO)}})
    client.execute()  # raises CellExecutionError if a cell fails
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source[:60]
    assert out.is_file() and out.with_suffix(".gif").is_file()
    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == STEPS  # one pair
    assert (out.parent / "seq_pairs" / "000_toy_a_to_toy_b" / "morph" / "maps.npz").is_file()
    shown = [
        o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "display_data"
    ]
    assert any("<video" in o.get("data", {}).get("text/html", "") for o in shown)
    assert any("image/gif" in o.get("data", {}) for o in shown)
