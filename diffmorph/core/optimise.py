"""The loss and the Adam loop that fits the map net to one image pair.

One train step ("epoch" in the original) evaluates the net, upsamples its output to the
working size (the 16 channels of maps; "preds" in the original), and minimises::

    loss = 1.0 * MSE(input, warp(warp(input, flow A->B), flow B->A))   # consistency
         + 0.3 * MSE(warp_A->B(A), B) + 0.3 * MSE(warp_B->A(B), A)

with Adam (lr 0.0002, Keras defaults otherwise). Every MSE is the mean over all
elements. The core yields :class:`StepRecord` and writes no files. Specification:
``docs/algorithm.md``, "Loss and optimiser" and "Snapshots during optimisation".

Opt-in quality lever (off by default, so the default run is the original's; chosen by
``tools/quality_bench.py``, see ``MorphConfig`` and ``PRESETS["best"]``):

* ``lr_schedule="cosine"``: the learning rate decays from ``learning_rate`` to 0 over
  ``train_steps`` along a half cosine (Keras ``CosineDecay``; Loshchilov & Hutter,
  SGDR, https://arxiv.org/abs/1608.03983), which allows a higher peak rate.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator

import keras
import numpy as np
import tensorflow as tf

from ..config import MorphConfig
from ..errors import NonFiniteLossError
from .maps import apply_maps, colour_transform, flow_pixels, split_maps
from .model import KERNEL, NET_NAME, FastUpsampler, build_map_net, build_net_input, shrink_input, upsample_maps
from .points import padded_points, point_capacity, point_loss
from .warp import dense_image_warp, warp_many

__all__ = [
    "Trainer",
    "StagedTrainer",
    "StepRecord",
    "NonFiniteLossError",
    "optimise",
    "is_snapshot_step",
    "morph_loss",
    "morph_loss_fused",
    "learning_rate_schedule",
]


def mse(a, b):
    """Mean squared error over all elements (Keras ``MeanSquaredError`` on one batch)."""
    return tf.reduce_mean(tf.square(a - b))


def weighted_loss(net_input, back, warped_a, warped_b, source, target, config: MorphConfig):
    """``consistency_weight * MSE(input, back) + image_weight * (MSE(a2b, B) + MSE(b2a, A))``
    as the original sums it (each term weighted on its own)."""
    return (
        config.consistency_weight * mse(net_input, back)
        + config.image_weight * mse(warped_a, target)
        + config.image_weight * mse(warped_b, source)
    )


def learning_rate_schedule(config: MorphConfig):
    """Adam's learning rate for ``config``: a number, or a schedule of the update count.

    ``"constant"``: ``config.learning_rate`` (the original). ``"cosine"``: Keras
    ``CosineDecay``, ``learning_rate * (1 + cos(pi * k / train_steps)) / 2`` at the
    0-based update ``k``. The schedule follows Adam's own update count, so a resumed
    run continues it; it is laid out over ``config.train_steps``.
    """
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, config.train_steps)
    return config.learning_rate


def morph_loss(maps, net_input, source, target, config: MorphConfig, points=None, point_scale=1.0, point_count=None):
    """DiffMorph's loss, written as the original does it: four separate warps.

    Args:
      maps: float32 ``(1, S, S, 16)`` maps at the working size.
      net_input: float32 ``(1, S, S, 8)`` net input (grid, A * 0.1, B * 0.1).
      source, target: float32 ``(1, S, S, 3)`` in [-1, 1].
      config: the morph's settings.
      points: float32 ``(N, 4)`` point pairs as fractions of their images (a guided
        morph: :func:`~diffmorph.core.points.point_loss` times ``point_scale`` is
        added), or ``None``.
      point_scale: a factor on the point loss (a scalar or variable; 1 normally).
      point_count: how many rows of ``points`` are pairs (the rest padding), or ``None``: all.

    Returns:
      float32 scalar.
    """
    fs = config.flow_scale()
    a_to_b, b_to_a = split_maps(maps)
    warped_a = apply_maps(source, a_to_b, config, fs)  # (1, S, S, 3)
    warped_b = apply_maps(target, b_to_a, config, fs)  # (1, S, S, 3)
    there = dense_image_warp(net_input, flow_pixels(a_to_b.flow, fs))  # (1, S, S, 8)
    back = dense_image_warp(there, flow_pixels(b_to_a.flow, fs))  # (1, S, S, 8)
    loss = weighted_loss(net_input, back, warped_a, warped_b, source, target, config)
    return loss if points is None else loss + point_scale * point_loss(maps, points, config, point_count)


def morph_loss_fused(
    maps, net_input, source, target, config: MorphConfig, points=None, point_scale=1.0, point_count=None
):
    """The same loss as :func:`morph_loss`, with the warps that share a flow fused.

    The A->B image warp and the first consistency warp use the same flow, as do the
    B->A image warp and the second consistency warp, so each pair is one
    :func:`warp_many` call: the bilinear taps are computed once, the gradient is
    hand-written (in-place scatters), and the constant net input gets none. The
    values are identical.
    """
    fs = config.flow_scale()
    a_to_b, b_to_a = split_maps(maps)
    warped_a, there = warp_many(
        flow_pixels(a_to_b.flow, fs), [colour_transform(source, a_to_b, config)], constants=[net_input]
    )  # (1, S, S, 3), (1, S, S, 8)
    warped_b, back = warp_many(flow_pixels(b_to_a.flow, fs), [colour_transform(target, b_to_a, config), there])
    loss = weighted_loss(net_input, back, warped_a, warped_b, source, target, config)
    return loss if points is None else loss + point_scale * point_loss(maps, points, config, point_count)


def is_snapshot_step(step: int, last: int) -> bool:
    """The original's snapshot schedule (1-based ``step``), plus always the last step."""
    return (step < 100 and step % 10 == 0) or (step < 1000 and step % 100 == 0) or step % 1000 == 0 or step == last


