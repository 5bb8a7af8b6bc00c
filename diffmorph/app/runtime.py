"""Loading TensorFlow quietly, with a persistent compilation cache, once the cheap checks have passed."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from ..io.stderr import captured_stderr

CACHE_ENV = "DIFFMORPH_CACHE_DIR"  # the cache folder; empty: no persistent cache
XLA_CACHE_FLAG = "--tf_xla_persistent_cache_directory"
_IMPORT_LOCK = threading.Lock()  # one thread imports TensorFlow and swaps fd 2; the others wait for it
_READY = threading.Event()  # TensorFlow is imported and its devices initialised
ALLOCATOR_ENV = "TF_CPU_ALLOCATOR_USE_BFC"  # TensorFlow reads it once, when it starts


def xla_cache_dir() -> Path | None:
    """Where compiled XLA programs are kept between runs, or None (no persistent cache).

    ``$DIFFMORPH_CACHE_DIR/xla`` if that variable is set (an empty value turns the cache
    off), else ``xla`` in the user's cache folder (``platformdirs.user_cache_dir``:
    ``~/.cache/diffmorph`` on Linux). A second run at the same size then loads its
    programs instead of compiling them. Delete the folder to clear it.
    """
    value = os.environ.get(CACHE_ENV)
    if value == "":
        return None
    if value is None:
        import platformdirs

        value = platformdirs.user_cache_dir("diffmorph", appauthor=False)
    return Path(value) / "xla"


def _enable_xla_cache() -> None:
    """Point TensorFlow's persistent XLA cache at :func:`xla_cache_dir` (before TensorFlow starts).

    Left alone when ``TF_XLA_FLAGS`` already names a cache, when the folder cannot be
    made, or when its path has a space (``TF_XLA_FLAGS`` is split on spaces).
    """
    flags = os.environ.get("TF_XLA_FLAGS", "")
    folder = xla_cache_dir()
    if folder is None or XLA_CACHE_FLAG in flags or " " in str(folder):
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    os.environ["TF_XLA_FLAGS"] = f"{flags} {XLA_CACHE_FLAG}={folder}".strip()


def use_bfc_allocator() -> bool:
    """Ask TensorFlow for its BFC CPU allocator, unless the user chose (before TensorFlow starts).

    TensorFlow's default CPU allocator hands each tensor to ``malloc``; a train step at
    working size 1024 allocates ~0.9 GB of large buffers, which glibc maps fresh from the
    kernel and returns after the step, so on some hosts (VMs especially) every step pays
    for ~228 K minor page faults and ~0.6 s of system time. The BFC ("best-fit with
    coalescing") allocator keeps the memory it grew and reuses it: the same values, bit
    for bit, without the faults. Sets ``TF_CPU_ALLOCATOR_USE_BFC=true`` only where it is
    not set at all, so ``TF_CPU_ALLOCATOR_USE_BFC=false`` (or any value) in the
    environment is left alone; useless once TensorFlow has started.

    Returns:
      True if this call set it.
    """
    if ALLOCATOR_ENV in os.environ:
        return False
    os.environ[ALLOCATOR_ENV] = "true"
    return True


def import_tensorflow_quietly(threads: int | None = None) -> None:
    """Import TensorFlow and initialise its devices with stderr (fd 2) muted.

    TensorFlow 2.21 prints C++ INFO lines and, without a GPU driver, a cuInit error
    before ``TF_CPP_MIN_LOG_LEVEL`` takes effect; they are noise to a user. Python
    exceptions (and Ctrl-C) still propagate, with stderr restored first. Cheap when
    TensorFlow is already loaded. Also turns on the persistent compilation cache
    (:func:`xla_cache_dir`) and the BFC CPU allocator (:func:`use_bfc_allocator`) when
    TensorFlow was not loaded yet.

    Thread-safe: calls from several threads at once import TensorFlow once (the
    others wait for it), so pipelines may run in server threads.

    ``threads``: TensorFlow's intra- and inter-op thread counts, set before its runtime
    starts (a cluster worker sharing a machine with others); ignored when TensorFlow was
    already loaded (its runtime is then started).
    """
    if _READY.is_set():
        return
    with _IMPORT_LOCK:
        if not _READY.is_set():
            _import_quietly(threads)
            _READY.set()


def _import_quietly(threads: int | None) -> None:
    if "tensorflow" not in sys.modules:  # else imported by the caller: only initialise its devices
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        _enable_xla_cache()
        use_bfc_allocator()
    with captured_stderr(keep=False):
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        tf.constant(0.0).numpy()
