"""Loading TensorFlow quietly, once the cheap checks have passed."""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and initialise its devices with stderr (fd 2) muted.

    TensorFlow 2.21 prints C++ INFO lines and, without a GPU driver, a cuInit error
    before ``TF_CPP_MIN_LOG_LEVEL`` takes effect; they are noise to a user. Python
    exceptions (and Ctrl-C) still propagate, with stderr restored first. Cheap when
    TensorFlow is already loaded.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
        tf.constant(0.0).numpy()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
