"""One frozen dataclass holding every setting of a morph, and the defaults it uses.

The defaults are the original DiffMorph's constants (see ``docs/algorithm.md``); the
command line's parser reads them from here. Names: a *train step* is one Adam update
(the original's "epoch", flag ``-e``); a *frame* is one rendered image (the original's
"steps", flag ``--steps``).
"""

from __future__ import annotations

import dataclasses
import math

from .checks import as_python, is_bool, is_int, is_number

DEFAULT_SIZE = 1024  # working resolution S (pixels, square)
MAP_SIZE = 96  # the net's input size; its output is MAP_SIZE - 12 = 84
DEFAULT_TRAIN_STEPS = 1000  # Adam steps ("epochs" in the original)
LEARNING_RATE = 0.0002  # Adam, Keras defaults otherwise
DEFAULT_ADD_SCALE = 0.4  # a_s
DEFAULT_MULT_SCALE = 0.4  # m_s
DEFAULT_WARP_SCALE = 0.05  # w_s: flow in pixels = flow map * size * w_s
DEFAULT_FRAMES = 100  # rendered frames ("steps" in the original)
DEFAULT_FPS = 45
CONSISTENCY_WEIGHT = 1.0
IMAGE_WEIGHT = 0.3
MIN_SIZE = 16  # smallest working resolution accepted
MAX_SIZE = 2048  # largest: a 2048 step needs ~4x the memory of 1024 (~5 GB)
MAX_TRAIN_STEPS = 1_000_000
MIN_FRAMES = 2  # frames: first is the source, last the target
MAX_FRAMES = 100_000  # about 37 minutes at 45 fps
MIN_FPS, MAX_FPS = 0.1, 1000.0  # what both H.264 and GIF timing can hold
MULT_FLOOR = 0.1  # the colour multiplier is max(MULT_FLOOR, 1 + mult * m_s)
RENDER_MODES = ("native", "working")
RENDER_KERNELS = ("bilinear", "bicubic")  # how the frames sample the warped images
PACINGS = ("linear", "uniform")  # linear: the original's alpha_i = i / (n - 1)
EASES = ("none", "sine", "cubic")  # ease-in-out composed with the pacing
COLOUR_PATHS = ("none", "bures")  # bures: frame colours moved onto the W2 geodesic between the ends
MAX_HOLD = 10_000  # extra copies of the first and last frames
LR_SCHEDULES = ("constant", "cosine")  # Adam's learning rate over the train steps
POINT_WEIGHT = 0.0002  # point-pair loss per squared pixel of a 256 working image; used only with points
POINT_PRIORS = ("auto", "none", "tps")  # dense flow prior from the point pairs (auto: tps when pairs are given)
GEOMETRIES = ("auto", "scaled", "between")  # how frames are warped (auto: between for a guided morph)
COLOUR_MAPS = ("auto", "on", "off")  # the mult and add maps (auto: off for a guided morph)
POINT_CONSISTENCY_WEIGHT = 100.0  # a guided morph's consistency weight (tools/deform_bench.py)
MAX_SEED = 2**32  # seeds are [0, 2**32); the net's layers use seed, seed + 1, seed + 2
MAX_STAGES = 8  # coarse stages of a size schedule


