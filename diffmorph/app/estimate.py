"""How long a morph will take on this machine: a model of its seconds, calibrated by measured steps.

A run's time is (figures: ``docs/performance.md``)::

    start   = first_step_s per working size not compiled yet (trace, XLA compile or load) + render_start_s
    train   = sum over the stages of  steps * (step_s + step_s_per_megapixel * S^2 / 1e6)
    render  = frames * (frame_s + frame_s_per_megapixel * output megapixels)

A train step has a fixed part, the map net (its input is always 96 x 96, so it costs the
same at every working size S), and a part that grows with the working pixels (the
upsample, the four warps and the loss). :class:`Timing` holds the five figures: the
defaults were measured on the development machine; :func:`record_step` and
:func:`record_frame` take the figures of every run of this process (the optimiser and the
writer report them), and :func:`current_timing` fits the model to what was recorded, so
the second estimate of a session is this machine's. :func:`calibrate` measures a few
steps at two small sizes on purpose (a warm-up of about 10 s).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import threading
import time

from ..config import MorphConfig

__all__ = ["Timing", "Estimate", "estimate_seconds", "current_timing", "record_step", "record_frame", "calibrate"]


@dataclasses.dataclass(frozen=True)
class Timing:
    """The seconds of this machine's work that :func:`estimate_seconds` adds up.

    Attributes:
      step_s: a train step's fixed part (the map net), seconds.
      step_s_per_megapixel: a train step's part per megapixel of working image (S^2 / 1e6).
      first_step_s: the extra time of the first step at a working size in this process
        (tracing, XLA compilation or loading it from the persistent cache).
      render_start_s: the extra time of the first render of a process (tracing the render programs).
      frame_s: a frame's fixed part (rendering and encoding), seconds.
      frame_s_per_megapixel: a frame's part per output megapixel.
      source: where the figures come from (``"defaults"``, ``"measured: ..."``).
    """

    step_s: float = 0.050
    step_s_per_megapixel: float = 0.33
    first_step_s: float = 2.5
    render_start_s: float = 1.0
    frame_s: float = 0.01
    frame_s_per_megapixel: float = 0.25
    source: str = "defaults (Intel Xeon family 6 model 207, 2 cores)"

    def step_seconds(self, size: int) -> float:
        """One train step at working size ``size``, seconds."""
        return self.step_s + self.step_s_per_megapixel * size * size / 1e6

    def frame_seconds(self, height: int, width: int) -> float:
        """One rendered and encoded frame of ``height x width`` pixels, seconds."""
        return self.frame_s + self.frame_s_per_megapixel * height * width / 1e6


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A run's estimated seconds: ``start`` (tracing, compiling), ``train`` (the steps), ``render``."""

    start_s: float
    train_s: float
    render_s: float
    timing: Timing

    @property
    def total_s(self) -> float:
        return self.start_s + self.train_s + self.render_s

    def text(self) -> str:
        """One line for a page, e.g. ``about 25 s (start 3 s, train 20 s, render 2 s)``."""
        return (
            f"about {_duration(self.total_s)} (start {_duration(self.start_s)}, train {_duration(self.train_s)}, "
            f"render {_duration(self.render_s)})"
        )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def estimate_seconds(
    config: MorphConfig,
    output_size: tuple[int, int] | None = None,
    *,
    compiled: bool = False,
    timing: Timing | None = None,
) -> Estimate:
    """The seconds a morph of ``config`` will take on this machine (the module docstring's model).

    Args:
      config: the settings (working size, train steps, size schedule, frames, render mode).
      output_size: ``(height, width)`` of the frames (the source's size); default: the
        working size (what ``render="working"`` renders at before resizing).
      compiled: the optimiser and render programs of these settings are already compiled
        in this process (a second run: no start time; :func:`diffmorph.app.fit.is_compiled`).
      timing: the machine's figures (default :func:`current_timing`).

    Returns:
      :class:`Estimate`. Not counted: importing TensorFlow (once per process, ~4 s), the
      dense pass of uniform pacing, a colour path, a report.

    Example:
      >>> from diffmorph.config import MorphConfig
      >>> fixed = Timing(step_s=0.05, step_s_per_megapixel=0.3, first_step_s=2, render_start_s=1,
      ...                frame_s=0.01, frame_s_per_megapixel=0.2)
      >>> e = estimate_seconds(MorphConfig(size=1000, train_steps=100, frames=10), (500, 400), timing=fixed)
      >>> round(e.start_s, 3), round(e.train_s, 3), round(e.render_s, 3)
      (3.0, 35.0, 0.5)
      >>> estimate_seconds(MorphConfig(size=1000, train_steps=100, frames=10), compiled=True, timing=fixed).text()
      'about 37 s (start 0 s, train 35 s, render 2 s)'
    """
    timing = current_timing() if timing is None else timing
    height, width = output_size if output_size is not None else (config.size, config.size)
    train, done = 0.0, 0
    stages = config.stages()
    for size, end in stages:
        train += (end - done) * timing.step_seconds(size)
        done = end
    start = 0.0 if compiled else float(timing.first_step_s * len({size for size, _ in stages}) + timing.render_start_s)
    frames = config.frames + 2 * config.hold
    render = frames * timing.frame_seconds(height, width)
    return Estimate(start, train, render, timing)


