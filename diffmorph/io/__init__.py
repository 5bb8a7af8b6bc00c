"""Files in and out: images, atomic writes, maps files, video and frame writers.

The bottom layer: it imports no TensorFlow and nothing from ``diffmorph.core``,
``diffmorph.app`` or ``diffmorph.cli``.
"""