@dataclasses.dataclass(frozen=True)
class MorphConfig:
    """All settings of one morph: the optimisation and the rendering.

    Attributes:
      size: working resolution S in pixels (16..2048); both images are resized to S x S.
      train_steps: number of Adam steps (1..1e6; the original's ``-e/--train_epochs``).
      add_scale, mult_scale, warp_scale: a_s, m_s, w_s of the original (finite, >= 0).
      add_first: apply the additive map before the multiplicative one.
      frames: number of rendered frames (2..100000; the original's ``--steps``).
      fps: frames per second of the video and GIF (0.1..1000).
      seed: seed of the net's initial weights in [0, 2**32); ``None`` draws a random one.
      learning_rate: Adam's learning rate (> 0).
      map_size: the net's input size (fixed by the original's net: 96).
      render: ``"native"`` renders frames at the source's own size; ``"working"``
        renders at S x S and resizes each frame (the original's path).
      render_kernel: ``"bilinear"`` (the original's warp) or ``"bicubic"``: the frames
        sample the colour-mapped images with OpenCV's bicubic ``remap`` (Keys, a = -0.75),
        which keeps more of the inputs' detail than bilinear weights at fractional offsets.
        Rendering only: the optimisation and the training snapshots stay bilinear.
      plain: run the plain path (four separate warps, no XLA), which computes the same
        values as the default fused, XLA-compiled train and render steps, slower.
      consistency_weight, image_weight: the loss's weights (the original's 1.0, 0.3).
      mult_floor: the colour gain is ``max(mult_floor, 1 + mult * m_s)`` (0.1).
      pacing: ``"linear"`` (the original's alphas) or ``"uniform"`` (alphas that even
        out the change between frames, :mod:`diffmorph.core.pacing`).
      ease: ``"none"``, ``"sine"`` or ``"cubic"`` ease-in-out, composed with the pacing.
      hold: extra copies of the first and last frames (0..10000), a rest on each image.
      colour_path: ``"none"`` or ``"bures"``: each frame's colours moved onto the W2
        geodesic between the end frames' colour statistics (:class:`~diffmorph.core.colour.ColourPath`).
      lr_schedule: ``"constant"`` (the original) or ``"cosine"``: the learning rate
        decays from ``learning_rate`` to 0 over ``train_steps`` (opt-in quality lever).
      point_weight: weight of the point-pair loss of a guided morph (finite, >= 0; per
        squared pixel of error measured at a 256 working size, so the same at every size;
        see ``docs/algorithm.md``, "Point pairs"); used only when point pairs are given,
        so it changes nothing otherwise.
      point_prior: a dense flow prior from the point pairs of a guided morph, which the
        net's flow refines (added to it): ``"tps"``, a thin-plate spline through the pairs
        (both directions, image border pinned), so the optimisation starts aligned;
        ``"none"``: no prior; ``"auto"`` (default): ``"tps"`` when point pairs are given.
        Without point pairs there is never a prior (see ``docs/algorithm.md``, "Large
        deformations").
      geometry: how a frame's two halves are warped. ``"scaled"``: the original's
        alpha-scaled backward flows; ``"between"``: both images are warped to the
        in-between geometry (each point of the source at ``(1 - alpha) a + alpha b``, as
        a classic morph does; :mod:`diffmorph.core.geometry`); ``"auto"`` (default):
        ``"between"`` for a guided morph, else ``"scaled"``, so an unguided morph renders
        as the original. Rendering only.
      colour_maps: ``"on"``: the mult and add maps change the colours (the original);
        ``"off"``: they are not used, so all change of shape is the warp's and the frames
        are warps plus a cross-dissolve (the colour maps otherwise paint the other image's
        features in place, a smeared, painted look when points move far); ``"auto"``
        (default): ``"off"`` for a guided morph, else ``"on"``.
      point_consistency_weight: the consistency weight a guided morph uses in place of
        ``consistency_weight`` (finite, >= 0; default 100): it keeps the two directions'
        flows each other's inverse, so both halves of a frame put the same content in
        the same place (``tools/deform_bench.py``; ``docs/algorithm.md``, "Large
        deformations").
      size_schedule: coarse-to-fine optimisation (opt-in; ``()``: every step at ``size``).
        ``((working size, fraction of train_steps), ...)`` in increasing sizes: the first
        ``fraction`` of the train steps run at that working size, and so on; the steps
        left run at ``size``. E.g. ``((128, 0.8),)`` with 1000 train steps: 800 at 128,
        200 at ``size``. The net always sees a 96 x 96 resize of its input and outputs
        84 x 84 maps whose flow is in units of the working size, so its weights and
        Adam's state carry over from stage to stage; the final maps are the same kind
        as without a schedule. A stage size at or above ``size`` runs at ``size``. See
        :meth:`stages`. Lists are accepted and stored as tuples.

    Raises:
      ValueError: on construction, naming the first invalid setting (see :meth:`problems`).

    Example:
      >>> from diffmorph import MorphConfig
      >>> config = MorphConfig(size=256, train_steps=200)  # the others: the original's defaults
      >>> config.size, config.train_steps, config.frames
      (256, 200, 100)
      >>> MorphConfig(size=8)
      Traceback (most recent call last):
      ValueError: size must be an integer from 16 to 2048 (got 8)
    """

    size: int = DEFAULT_SIZE
    train_steps: int = DEFAULT_TRAIN_STEPS
    add_scale: float = DEFAULT_ADD_SCALE
    mult_scale: float = DEFAULT_MULT_SCALE
    warp_scale: float = DEFAULT_WARP_SCALE
    add_first: bool = False
    frames: int = DEFAULT_FRAMES
    fps: float = DEFAULT_FPS
    seed: int | None = None
    learning_rate: float = LEARNING_RATE
    map_size: int = MAP_SIZE
    render: str = "native"
    render_kernel: str = "bilinear"
    plain: bool = False
    consistency_weight: float = CONSISTENCY_WEIGHT
    image_weight: float = IMAGE_WEIGHT
    mult_floor: float = MULT_FLOOR
    pacing: str = "linear"
    ease: str = "none"
    hold: int = 0
    colour_path: str = "none"
    lr_schedule: str = "constant"
    point_weight: float = POINT_WEIGHT
    point_prior: str = "auto"
    geometry: str = "auto"
    colour_maps: str = "auto"
    point_consistency_weight: float = POINT_CONSISTENCY_WEIGHT
    size_schedule: tuple[tuple[int, float], ...] = ()

    def __post_init__(self):
        schedule = self.size_schedule
        if isinstance(schedule, list | tuple) and all(isinstance(s, list | tuple) for s in schedule):
            object.__setattr__(self, "size_schedule", tuple(tuple(stage) for stage in schedule))  # JSON gives lists
        for name, problem in self.problems():
            raise ValueError(f"{name} {problem}")
        for field in dataclasses.fields(self):  # NumPy integers, floats and bools are stored as Python's
            value = getattr(self, field.name)
            if as_python(value) is not value:
                object.__setattr__(self, field.name, as_python(value))

    def problems(self) -> list[tuple[str, str]]:
        """Every invalid setting, as ``(field name, "must be ... (got ...)")`` pairs.

        The command line puts its flag's name in front of the text; library users see
        ``"train_steps must be ..."`` in the :class:`ValueError`.
        """
        out = []

        def integer(name, low, high):
            value = getattr(self, name)
            if not is_int(value) or not low <= value <= high:
                out.append((name, f"must be an integer from {low} to {high} (got {value!r})"))

        def scale(name):
            value = getattr(self, name)
            if not is_number(value) or not math.isfinite(value) or value < 0:
                out.append((name, f"must be a finite number >= 0 (got {value!r})"))

        integer("size", MIN_SIZE, MAX_SIZE)
        integer("train_steps", 1, MAX_TRAIN_STEPS)
        for name in ("add_scale", "mult_scale", "warp_scale"):
            scale(name)
        if not is_bool(self.add_first):
            out.append(("add_first", f"must be True or False (got {self.add_first!r})"))
        integer("frames", MIN_FRAMES, MAX_FRAMES)
        if not is_number(self.fps) or not MIN_FPS <= self.fps <= MAX_FPS:  # also refuses NaN
            out.append(("fps", f"must be between {MIN_FPS:g} and {MAX_FPS:g} (got {self.fps!r})"))
        if self.seed is not None and not (is_int(self.seed) and 0 <= self.seed < MAX_SEED):
            out.append(("seed", f"must be an integer in [0, {MAX_SEED}) (got {self.seed!r})"))
        if not is_number(self.learning_rate) or not math.isfinite(self.learning_rate) or self.learning_rate <= 0:
            out.append(("learning_rate", f"must be a finite number > 0 (got {self.learning_rate!r})"))
        integer("map_size", 13, 1024)
        if self.render not in RENDER_MODES:
            out.append(("render", f"must be one of {', '.join(RENDER_MODES)} (got {self.render!r})"))
        for name in ("consistency_weight", "image_weight", "mult_floor", "point_weight", "point_consistency_weight"):
            scale(name)
        for name, choices in (
            ("render_kernel", RENDER_KERNELS),
            ("pacing", PACINGS),
            ("ease", EASES),
            ("colour_path", COLOUR_PATHS),
            ("point_prior", POINT_PRIORS),
            ("geometry", GEOMETRIES),
            ("colour_maps", COLOUR_MAPS),
        ):
            if getattr(self, name) not in choices:
                out.append((name, f"must be one of {', '.join(choices)} (got {getattr(self, name)!r})"))
        integer("hold", 0, MAX_HOLD)
        if self.lr_schedule not in LR_SCHEDULES:
            out.append(("lr_schedule", f"must be one of {', '.join(LR_SCHEDULES)} (got {self.lr_schedule!r})"))
        problem = _schedule_problem(self.size_schedule)
        if problem:
            out.append(("size_schedule", f"{problem} (got {self.size_schedule!r})"))
        return out

    def stages(self) -> tuple[tuple[int, int], ...]:
        """The optimisation's stages: ``((working size, last train step), ...)``, 1-based, in order.

        Without a ``size_schedule``: ``((size, train_steps),)``. Stage ``i`` ends at train
        step ``round(train_steps * (f_1 + ... + f_i))`` (at most ``train_steps - 1``, so the
        last stage, at ``size``, always runs); empty stages are dropped and neighbours of
        the same working size merged.

        Example:
          >>> MorphConfig(size=512, train_steps=1000, size_schedule=((128, 0.6), (256, 0.2))).stages()
          ((128, 600), (256, 800), (512, 1000))
        """
        out: list[tuple[int, int]] = []
        total = 0.0
        for size, fraction in self.size_schedule:
            total += fraction
            end = min(round(self.train_steps * total), self.train_steps - 1)
            out.append((min(size, self.size), end))
        out.append((self.size, self.train_steps))
        stages: list[tuple[int, int]] = []
        start = 0
        for size, end in out:
            if end <= start:
                continue
            if stages and stages[-1][0] == size:
                stages[-1] = (size, end)
            else:
                stages.append((size, end))
            start = end
        return tuple(stages)

    def stage_config(self, size: int) -> MorphConfig:
        """The settings of a stage's optimiser: working size ``size``, no schedule (the rest as here)."""
        return self.replace(size=size, size_schedule=())

    def flow_scale(self, height: int | None = None, width: int | None = None) -> tuple[float, float]:
        """Pixels per unit of the flow maps, (dy scale, dx scale).

        At the working resolution both are ``size * warp_scale``; at an output of
        ``height x width`` they are ``height * warp_scale`` and ``width * warp_scale``,
        which is the same geometry measured in that output's pixels.
        """
        h = self.size if height is None else height
        w = self.size if width is None else width
        return (h * self.warp_scale, w * self.warp_scale)

    def for_guide(self, guided: bool) -> MorphConfig:
        """The settings with ``point_prior``, ``geometry`` and ``colour_maps`` ``"auto"`` resolved.

        ``guided``: point pairs are given. ``"auto"`` becomes ``"tps"`` / ``"between"`` /
        ``"off"`` for a guided morph and ``"none"`` / ``"scaled"`` / ``"on"`` otherwise;
        explicit values stay. A guided morph's ``consistency_weight`` becomes
        ``point_consistency_weight``.

        Example:
          >>> c = MorphConfig().for_guide(True)
          >>> c.point_prior, c.geometry, c.colour_maps, c.consistency_weight
          ('tps', 'between', 'off', 100.0)
          >>> MorphConfig().for_guide(False).geometry
          'scaled'
        """
        changes = {}
        if self.colour_maps == "auto":
            changes["colour_maps"] = "off" if guided else "on"
        if guided and self.consistency_weight != self.point_consistency_weight:
            changes["consistency_weight"] = self.point_consistency_weight
        if self.point_prior == "auto":
            changes["point_prior"] = "tps" if guided else "none"
        if self.geometry == "auto":
            changes["geometry"] = "between" if guided else "scaled"
        return self.replace(**changes) if changes else self

    def replace(self, **changes) -> MorphConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def _schedule_problem(schedule) -> str | None:
    """What is wrong with a ``size_schedule`` value, or None."""
    expected = "must be a tuple of (working size, fraction of train_steps) pairs"
    if not isinstance(schedule, tuple) or not all(isinstance(s, tuple) and len(s) == 2 for s in schedule):
        return expected
    if len(schedule) > MAX_STAGES:
        return f"must have at most {MAX_STAGES} stages"
    total = 0.0
    for size, fraction in schedule:
        if not is_int(size) or not MIN_SIZE <= size <= MAX_SIZE:
            return f"stage sizes must be integers from {MIN_SIZE} to {MAX_SIZE}"
        if not is_number(fraction) or not math.isfinite(fraction) or not 0 < fraction < 1:
            return "stage fractions must be numbers between 0 and 1 (exclusive)"
        total += fraction
    sizes = [size for size, _ in schedule]
    if any(b <= a for a, b in zip(sizes, sizes[1:])):
        return "stage sizes must increase"
    if total >= 1:
        return "stage fractions must add up to less than 1 (the last steps run at size)"
    return None