# ----------------------------------------------------------------------------- what this process measured

_LOCK = threading.Lock()
_STEPS: dict[int, list[float]] = {}  # working size -> recent step seconds
_FRAMES: list[tuple[float, float]] = []  # (output megapixels, seconds) of recent frames
_KEPT = 200  # most recent figures kept per working size (and frames)


def record_step(size: int, seconds: float) -> None:
    """Record one train step of ``seconds`` at working ``size`` (not a first step: no tracing in it)."""
    if seconds > 0 and math.isfinite(seconds):
        with _LOCK:
            times = _STEPS.setdefault(int(size), [])
            times.append(float(seconds))
            del times[:-_KEPT]


def record_frame(height: int, width: int, seconds: float) -> None:
    """Record one frame of ``height x width`` rendered and encoded in ``seconds`` (not the first of a render)."""
    if seconds > 0 and math.isfinite(seconds):
        with _LOCK:
            _FRAMES.append((height * width / 1e6, float(seconds)))
            del _FRAMES[:-_KEPT]


def clear_records() -> None:
    """Forget what :func:`record_step` and :func:`record_frame` recorded."""
    with _LOCK:
        _STEPS.clear()
        _FRAMES.clear()


def _line(points: list[tuple[float, float]], default: tuple[float, float]) -> tuple[float, float]:
    """``(intercept, slope)`` of ``y = a + b * x`` through the points: least squares over two or
    more distinct x, else the default line scaled through the one point; never negative."""
    xs = sorted({x for x, _ in points})
    if len(xs) >= 2:
        mean_x = statistics.fmean(x for x, _ in points)
        mean_y = statistics.fmean(y for _, y in points)
        spread = sum((x - mean_x) ** 2 for x, _ in points)
        slope = max(sum((x - mean_x) * (y - mean_y) for x, y in points) / spread, 0.0)
        return max(mean_y - slope * mean_x, 0.0), slope
    if len(xs) == 1:
        y = statistics.fmean(y for _, y in points)
        expected = default[0] + default[1] * xs[0]
        return default[0] * y / expected, default[1] * y / expected
    return default


def current_timing(base: Timing | None = None) -> Timing:
    """``base`` (default :class:`Timing`'s defaults) with its step and frame figures fitted to
    what this process recorded (the median step time at each working size; the frames)."""
    base = Timing() if base is None else base
    with _LOCK:
        steps = [(size * size / 1e6, statistics.median(times)) for size, times in _STEPS.items() if times]
        frames = list(_FRAMES)
    if not steps and not frames:
        return base
    step = _line(steps, (base.step_s, base.step_s_per_megapixel)) if steps else None
    frame = _line(frames, (base.frame_s, base.frame_s_per_megapixel)) if frames else None
    sizes = ", ".join(str(round(math.sqrt(x * 1e6))) for x, _ in sorted(steps))
    return dataclasses.replace(
        base,
        step_s=step[0] if step else base.step_s,
        step_s_per_megapixel=step[1] if step else base.step_s_per_megapixel,
        frame_s=frame[0] if frame else base.frame_s,
        frame_s_per_megapixel=frame[1] if frame else base.frame_s_per_megapixel,
        source=f"measured in this process (train steps at working sizes {sizes or 'none'}, {len(frames)} frames)",
    )


def calibrate(sizes: tuple[int, ...] = (64, 256), steps: int = 5, seed: int = 0) -> Timing:
    """Measure train steps at ``sizes`` on random images (:func:`record_step`) and return :func:`current_timing`.

    Takes about ``len(sizes) * (first step + steps)`` train steps' time (~10 s on 2 cores);
    the first step at each size (tracing) is not recorded, its time sets ``first_step_s``.
    """
    import numpy as np

    from ..core.optimise import Trainer
    from .runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    rng = np.random.default_rng(seed)
    first = []
    for size in sizes:
        images = [rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32) for _ in range(2)]
        trainer = Trainer(*images, MorphConfig(size=size, seed=seed))
        clock = time.perf_counter()
        trainer.step()
        first.append(time.perf_counter() - clock)
        for _ in range(steps):
            clock = time.perf_counter()
            trainer.step()
            record_step(size, time.perf_counter() - clock)
    timing = current_timing()
    return dataclasses.replace(timing, first_step_s=max(statistics.median(first) - timing.step_s, 0.0))