@dataclasses.dataclass(frozen=True)
class StepRecord:
    """What one optimisation step reports.

    step: 1-based step number. loss: this step's loss (before its update).
    mean_loss: running mean of all losses so far (what the original displayed).
    maps_low: the net's output after this step's update, float32 ``(1, 84, 84, 16)``
    (see :meth:`Trainer.maps_low`), at snapshot steps (:func:`is_snapshot_step`),
    else ``None``.
    """

    step: int
    loss: float
    mean_loss: float
    maps_low: np.ndarray | None = None


class Trainer:
    """The map net, its Adam state and the step count for one image pair.

    The pair lives in non-trainable variables, so one Trainer (and its compiled
    programs) serves any number of pairs of the same working size: :meth:`reset`
    starts over on another pair. A sequence of pairs therefore compiles once and its
    memory stays flat.

    Args:
      source, target: float32 ``(1, S, S, 3)`` in [-1, 1], S = ``config.size``.
      config: the morph's settings (the fused XLA step unless ``config.plain``).

    Raises:
      ValueError: if the images do not have that shape.
    """

    def __init__(self, source: np.ndarray, target: np.ndarray, config: MorphConfig):
        self.config = config
        self._check(source, target)
        net_input = build_net_input(source, target)  # (1, S, S, 8)
        self.source = tf.Variable(source, trainable=False, dtype=tf.float32)
        self.target = tf.Variable(target, trainable=False, dtype=tf.float32)
        self.net_input = tf.Variable(net_input, trainable=False)
        self.small_input = tf.Variable(shrink_input(net_input, config), trainable=False)  # (1, 96, 96, 8)
        self.net = build_map_net(config)
        self.optimizer = keras.optimizers.Adam(learning_rate=learning_rate_schedule(config), name="adam")
        self.optimizer.build(self.net.trainable_variables)
        self.step_count = 0
        self.loss_sum = 0.0
        # point pairs of a guided morph (fractions of their images, see set_points); the
        # unguided step is traced without them, so an unguided morph is unchanged
        # padded to point_capacity rows, so the compiled loss is reused when pairs are added
        # (its shape changes only at 8, 16, 32... pairs); point_count rows are pairs
        self.points = tf.Variable(np.zeros((0, 4), np.float32), trainable=False, shape=tf.TensorShape([None, 4]))
        self.point_count = tf.Variable(1.0, trainable=False)
        self.guided = False
        self.point_scale = tf.Variable(1.0, trainable=False)  # a factor on the point loss (a schedule may change it)
        # the dense flow prior of a guided morph (point_prior="tps"), added to the net's output;
        # the step is traced without it when there is none
        low_size = config.map_size - 3 * (KERNEL - 1)
        self.prior = tf.Variable(np.zeros((1, low_size, low_size, 16), np.float32), trainable=False)
        self.has_prior = False
        self._predict_low = tf.function(self.net)
        if not config.plain:
            # The net runs once per step as plain TensorFlow ops on a tape (oneDNN runs its
            # 96 x 96 convolutions faster than XLA does); the upsample, its transpose and
            # the loss with its gradient are three XLA programs, and the chain rule between
            # them is written out. This beats the same work with the net under XLA (whose
            # backward pass ran the net forward again) and one XLA program for everything
            # (XLA fuses the upsample into its many consumers and recomputes it); the
            # figures are in docs/performance.md.
            low_size = config.map_size - 3 * (KERNEL - 1)
            self._upsample = FastUpsampler(low_size, config.size)
            self._upsample_xla = tf.function(self._upsample.forward, jit_compile=True)
            self._transpose_xla = tf.function(self._upsample.transpose, jit_compile=True)
            self._loss_grad_xla = tf.function(self._loss_and_grad, jit_compile=True)
            self._train_step = tf.function(self._chained_step)
        else:
            self._train_step = tf.function(self._step)

    def _check(self, source: np.ndarray, target: np.ndarray) -> None:
        expected = (1, self.config.size, self.config.size, 3)
        if source.shape != expected or target.shape != expected:
            raise ValueError(f"source and target must have shape {expected}; got {source.shape} and {target.shape}")

    def reset(self, source: np.ndarray, target: np.ndarray, seed: int | None = None) -> None:
        """Start over on another pair: new images, freshly initialised net, Adam at zero.

        With the same seed the net's weights equal a new Trainer's (Keras's seeded
        initialisers repeat their values), so a reset Trainer reproduces a fresh one.

        Args:
          source, target: float32 ``(1, S, S, 3)`` in [-1, 1].
          seed: the net's seed (``None``: random).

        Raises:
          ValueError: if the images do not have the working size.
        """
        self._check(source, target)
        net_input = build_net_input(source, target)
        self.source.assign(source)
        self.target.assign(target)
        self.net_input.assign(net_input)
        self.small_input.assign(shrink_input(net_input, self.config))
        self.net.initialise(seed)
        for variable in self.optimizer.variables:
            if not variable.path.endswith("/learning_rate"):
                variable.assign(tf.zeros_like(variable))
        self.step_count = 0
        self.loss_sum = 0.0
        self.set_points(None)

    def set_points(self, normalised: np.ndarray | None) -> None:
        """Guide the optimisation with point pairs, or stop guiding it (``None``).

        With ``config.point_prior`` ``"tps"`` (or ``"auto"``) the pairs' thin-plate-spline
        flow (:func:`~diffmorph.core.geometry.tps_prior`) is added to the net's output from
        then on, so the optimisation starts aligned and the net learns what is left.

        Args:
          normalised: float32 ``(N, 4)``, N >= 1: ``(source_x, source_y, target_x,
            target_y)`` as fractions of each image (:func:`diffmorph.io.points.normalise`);
            converted to working-size pixels at each step from ``config.size``.
        """
        self.guided = normalised is not None and len(normalised) > 0
        self.point_scale.assign(1.0)
        self.has_prior = False
        if not self.guided:
            self.points.assign(np.zeros((0, 4), np.float32))
            return
        self.points.assign(padded_points(normalised, point_capacity(len(normalised))))
        self.point_count.assign(float(len(normalised)))
        self.has_prior = self.config.for_guide(True).point_prior == "tps" and self.config.warp_scale > 0
        if self.has_prior:
            from .geometry import tps_prior

            self.prior.assign(tps_prior(normalised, self.prior.shape[1], self.config.warp_scale))

    def _maps(self, prior: bool = False):
        low = self.net(self.small_input)
        return upsample_maps(low + self.prior if prior else low, self.config.size)  # (1, S, S, 16)

    def _step(self, guided: bool, prior: bool = False):
        """Plain path: one graph, autodiff through the four separate warps."""
        variables = self.net.trainable_variables
        points = self.points if guided else None
        with tf.GradientTape() as tape:
            loss = morph_loss(
                self._maps(prior),
                self.net_input,
                self.source,
                self.target,
                self.config,
                points,
                self.point_scale,
                self.point_count,
            )
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def _loss_and_grad(self, maps, guided: bool):
        points = self.points if guided else None
        with tf.GradientTape() as tape:
            tape.watch(maps)
            loss = morph_loss_fused(
                maps, self.net_input, self.source, self.target, self.config, points, self.point_scale, self.point_count
            )
        return loss, tape.gradient(loss, maps)  # scalar, (1, S, S, 16)

    def _chained_step(self, guided: bool, prior: bool = False):
        """Fast path: the same gradient as :meth:`_step`, by the chain rule over the net
        (on a tape) and three XLA programs (upsample, loss and gradient, transpose).
        The prior is a constant added to the net's output: the gradient is unchanged by it."""
        variables = self.net.trainable_variables
        with tf.GradientTape() as tape:
            maps_low = self.net(self.small_input)  # (1, n, n, 16)
        total = maps_low + self.prior if prior else maps_low
        loss, maps_grad = self._loss_grad_xla(self._upsample_xla(total), guided)  # scalar, (1, S, S, 16)
        grads = tape.gradient(maps_low, variables, output_gradients=self._transpose_xla(maps_grad))
        self.optimizer.apply_gradients(zip(grads, variables))
        return loss

    def step(self) -> float:
        """Run one Adam step; return its loss (computed before the update)."""
        loss = float(self._train_step(self.guided, self.has_prior) if self.has_prior else self._train_step(self.guided))
        self.step_count += 1
        self.loss_sum += loss
        return loss

    def maps_low(self) -> np.ndarray:
        """The net's current output, float32 ``(1, 84, 84, 16)`` (``map_size - 12``),
        plus the point pairs' flow prior when there is one (:meth:`set_points`).

        The working-size maps are ``model.upsample_maps(maps_low, size)``: a deterministic
        bilinear resize, so storing ``maps_low`` (450 KB) is storing the maps.
        """
        low = self._predict_low(self.small_input).numpy()
        return low + self.prior.numpy() if self.has_prior else low

    def maps(self) -> np.ndarray:
        """The current maps at the working size, float32 ``(1, S, S, 16)``."""
        return upsample_maps(self.maps_low(), self.config.size).numpy()

    def _variables(self) -> dict[str, tf.Variable]:
        """The variables a checkpoint holds, by stable name (Keras 3 ``variable.path``).

        Net weights are ``map_net/conv1/kernel`` ...; Adam's are ``adam/iteration`` and
        ``adam/map_net_conv1_kernel_momentum`` / ``..._velocity`` ... (its learning rate
        comes from the config, not the checkpoint).
        """
        named = {v.path: v for v in self.net.weights}
        named.update({v.path: v for v in self.optimizer.variables if not v.path.endswith("/learning_rate")})
        return named

    def state(self) -> dict[str, np.ndarray]:
        """Everything needed to resume: named net and Adam variables, step, loss sum."""
        out = {name: np.asarray(v.numpy()) for name, v in self._variables().items()}
        out["step"] = np.asarray(self.step_count, np.int64)
        out["loss_sum"] = np.asarray(self.loss_sum, np.float64)
        return out

    def load_state(self, state) -> None:
        """Restore what :meth:`state` returned (names and shapes must match this net).

        Also reads checkpoints of diffmorph 0.1, whose variables were keyed by
        position (``net_0`` ..., ``adam_0`` ...): :data:`LEGACY_KEYS` names them.

        Raises:
          ValueError: if a variable is missing or has another shape, or the step is
            not a non-negative integer.
        """
        if "net_0" in state:
            state = {LEGACY_KEYS.get(key, key): value for key, value in state.items()}
        variables = self._variables()
        for name, var in variables.items():
            if name not in state:
                raise ValueError(f"checkpoint does not match this net (no {name})")
            if tuple(np.shape(state[name])) != tuple(var.shape):
                raise ValueError(
                    f"checkpoint does not match this net ({name} has shape "
                    f"{tuple(np.shape(state[name]))}, expected {tuple(var.shape)})"
                )
        step = np.asarray(state.get("step", -1))
        if step.shape != () or step.dtype.kind not in "iu" or int(step) < 0:
            raise ValueError("checkpoint does not match this net (bad step count)")
        for name, var in variables.items():
            var.assign(np.asarray(state[name], var.dtype))
        self.step_count = int(step)
        self.loss_sum = float(np.asarray(state.get("loss_sum", 0.0)))


