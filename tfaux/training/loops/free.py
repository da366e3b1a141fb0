"""`FreeATModel`: free adversarial training (Shafahi et al. 2019) with seed 004's variants.

Each minibatch is replayed m times inside one compiled step. The perturbation δ persists across
replays *and* batches; one backward pass gives both the weight gradient and ∇δ, so the attack is
"free". δ ← clip(δ + ε·sign(∇δ)) to the ε-ball and the valid pixel range. Training for epochs/m
keeps the number of gradient steps of natural training.

Seed 004's variants: a fraction γ of the replays train on δ (the rest on clean images), an
exponential moving average of δ (their losing variant, kept for the comparison), and schedules
that grow m and ε over training (their winning variant, `FreeSchedule`).

Under `tf.distribute`, δ is an ON_READ variable (one copy per replica, never aggregated) sized for
the per-replica batch and sliced to a short last batch; it is not in `model.weights`. On one
device the replays are a `tf.while_loop` (one replay traced); on several replicas an unrolled
Python loop, because `optimizer.apply` inside a graph loop fails under MirroredStrategy
("merge_call called while defining a new graph"). Both compute the same (tested: 1 vs 2 replicas).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tfaux.attacks.threat_model import check_eps, clip
from tfaux.models.aux_model import AuxModel
from tfaux.training.loop import Loop, register_loop
from tfaux.training.resume import assign_per_replica, per_replica_values


@keras.saving.register_keras_serializable(package="tfaux")
class FreeATModel(AuxModel):
    """An `AuxModel` trained with free adversarial training.

    Args:
        *args, **kwargs: `AuxModel` arguments (inputs, outputs, tasks, name).
        eps: L∞ budget ε (also the δ step size, as in Shafahi et al.).
        replays: m, the replays of each minibatch.
        batch_size: the global batch size (δ is sized for it).
        delta_fraction: γ, the fraction of replays that train on x + δ (evenly spread).
        delta_ema: β of an exponential moving average δ ← β·δ + (1−β)·δ_new; 0 disables it.
        delta_loss: what δ ascends: "classifier", the cross-entropy of the primary logits (as
            FGSM/PGD-AT and the papers; with aux tasks one more backward pass per replay, see
            `AuxModel.gradient_step`), or "total", the whole training loss with the aux terms.

    Reference:
        Shafahi et al., "Adversarial training for free!", NeurIPS 2019.
    """

    LOOP_PARAMS = ("eps", "replays", "batch_size", "delta_fraction", "delta_ema", "delta_loss")
    DELTA_LOSSES = {"classifier": "primary", "total": "loss"}  # → `gradient_step`'s names

    def __init__(
        self,
        *args,
        eps: float = 0.1,
        replays: int = 4,
        batch_size: int = 128,
        delta_fraction: float = 1.0,
        delta_ema: float = 0.0,
        delta_loss: str = "classifier",
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        check_eps(eps)
        if delta_loss not in self.DELTA_LOSSES:
            raise ValueError(
                f"Expected delta_loss in {tuple(self.DELTA_LOSSES)}. Received: "
                f"delta_loss={delta_loss!r}"
            )
        if replays < 1 or batch_size < 1:
            raise ValueError(
                f"Expected replays >= 1 and batch_size >= 1. Received: replays={replays}, "
                f"batch_size={batch_size}"
            )
        if not 0.0 < delta_fraction <= 1.0 or not 0.0 <= delta_ema < 1.0:
            raise ValueError(
                "Expected 0 < delta_fraction <= 1 and 0 <= delta_ema < 1. Received: "
                f"delta_fraction={delta_fraction}, delta_ema={delta_ema}"
            )
        self.eps, self.replays, self.batch_size = float(eps), int(replays), int(batch_size)
        self.delta_fraction, self.delta_ema = float(delta_fraction), float(delta_ema)
        self.delta_loss = delta_loss
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        self._delta = tf.Variable(
            # Two-view tasks double the batch (views are augmented once, replayed m times).
            tf.zeros((math.ceil(batch_size / replicas) * self.views, *self.input_shape[1:])),
            trainable=False,
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.NONE,
            name="free_delta",
        )
        self._current_eps = tf.Variable(self.eps, trainable=False, name="free_eps")

    # === Schedule ===
    @property
    def current_eps(self) -> float:
        return float(self._current_eps.numpy())

    def set_schedule(self, eps: float, replays: int) -> None:
        """Sets this epoch's ε and m; a new m retraces the step (the replays are unrolled)."""
        self._current_eps.assign(check_eps(eps))
        if int(replays) != self.replays:
            self.replays = max(1, int(replays))
            self.make_train_function(force=True)

    @property
    def steps_per_batch(self) -> int:
        return self.replays  # one optimizer step per replay

    def delta(self) -> tf.Tensor:
        """δ of this replica (the first replica's outside a replica context)."""
        return tf.convert_to_tensor(self._delta)

    # === Resume (`tfaux.training.resume.RunBackup`) ===
    def resume_state(self) -> dict:
        """δ of every replica: it persists across batches, so a resumed run needs it back.
        Under MultiWorkerMirroredStrategy every worker's, by a collective: call it on every
        worker (`RunBackup` does)."""
        return {str(i): v for i, v in enumerate(per_replica_values(self._delta))}

    def restore_resume_state(self, state: dict) -> None:
        assign_per_replica(self._delta, [state[str(i)] for i in range(len(state))])

    # === Step ===
    def train_step(self, data):
        x, y, originals = self.augment(*data)
        if tf.distribute.get_strategy().num_replicas_in_sync > 1:
            # `optimizer.apply` inside a graph loop fails under MirroredStrategy ("merge_call
            # called while defining a new graph"): the m replays are unrolled, traced m times.
            for replay in range(self.replays):
                self._replay(x, y, originals, tf.constant(replay))
        else:
            # One device: a graph loop traces one replay, as cheap to compile as natural training
            # (the unrolled step cost Free-AT 14 % more wall time than natural training).
            tf.while_loop(
                lambda replay: replay < self.replays,
                lambda replay: [self._replay(x, y, originals, replay)],
                [tf.constant(0)],
            )
        return {m.name: m.result() for m in self.metrics}

    def _replay(self, x, y, originals, replay: tf.Tensor) -> tf.Tensor:
        """One replay of the batch: a weight update on x + δ (or x) and δ's ascent step."""
        n = tf.shape(x)[0]
        uses_delta = self._uses_delta(replay)
        delta = self._delta[:n]
        # One step on x + δ (or x); its backward pass gives δ's gradient too (the CE's, by
        # default: with aux tasks, from a second backward pass)
        x_train = tf.where(uses_delta, clip(x + delta), x)
        outputs, terms, input_gradient = self.gradient_step(
            x, y, originals, x_train, input_gradient=self.DELTA_LOSSES[self.delta_loss]
        )
        self._update_delta(x, delta, input_gradient, self._current_eps, n, uses_delta)
        # Metrics
        self._update_metrics(y, outputs, terms)
        return replay + 1

    def _uses_delta(self, replay: tf.Tensor) -> tf.Tensor:
        """γ·m replays use δ, spread evenly (γ = 1: all; γ = 0.5: every second); float64, so the
        floors agree with Python's for every γ."""
        r = tf.cast(replay, tf.float64)
        return tf.floor((r + 1.0) * self.delta_fraction) > tf.floor(r * self.delta_fraction)

    def _update_delta(self, x, delta, gradient, eps, n, uses_delta):
        # Under mixed_float16 a step whose scaled loss overflowed has non-finite gradients: the
        # LossScaleOptimizer skips it, and δ must not become NaN either (sign(NaN) = NaN).
        gradient = tf.where(tf.math.is_finite(gradient), gradient, tf.zeros_like(gradient))
        new = tf.clip_by_value(delta + eps * tf.sign(gradient), -eps, eps)
        if self.delta_ema:
            new = self.delta_ema * delta + (1.0 - self.delta_ema) * new
        new = clip(x + new) - x  # keep x + δ a valid image
        new = tf.where(uses_delta, new, delta)  # a clean replay leaves δ as it was
        self._delta.assign(tf.concat([new, self._delta[n:]], axis=0))


