"""Measuring a morph frame by frame without holding it: :class:`PathMeter` and :func:`measure`.

The measures are :mod:`diffmorph.core.metrics`'s; the result's layout is
:mod:`diffmorph.core.report_layout`'s. :class:`PathMeter` takes frames one at a time
and keeps only the previous frame, the first, the middle, per-frame numbers and the
small copies waiting for ``d_i``, which a background thread computes (TensorFlow runs
outside the interpreter lock, so the distances overlap the decoding and the other
measures).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .colour import Gaussian, w2_gaussian
from .colour.geodesic import Geodesic
from .metrics import (
    DISTANCE_SIDE,
    check_frame,
    colour_stats,
    compare,
    distance_copy,
    mean_abs_diff,
    msssim,
    msssim_scales,
    sharpness,
)
from .report_layout import colour_entry, measures

QUEUED_PAIRS = 32  # frame pairs waiting for MS-SSIM at most (small copies: ~6 MB at 256 px)


class _DistanceWorker:
    """Computes ``1 - MS-SSIM`` of queued pairs of small copies in a background thread, in order.

    TensorFlow releases the interpreter lock while it computes, so the distances overlap
    the caller's decoding and per-frame measures (and, in a fresh process, TensorFlow's
    import happens in this thread on the first pair). A failure is raised by :meth:`finish`.
    """

    def __init__(self):
        from ..worker import Worker

        self.distances: list[float] = []
        self._worker = Worker(lambda pair: self.distances.append(1.0 - msssim(*pair)), QUEUED_PAIRS, "diffmorph-msssim")

    def put(self, a: np.ndarray, b: np.ndarray) -> None:
        self._worker.put((a, b))

    def stop(self) -> None:
        """End the thread without computing the queued pairs (after a failure elsewhere)."""
        self._worker.stop()

    def finish(self) -> list[float]:
        """Wait for the queued pairs; return every distance so far (or raise the worker's error)."""
        self._worker.finish()
        return self.distances


class PathMeter:
    """Measures a morph frame by frame without holding it (see :mod:`diffmorph.core.metrics`).

    Keeps the first frame, the previous frame, the middle frame, the previous frame's
    small copy for ``d_i``, and a few numbers per frame (two distances, sharpness, a
    colour Gaussian). The middle frame itself is needed only to compare it with a
    known midpoint (``truth``); the middle frame's other measures are per-frame numbers.
    With ``count`` given, the frame at ``(count - 1) // 2`` is kept as it passes;
    without it the frames from the running middle on are held until :meth:`result`
    (about half of them), so callers that can should pass the count.

    ``1 - MS-SSIM`` is computed in a background thread (at most :data:`QUEUED_PAIRS`
    pairs of small copies wait for it), so it overlaps the rest of the work.

    Args:
      count: the number of frames that will be added, if known. If another number
        arrives, the truth is compared with the frame kept at ``(count - 1) // 2``
        (the result's ``truth["frame"]`` says which frame was compared).
      side: long side of the copies ``1 - MS-SSIM`` uses (:func:`~diffmorph.core.metrics.distance_copy`).

    Use ``meter.add(frame)`` for each frame in order, then ``meter.result(...)``.
    """

    def __init__(self, count: int | None = None, side: int = DISTANCE_SIDE):
        if count is not None and count < 1:
            raise ValueError(f"count must be >= 1 (got {count})")
        self.count, self.side = count, side
        self.n = 0
        self.size: tuple[int, int] | None = None  # (H, W)
        self.first: np.ndarray | None = None
        self.previous: np.ndarray | None = None
        self._previous_small: np.ndarray | None = None
        self.kept: tuple[int, np.ndarray] | None = None  # (index, frame): the middle frame for count
        self._pending: deque = deque()  # (index, frame) after the running middle, when count is unknown
        self._worker: _DistanceWorker | None = None  # started with the second frame
        self.mad: list[float] = []  # mean absolute difference, n - 1 values
        self.sharpness: list[float] = []  # n values
        self.colours: list[Gaussian] = []  # n values

    def add(self, frame) -> None:
        """Measure the next frame, uint8 ``(H, W, 3)`` RGB.

        Raises:
          ValueError: wrong dtype or shape, or a size other than the first frame's.
        """
        frame = check_frame(frame)
        if self.size is None:
            self.size = frame.shape[:2]
            self.first = frame.copy()
        elif frame.shape[:2] != self.size:
            raise ValueError(
                f"frame {self.n} is {frame.shape[1]}x{frame.shape[0]}, the first frame {self.size[1]}x{self.size[0]}"
            )
        small = distance_copy(frame, self.side)
        if self.previous is not None:
            if self._worker is None:
                self._worker = _DistanceWorker()
            self._worker.put(self._previous_small, small)
            self.mad.append(mean_abs_diff(self.previous, frame))
        self.sharpness.append(sharpness(frame))
        self.colours.append(colour_stats(frame))
        index = self.n
        self.n += 1
        if self.count is not None:
            if index == (self.count - 1) // 2:
                self.kept = (index, frame.copy())
        else:
            self._pending.append((index, frame.copy()))
            while self._pending and self._pending[0][0] < (self.n - 1) // 2:
                self._pending.popleft()
        self.previous, self._previous_small = frame.copy(), small

    def close(self) -> None:
        """Stop the background thread if :meth:`result` will not be called (an error while adding)."""
        if self._worker is not None:
            self._worker.stop()

    def _middle_frame(self) -> tuple[int, np.ndarray] | None:
        """``(index, frame)`` of the middle frame (or of the one kept for ``count``), or None."""
        if self.count is not None:
            return self.kept
        index = (self.n - 1) // 2
        return next(((i, frame) for i, frame in self._pending if i == index), None)

    def result(self, source=None, target=None, truth=None) -> dict:
        """The measures as a JSON-able dict (floats, ints, lists, None for undefined).

        Args:
          source, target: the morph's inputs, uint8 ``(H, W, 3)`` of the frames' size,
            or None: the first (last) frame is compared with the source (target), and
            their sharpness is the reference of the middle frame's.
          truth: a known midpoint, uint8 ``(H, W, 3)``, or None: compared with the
            middle frame (its ``"frame"`` entry is the index compared).

        Returns:
          ``{"frames", "size": [H, W], "middle_index", "distance": {...}, "mad": {...},
          "endpoints": {"source": ..., "target": ...}, "sharpness": {...},
          "colour": {...}, "truth": ...}``; see the module docstring for the formulas
          and :func:`compare` for the fidelity entries.

        Raises:
          ValueError: fewer than 2 frames, an image of another size or type, or a
            truth while the middle frame was not kept (``count`` far above the frames added).
        """
        if self.n < 2:
            raise ValueError(f"a morph needs at least 2 frames; got {self.n}")
        images = {}
        for name, image in (("source", source), ("target", target), ("truth", truth)):
            if image is not None:
                image = check_frame(image, name)
                if image.shape[:2] != self.size:
                    raise ValueError(
                        f"{name} is {image.shape[1]}x{image.shape[0]}, the frames {self.size[1]}x{self.size[0]}"
                    )
                images[name] = image
        last = self.previous
        middle_index = (self.n - 1) // 2
        truth_entry = None
        if "truth" in images:
            kept = self._middle_frame()
            if kept is None:
                raise ValueError(f"the middle frame was not kept: told {self.count} frames, {self.n} were added")
            truth_entry = {"frame": kept[0], **compare(kept[1], images["truth"])}
        endpoints = {
            "source": compare(self.first, images["source"]) if "source" in images else None,
            "target": compare(last, images["target"]) if "target" in images else None,
        }
        if "source" in images and "target" in images:
            reference, reference_of = (sharpness(images["source"]) + sharpness(images["target"])) / 2, "inputs"
        else:
            reference, reference_of = (self.sharpness[0] + self.sharpness[-1]) / 2, "end frames"
        height, width = distance_copy(self.first, self.side).shape[:2]
        colour = self._colour_path(middle_index)  # while the background thread finishes the distances
        distances = self._worker.finish()
        return measures(
            frames=self.n,
            size=self.size,
            middle_index=middle_index,
            side=max(height, width),
            scales=msssim_scales(height, width),
            distances=distances,
            mad=self.mad,
            endpoints=endpoints,
            sharpness=self.sharpness,
            reference=reference,
            reference_of=reference_of,
            colour=colour,
            truth=truth_entry,
        )

    def _colour_path(self, middle_index: int) -> dict:
        """The colour-path entry of :meth:`result` (:mod:`diffmorph.core.metrics`, "Colour path")."""
        geodesic = Geodesic(self.colours[0], self.colours[-1])
        found = [geodesic.distance(g) for g in self.colours]
        return colour_entry(
            w2_ends=geodesic.length,
            distances=[w2_gaussian(a, b) for a, b in zip(self.colours[:-1], self.colours[1:])],
            deviation=[d for d, _ in found],
            geodesic_s=[s for _, s in found],
            middle_variance=float(np.trace(self.colours[middle_index].cov)),
            geodesic_mid_variance=float(np.trace(geodesic.at(0.5).cov)),
        )


def measure(frames, source=None, target=None, truth=None, side: int = DISTANCE_SIDE) -> dict:
    """:class:`PathMeter` over a sequence of frames (its length is taken if it has one).

    Returns:
      :meth:`PathMeter.result`.
    """
    meter = PathMeter(len(frames) if hasattr(frames, "__len__") else None, side)
    for frame in frames:
        meter.add(frame)
    return meter.result(source, target, truth)