def _legacy_keys() -> dict[str, str]:
    """diffmorph 0.1's positional checkpoint keys and the variables they held.

    0.1 wrote ``net.weights`` and ``optimizer.variables`` in Keras 3's order: each
    conv's kernel then bias; Adam's iteration, learning rate, then momentum and
    velocity for each net weight in the same order.
    """
    weights = [f"{NET_NAME}/{layer}/{part}" for layer in ("conv1", "conv2", "conv_out") for part in ("kernel", "bias")]
    keys = {f"net_{i}": name for i, name in enumerate(weights)}
    adam = ["adam/iteration", "adam/learning_rate"]
    for name in weights:
        flat = name.replace("/", "_")
        adam += [f"adam/{flat}_momentum", f"adam/{flat}_velocity"]
    keys.update({f"adam_{i}": name for i, name in enumerate(adam)})
    return keys


LEGACY_KEYS = _legacy_keys()


def optimise(trainer: Trainer, train_steps: int, last: int | None = None) -> Iterator[StepRecord]:
    """Step ``trainer`` until it has done ``train_steps`` steps, yielding after each.

    Resumes from ``trainer.step_count`` (0 for a fresh trainer). ``last``: the whole
    optimisation's last step, for the snapshot schedule (default ``train_steps``; a
    stage of a coarse-to-fine run stops before it).

    Raises:
      NonFiniteLossError: as soon as a step's loss is NaN or infinite.
    """
    while trainer.step_count < train_steps:
        loss = trainer.step()
        step = trainer.step_count
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"the loss became {loss} at step {step}; the scales are likely too large "
                f"(add_scale={trainer.config.add_scale}, mult_scale={trainer.config.mult_scale}, "
                f"warp_scale={trainer.config.warp_scale})"
            )
        maps_low = trainer.maps_low() if is_snapshot_step(step, last or train_steps) else None
        yield StepRecord(step, loss, trainer.loss_sum / step, maps_low)


