"""One frozen dataclass holding every setting of a morph, and the defaults it uses.

The defaults are the original DiffMorph's constants (see
``shared/reference/diffmorph-algorithm.md``); the CLI's parser reads them from here.
"""

from __future__ import annotations

import dataclasses
import math

DEFAULT_SIZE = 1024  # working resolution S (pixels, square)
MAP_SIZE = 96  # the net's input size; its output is MAP_SIZE - 12 = 84
DEFAULT_EPOCHS = 1000  # optimisation steps ("epochs" in the original)
LEARNING_RATE = 0.0002  # Adam, Keras defaults otherwise
DEFAULT_ADD_SCALE = 0.4  # a_s
DEFAULT_MULT_SCALE = 0.4  # m_s
DEFAULT_WARP_SCALE = 0.05  # w_s: flow in pixels = flow map * size * w_s
DEFAULT_STEPS = 100  # rendered frames
DEFAULT_FPS = 45
CONSISTENCY_WEIGHT = 1.0
IMAGE_WEIGHT = 0.3
MIN_SIZE = 16  # smallest working resolution accepted
MIN_STEPS = 2  # frames: first is the source, last the target
MIN_FPS, MAX_FPS = 0.1, 1000.0  # what both H.264 and GIF timing can hold
MULT_FLOOR = 0.1  # the colour multiplier is max(MULT_FLOOR, 1 + mult * m_s)
RENDER_MODES = ("native", "working")
MAX_SEED = 2**32  # seeds are [0, 2**32); the net's layers use seed, seed + 1, seed + 2


@dataclasses.dataclass(frozen=True)
class MorphConfig:
    """All settings of one morph: the optimisation and the rendering.

    Attributes:
      size: working resolution S in pixels; both images are resized to S x S.
      epochs: number of Adam steps (>= 1).
      add_scale, mult_scale, warp_scale: a_s, m_s, w_s of the original (finite, >= 0).
      add_first: apply the additive map before the multiplicative one.
      steps: number of rendered frames (>= 2).
      fps: frames per second of the video and GIF (> 0).
      seed: seed of the net's initial weights; ``None`` draws a random one.
      learning_rate: Adam's learning rate.
      map_size: the net's input size (fixed by the original's net: 96).
      render: ``"native"`` renders frames at the source's own size; ``"working"``
        renders at S x S and resizes each frame (the original's path).
      fast: use the fused, XLA-compiled train and render steps; ``False`` runs the
        plain path (four separate warps, no XLA), which computes the same values.
      consistency_weight, image_weight: the loss's weights (the original's 1.0, 0.3).
      mult_floor: the colour gain is ``max(mult_floor, 1 + mult * m_s)`` (0.1).
    """

    size: int = DEFAULT_SIZE
    epochs: int = DEFAULT_EPOCHS
    add_scale: float = DEFAULT_ADD_SCALE
    mult_scale: float = DEFAULT_MULT_SCALE
    warp_scale: float = DEFAULT_WARP_SCALE
    add_first: bool = False
    steps: int = DEFAULT_STEPS
    fps: float = DEFAULT_FPS
    seed: int | None = None
    learning_rate: float = LEARNING_RATE
    map_size: int = MAP_SIZE
    render: str = "native"
    fast: bool = True
    consistency_weight: float = CONSISTENCY_WEIGHT
    image_weight: float = IMAGE_WEIGHT
    mult_floor: float = MULT_FLOOR

    def __post_init__(self):
        for problem in self.problems():
            raise ValueError(problem)

    def problems(self) -> list[str]:
        """Every reason this configuration is invalid, as user-facing sentences."""
        out = []
        if not isinstance(self.size, int) or self.size < MIN_SIZE:
            out.append(f"--size must be an integer >= {MIN_SIZE} (got {self.size})")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            out.append(f"--train_epochs must be an integer >= 1 (got {self.epochs})")
        for flag, value in (("--add_scale", self.add_scale), ("--mult_scale", self.mult_scale),
                            ("--warp_scale", self.warp_scale)):
            if not math.isfinite(value) or value < 0:
                out.append(f"{flag} must be a finite number >= 0 (got {value})")
        if not isinstance(self.steps, int) or self.steps < MIN_STEPS:
            out.append(f"--steps must be an integer >= {MIN_STEPS} (got {self.steps})")
        if not MIN_FPS <= self.fps <= MAX_FPS:  # also refuses NaN
            out.append(f"--fps must be between {MIN_FPS:g} and {MAX_FPS:g} (got {self.fps})")
        if not math.isfinite(self.learning_rate) or self.learning_rate <= 0:
            out.append(f"learning rate must be > 0 (got {self.learning_rate})")
        if self.seed is not None and not (isinstance(self.seed, int) and 0 <= self.seed < MAX_SEED):
            out.append(f"--seed must be an integer in [0, {MAX_SEED}) (got {self.seed})")
        if self.map_size < 13:
            out.append(f"map_size must be >= 13 (got {self.map_size})")
        if self.render not in RENDER_MODES:
            out.append(f"--render must be one of {', '.join(RENDER_MODES)} (got {self.render!r})")
        return out

    def flow_scale(self, height: int | None = None, width: int | None = None) -> tuple[float, float]:
        """Pixels per unit of the flow maps, (dy scale, dx scale).

        At the working resolution both are ``size * warp_scale``; at an output of
        ``height x width`` they are ``height * warp_scale`` and ``width * warp_scale``,
        which is the same geometry measured in that output's pixels.
        """
        h = self.size if height is None else height
        w = self.size if width is None else width
        return (h * self.warp_scale, w * self.warp_scale)

    def replace(self, **changes) -> "MorphConfig":
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)