class FreeSchedule(keras.callbacks.Callback):
    """Seed 004's winning variant: m and ε grow linearly over the first `ramp_epochs` epochs.

    Epoch e (0-based) trains with t = min(1, (e+1)/ramp_epochs), ε = t·ε_max and
    m = ⌊1 + t·(m_max − 1) + ½⌋ (halves round up, not to even as Python's `round`). The first
    epoch already trains on δ, at ε_max/ramp_epochs with m = ⌊1.5 + (m_max − 1)/ramp_epochs⌋
    (ε/4 and m = 2 for ramp 4 and m_max 4): gentler than the full ε and m, not natural data.
    Logs `free_eps` and `free_replays`.
    """

    def __init__(self, eps: float, replays: int, ramp_epochs: int):
        super().__init__()
        if ramp_epochs < 1:
            raise ValueError(f"Expected ramp_epochs >= 1. Received: ramp_epochs={ramp_epochs}")
        self.eps, self.replays, self.ramp_epochs = check_eps(eps), int(replays), int(ramp_epochs)

    def at(self, epoch: int) -> tuple[float, int]:
        t = min(1.0, (epoch + 1) / self.ramp_epochs)
        return t * self.eps, math.floor(1 + t * (self.replays - 1) + 0.5)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.set_schedule(*self.at(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["free_eps"], logs["free_replays"] = self.model.current_eps, self.model.replays


def free_epochs(epochs: int, replays: int, schedule: FreeSchedule | None = None) -> int:
    """Epochs of Free-AT with as many gradient steps as `epochs` of natural training (≥ 1)."""
    if schedule is None:
        return max(1, math.ceil(epochs / replays))
    done, e = 0, 0
    while done < epochs:
        done += schedule.at(e)[1]
        e += 1
    return e


@register_loop
class FreeLoop(Loop):
    """ "@free": Shafahi et al.'s free adversarial training, m = `adversarial.replays`, trained
    for epochs ÷ m (the optimizer steps of natural training)."""

    name = "free"
    model_class = FreeATModel
    trains_at_eps = True
    replays = True
    single_step = True
    selection = "best_robust"

    def model_options(self, batch_size: int) -> dict:
        config = self.recipe.adversarial
        return {
            "eps": config.eps,
            "replays": config.replays,
            "batch_size": batch_size,
            "delta_loss": config.free_delta_loss,
        }

    def schedule(self) -> FreeSchedule | None:
        """The ε/m schedule, for the variants that grow them."""
        return None

    def epochs(self, epochs: int) -> int:
        return free_epochs(epochs, self.recipe.adversarial.replays, self.schedule())

    def passes_per_step(self, tasks=()) -> int:
        # δ ascends the classifier's CE: with aux tasks the weights' backward pass (of the total
        # loss) does not give its gradient, a second one does (`AuxModel.gradient_step`).
        separate = bool(tasks) and self.recipe.adversarial.free_delta_loss == "classifier"
        return 2 if separate else 1

    def callbacks(self, epochs):
        schedule = self.schedule()
        return [schedule] if schedule else []


@register_loop
class FreeScheduledLoop(FreeLoop):
    """ "@free_scheduled": seed 004's winning variant, m and ε grow linearly over the first
    `adversarial.ramp_epochs` epochs (`FreeSchedule`)."""

    name = "free_scheduled"

    def schedule(self) -> FreeSchedule:
        config = self.recipe.adversarial
        return FreeSchedule(config.eps, config.replays, config.ramp_epochs)

    def check_settings(self) -> None:
        super().check_settings()
        ramp, natural = self.recipe.adversarial.ramp_epochs, self.recipe.training.epochs
        epochs = self.epochs(natural)
        if ramp < 2:
            raise ValueError(
                f"Expected adversarial.ramp_epochs >= 2 for '@{self.name}' (1 is plain '@free'). "
                f"Received: ramp_epochs={ramp}"
            )
        if ramp > epochs:
            needed = next(e for e in range(natural, 100 * natural + 100) if self.epochs(e) >= ramp)
            raise ValueError(
                f"Expected adversarial.ramp_epochs <= the {epochs} epoch(s) '@{self.name}' trains "
                f"from training.epochs={natural} (m up to {self.recipe.adversarial.replays} "
                "replays per batch), or ε and m never reach their targets: set training.epochs to "
                f"at least {needed} or lower adversarial.ramp_epochs. Received: ramp_epochs={ramp}"
            )


@register_loop
class FreeEMALoop(FreeLoop):
    """ "@free_ema": seed 004's δ averaged over updates with β = `adversarial.ema`."""

    name = "free_ema"

    def model_options(self, batch_size: int) -> dict:
        return {**super().model_options(batch_size), "delta_ema": self.recipe.adversarial.ema}

    def check_settings(self) -> None:
        super().check_settings()
        if self.recipe.adversarial.ema <= 0:
            raise ValueError(
                f"Expected adversarial.ema > 0 for '@{self.name}' (0 is plain '@free'). "
                f"Received: ema={self.recipe.adversarial.ema}"
            )


@register_loop
class FreeFractionLoop(FreeLoop):
    """ "@free_gamma": seed 004's variant where a fraction γ = `adversarial.gamma` of the replays
    trains on x + δ, the others on clean images."""

    name = "free_gamma"

    def model_options(self, batch_size: int) -> dict:
        gamma = self.recipe.adversarial.gamma
        return {**super().model_options(batch_size), "delta_fraction": gamma}

    def check_settings(self) -> None:
        super().check_settings()
        config = self.recipe.adversarial
        if config.gamma >= 1:
            raise ValueError(
                f"Expected adversarial.gamma < 1 for '@{self.name}' (1 is plain '@free'). "
                f"Received: gamma={config.gamma}"
            )
        if config.gamma * config.replays < 1:
            raise ValueError(
                f"Expected adversarial.gamma × adversarial.replays >= 1 for '@{self.name}' (below "
                "1 no replay trains on δ: natural training). Received: "
                f"gamma={config.gamma}, replays={config.replays}"
            )