class StagedTrainer:
    """Coarse-to-fine optimisation: one :class:`Trainer` per working size of ``config.stages()``.

    The net's input is always a 96 x 96 resize, its output 84 x 84 maps whose flow is in
    units of the working size, so its weights and Adam's state (and the step count, which
    drives the learning-rate schedule) pass unchanged from one stage's Trainer to the
    next through :meth:`Trainer.state` / :meth:`Trainer.load_state`. Without a
    ``size_schedule`` it is the final Trainer alone, step for step the same.

    Args:
      final: the Trainer at ``final.config.size``; it holds the starting state (fresh,
        reset or loaded from a checkpoint) and the finished one.
      config: the run's settings (default ``final.config``): its ``train_steps`` and
        ``size_schedule`` make the stages.
      trainer_at: makes (or returns, ready for this pair) the Trainer of a coarse stage's
        working size, e.g. ``lambda s: Trainer(to_working(a, s), to_working(b, s),
        config.stage_config(s))``.

    Attributes:
      current: the Trainer that ran the latest step (its :meth:`Trainer.state` is the newest).
    """

    def __init__(self, final: Trainer, trainer_at: Callable[[int], Trainer], config: MorphConfig | None = None):
        self.final = final
        self.current = final
        self._trainer_at = trainer_at
        # The run's settings: a Trainer kept compiled from an earlier run may hold another
        # train_steps (compile_key leaves it out where no schedule depends on it).
        self.config = final.config if config is None else config

    def stage_size(self, step: int) -> int:
        """The working size at which 1-based train ``step`` runs."""
        return next(size for size, end in self.config.stages() if step <= end)

    def run(self) -> Iterator[StepRecord]:
        """Every remaining train step of every stage (from ``current.step_count``), as :func:`optimise` yields them.

        Raises:
          NonFiniteLossError: as :func:`optimise`.
        """
        for size, end in self.config.stages():
            if end <= self.current.step_count:
                continue
            trainer = self.final if size == self.config.size else self._trainer_at(size)
            if trainer is not self.current:
                trainer.load_state(self.current.state())
                self.current = trainer
            yield from optimise(trainer, end, last=self.config.train_steps)