# The settings the maps depend on: maps made with other values mean something else.
MAPS_SETTINGS = ("size", "add_scale", "mult_scale", "warp_scale", "add_first", "map_size", "mult_floor")
# The settings that only change how maps are rendered into frames (not the optimisation).
RENDER_SETTINGS = ("frames", "fps", "render", "render_kernel", "pacing", "ease", "hold", "colour_path", "geometry")


# Named sets of settings applied to MorphConfig's defaults. "faithful" is the original
# DiffMorph; "best" is the quality preset chosen by tools/quality_bench.py; "fast" is
# coarse-to-fine with best's optimiser settings (faithful's rendering), chosen the same way;
# "preview" is a small, short run with fast's optimiser settings, for interactive use (the
# web app's first result), measured by ``python -m tools.bench --interactive``.
PRESETS: dict[str, dict] = {
    "faithful": {},
    "best": {
        "lr_schedule": "cosine",
        "learning_rate": 0.002,
        "mult_floor": 0.5,
        "render_kernel": "bicubic",
        "pacing": "uniform",
    },
    "preview": {  # a quick look (a new point pair's effect) in seconds: working size 128, 120 steps, 20 frames
        "size": 128,
        "train_steps": 120,
        "frames": 20,
        "lr_schedule": "cosine",
        "learning_rate": 0.002,
        "mult_floor": 0.5,
    },
    "fast": {  # 800 of the 1000 train steps at working size 128, the last 200 at size
        "size_schedule": ((128, 0.8),),
        "lr_schedule": "cosine",
        "learning_rate": 0.002,
        "mult_floor": 0.5,
    },
}


def preset_config(name: str, **explicit) -> MorphConfig:
    """A :class:`MorphConfig` with preset ``name``'s settings; ``explicit`` settings win.

    Args:
      name: a key of :data:`PRESETS` (``"faithful"``: the original's defaults;
        ``"best"``: the quality preset; ``"fast"``: coarse-to-fine, faithful's quality sooner;
        ``"preview"``: working size 128, 120 train steps, 20 frames: a quick look).
      explicit: MorphConfig fields given by the caller; they override the preset's values.

    Raises:
      ValueError: if ``name`` is not a preset (the message lists them), or a setting is
        invalid or unknown.

    Example:
      >>> from diffmorph import MorphConfig, preset_config
      >>> best = preset_config("best", size=512)
      >>> best.size, best.lr_schedule, preset_config("faithful") == MorphConfig()
      (512, 'cosine', True)
    """
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)} (got {name!r})")
    fields = {f.name for f in dataclasses.fields(MorphConfig)}
    unknown = sorted(set(explicit) - fields)
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r} (settings: {', '.join(sorted(fields))})")
    return MorphConfig(**{**PRESETS[name], **explicit})
