"""diffmorph: reference-point-free image morphing (a port of DiffMorph).

The public API (imported lazily: ``import diffmorph`` is cheap and loads no
TensorFlow)::

    import diffmorph

    result = diffmorph.morph("a.jpg", "b.jpg", "out", diffmorph.MorphConfig(size=256, train_steps=200))
    for frame in diffmorph.render_frames(result.maps_low, "a.jpg", "b.jpg", result.config):
        ...  # uint8 (H, W, 3) RGB
    for frame in diffmorph.stream_frames(result.maps_low, "a.jpg", "b.jpg", result.config):
        ...  # frame.pair, frame.index, frame.alpha, frame.image (uint8 (H, W, 3) RGB): previews
    diffmorph.morph_sequence(["a.jpg", "b.jpg", "c.jpg"], "show.mp4", loop=True)
    best = diffmorph.preset_config("best", size=512)  # the opt-in quality preset, size overridden
    diffmorph.morph("a.jpg", "b.jpg", "out", points="points.csv")  # guided: "this goes there" (or "auto", "faces")
    diffmorph.morph_sequence(images, "show.mp4", workers=4)  # pairs on a local Ray cluster ("cluster" extra)
    diffmorph.morph_batch("pairs.csv", "out")  # one folder per row; out/batch.json

Everything the command line does goes through these functions.
"""

from .version import __version__

_EXPORTS = {
    "MorphConfig": "diffmorph.config",
    "PRESETS": "diffmorph.config",
    "preset_config": "diffmorph.config",
    "OutputOptions": "diffmorph.app.write",
    "Progress": "diffmorph.app.progress",
    "BarProgress": "diffmorph.app.bars",
    "morph": "diffmorph.app.morph",
    "MorphResult": "diffmorph.app.morph",
    "render_frames": "diffmorph.app.morph",
    "stream_frames": "diffmorph.app.stream",
    "StreamFrame": "diffmorph.app.stream",
    "morph_sequence": "diffmorph.app.sequence",
    "SequenceResult": "diffmorph.app.sequence",
    "images_in": "diffmorph.app.sequence",
    "morph_batch": "diffmorph.app.batch",
    "BatchResult": "diffmorph.app.batch",
    "read_batch_csv": "diffmorph.app.batch",
    "load_image": "diffmorph.app.inputs",
    "clear_compiled": "diffmorph.app.fit",
    "is_compiled": "diffmorph.app.fit",
    "estimate_seconds": "diffmorph.app.estimate",
    "read_points": "diffmorph.io.points",
    "find_points": "diffmorph.app.points",
    "InputError": "diffmorph.errors",
    "OutputError": "diffmorph.errors",
    "NonFiniteLossError": "diffmorph.errors",
    "Interrupted": "diffmorph.errors",
    "Cancelled": "diffmorph.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'diffmorph' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
