"""The web app's Auto points button with two portraits: the face landmark pairs fill the
editable table and the hint says what was used (no browser: the handler is called)."""

import types

import numpy as np
import pytest

from conftest import IMAGES, read_rgb
from diffmorph.core import faces

pytest.importorskip("gradio")


@pytest.mark.skipif(not faces.available(), reason="the faces extra is not installed")
def test_auto_points_fill_the_table_with_the_face_pairs(tmp_path):
    import matplotlib.cbook

    from diffmorph.web.app import Page
    from diffmorph.web.sessions import Sessions

    page = Page(Sessions(tmp_path))
    request = types.SimpleNamespace(session_hash="one")
    session = page.session(request)
    source = read_rgb(IMAGES / "astronaut.jpg")
    target = read_rgb(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    session.images.update(source=source, target=target)
    *_, rows, csv, hint = page.auto_pairs(request)
    expected = faces.face_pairs(source, target)
    assert len(expected) == 47 and [row[0] for row in rows] == list(range(1, 48))
    np.testing.assert_allclose([row[1:] for row in rows], expected)
    assert hint == "Found 47 point pairs (points auto: 47 face landmark pairs)."
    assert open(csv).read().count("\n") == 48  # the header and the 47 pairs, ready to download
