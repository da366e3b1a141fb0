"""Auxiliary Training (Zhang et al., CVPR 2020) and its plain-augmentation baseline.

Every training batch becomes [clean, T_1(clean), …, T_t(clean)] and takes one backbone pass
(with Selective BatchNorm when the model was built with it). The clean chunk feeds the primary
classifier, chunk j the auxiliary classifier j (`CorruptionClassifier`). Loss, eq. (7):

    CE(primary) + Σ_j α_j·CE(aux_j) + λ·Σ_j [KL(p_primary ‖ p_aux_j) + γ·‖θ_0 − θ_j‖²]

with γ = 0 in stage 1,
γ = 1 in stage 2 (Algorithm 1; `MergeStage` switches it at an epoch). The KL term is mutual by
default, the paper's reading (§3: "a 'student ⇄ student' framework … they are learned from each
other"; the primary "learns the robust information from auxiliary classifiers"): its gradient
reaches both classifiers. `distillation="teacher"` stops it at the primary (a teacher-student
reading of the same term). At export only the
primary classifier is kept (`tfaux.models.primary_classifier`).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from tfaux.data.corruptions import random_corruption
from tfaux.data.pipeline import labels_of
from tfaux.models.aux_model import PRIMARY, VALIDATION_SEED, AuxModel, repeat_batch, step_seed
from tfaux.models.layers import NormFactory, batch_norm, chunk, selective_batch_norm
from tfaux.training.auxiliary_heads import CorruptionClassifier
from tfaux.training.loop import Loop, register_loop
from tfaux.training.loops.adversarial import adversarial_examples

# How the KL term of eq. (7) trains: both classifiers ("mutual") or only the auxiliary ones.
DISTILLATIONS = ("mutual", "teacher")


def corrupted_batch(
    x: tf.Tensor, corruptions: Sequence[str], seed: tf.Tensor, first: tf.Tensor | None = None
) -> tf.Tensor:
    """[first, T_1(x), …, T_t(x)] along the batch axis (`first` defaults to x); severities are
    drawn per example from `seed`."""
    chunks = [x if first is None else first]
    for index, name in enumerate(corruptions, start=1):
        chunks.append(random_corruption(x, name, seed=seed + tf.constant([0, 7919]) * index))
    return tf.concat(chunks, axis=0)


@keras.saving.register_keras_serializable(package="tfaux")
class AuxiliaryTrainingModel(AuxModel):
    """An `AuxModel` whose tasks include one `CorruptionClassifier` per train-time corruption.

    Args:
        *args, **kwargs: `AuxModel` arguments (inputs, outputs, tasks, name).
        penalty: λ of eq. (7), the weight of the distillation and merging terms (paper: 0.05).
        distill: include KL(primary ‖ aux_j) (off in the ablation "w/o self distillation").
        distillation: "mutual" (the KL's gradient reaches the primary and the auxiliary
            classifiers, the paper's "student ⇄ student") or "teacher" (the primary is a fixed
            teacher within each step).
        merge: switch the merging penalty on in stage 2 (off in "w/o weight merging").
        adversarial_eps: train the primary chunk on PGD examples with this L∞ ε (Table 8);
            None trains it on clean images.
        adversarial_steps: PGD steps for `adversarial_eps` (α = 2.5ε/steps, random start).

    Reference:
        Zhang et al., "Auxiliary Training: Towards Accurate and Robust Models", CVPR 2020.
    """

    LOOP_PARAMS = (
        "penalty",
        "distill",
        "merge",
        "adversarial_eps",
        "adversarial_steps",
        "distillation",
    )
    fixed_loss_weights = fixed_aux_weights = True  # eq. (7) fixes its weights

    def __init__(
        self,
        *args,
        penalty: float = 0.05,
        distill: bool = True,
        distillation: str = "mutual",
        merge: bool = True,
        adversarial_eps: float | None = None,
        adversarial_steps: int = 7,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.branches = tuple(t for t in self.tasks if isinstance(t, CorruptionClassifier))
        if not self.branches:
            raise ValueError(
                "Expected at least one CorruptionClassifier task (an auxiliary classifier). "
                f"Received: tasks={list(self.tasks)}"
            )
        self.chunks = self.branches[0].chunks
        indices = sorted(t.index for t in self.branches)
        if indices != list(range(1, self.chunks)):
            raise ValueError(
                f"Expected one auxiliary classifier per chunk 1..{self.chunks - 1}. "
                f"Received: chunk indices {indices}"
            )
        if not penalty >= 0:
            raise ValueError(f"Expected penalty λ >= 0. Received: penalty={penalty}")
        if adversarial_eps is not None and not 0 < adversarial_eps <= 1:
            raise ValueError(
                f"Expected 0 < adversarial_eps <= 1 or None. Received: {adversarial_eps=}"
            )
        if distillation not in DISTILLATIONS:
            raise ValueError(
                f"Expected distillation in {DISTILLATIONS}. Received: distillation={distillation!r}"
            )
        self.penalty, self.distill, self.merge = float(penalty), bool(distill), bool(merge)
        self.distillation = distillation
        self.adversarial_eps = None if adversarial_eps is None else float(adversarial_eps)
        self.adversarial_steps = int(adversarial_steps)
        self.corruptions = tuple(t.corruption for t in sorted(self.branches, key=lambda t: t.index))
        self._gamma = tf.Variable(0.0, trainable=False, name="merge_gamma")
        self._kl = keras.losses.KLDivergence()
        for name in ("distill_loss", "merge_loss"):
            self._trackers[name] = keras.metrics.Mean(name=name)

    # === Stage (Algorithm 1) ===
    @property
    def gamma(self) -> float:
        return float(self._gamma.numpy())

    def set_stage(self, stage: int) -> None:
        """Stage 1: γ = 0 (no merging); stage 2: γ = 1 (when merging is on)."""
        self._gamma.assign(1.0 if stage == 2 and self.merge else 0.0)

    # === Steps ===
    def perturb(self, x, y):
        """The chunked batch [x or PGD(x), T_1(x), …, T_t(x)] that `AuxModel.train_step` fits."""
        primary = x
        if self.adversarial_eps is not None:
            primary = adversarial_examples(
                self,
                x,
                labels_of(y),
                eps=self.adversarial_eps,
                step_size=2.5 * self.adversarial_eps / self.adversarial_steps,
                steps=self.adversarial_steps,
            )
        return corrupted_batch(x, self.corruptions, step_seed(self), first=primary)

    def test_step(self, data):
        # The same objective on validation data, with fixed corruptions.
        x, y = data
        seed = tf.constant([VALIDATION_SEED, 0])
        outputs = self(corrupted_batch(x, self.corruptions, seed), training=False)
        _, terms = self.loss_terms(x, y, outputs)
        return self._update_metrics(y, outputs, terms, training=False)

    # === Loss ===
    def loss_terms(self, x, y, outputs, originals=None):
        """Eq. (7). `outputs` come from the chunked batch: every output but the auxiliary
        classifiers' covers all chunks and is cut to the first (clean or adversarial) one."""
        outputs = self._clean_outputs(outputs)
        total, terms = super().loss_terms(x, y, outputs, originals)
        teacher = tf.nn.softmax(outputs[PRIMARY])
        if self.distillation == "teacher":
            teacher = tf.stop_gradient(teacher)
        distill = tf.add_n(
            [self._kl(teacher, tf.nn.softmax(outputs[t.name])) for t in self.branches]
        )
        merge = tf.add_n([self._weight_distance(t.name) for t in self.branches])
        merge /= tf.distribute.get_strategy().num_replicas_in_sync  # summed over replicas
        if self.distill:
            total += self.penalty * distill
        total += self.penalty * self._gamma * merge
        terms.update(distill=distill, merge=merge, loss=total)
        return total, terms

    def _update_metrics(self, y, outputs, terms, training: bool = True):
        return super()._update_metrics(y, self._clean_outputs(outputs), terms, training)

    def _clean_outputs(self, outputs: dict) -> dict:
        branches = {t.name for t in self.branches}
        return {
            key: value if key in branches else chunk(value, 0, self.chunks)
            for key, value in outputs.items()
        }

    def weight_distances(self) -> dict[str, float]:
        """‖θ_0 − θ_j‖² of every auxiliary classifier j, now: what the merging penalty shrinks
        (their sum is the `merge` term; `merge_loss` averages it over an epoch's steps)."""
        return {t.name: float(self._weight_distance(t.name)) for t in self.branches}

    def _weight_distance(self, name: str) -> tf.Tensor:
        """‖θ_0 − θ_j‖² over the kernel and bias of the primary and auxiliary dense layers."""
        primary, branch = self.get_layer(PRIMARY), self.get_layer(name)
        return tf.add_n(
            [
                tf.reduce_sum(tf.square(a - b))
                for a, b in zip(primary.trainable_weights, branch.trainable_weights, strict=True)
            ]
        )


@keras.saving.register_keras_serializable(package="tfaux")
class CorruptionAugmentModel(AuxModel):
    """Plain data augmentation with the same corruptions (eq. 1; seed 001 Table 6's baseline).

    Each batch becomes [clean, T_1(clean), …, T_t(clean)] with the labels repeated, all through
    the primary classifier with ordinary BatchNorm: the same images and cost per step as
    Auxiliary Training, without its heads, Selective BatchNorm, distillation or merging.
    """

    LOOP_PARAMS = ("corruptions",)
    fixed_loss_weights = fixed_aux_weights = True  # the AT baseline keeps its objective

    def __init__(self, *args, corruptions: Sequence[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        if not corruptions:
            raise ValueError("Expected at least one corruption. Received: corruptions=()")
        self.corruptions = tuple(corruptions)

    def train_step(self, data):
        x, y = data
        batch = corrupted_batch(x, self.corruptions, step_seed(self))
        return super().train_step((batch, repeat_batch(y, len(self.corruptions) + 1)))


class MergeStage(keras.callbacks.Callback):
    """Algorithm 1's switch: stage 1 (γ = 0) before `epoch`, stage 2 (γ = 1) from it on.

    Set at every epoch start from the epoch number, so a resumed run lands in the right stage.
    At every epoch end it logs γ (`merge_gamma`) and the weight distance Σ_j ‖θ_0 − θ_j‖² of
    that moment (`merge_distance`, and `merge_distance_<aux name>` per classifier), in both
    stages and with merging off too, so History, the CSV and TensorBoard show whether stage 2
    closes it. `merge_loss` is not that number: it averages the distance over the epoch's steps,
    each taken before its update.
    """

    def __init__(self, epoch: int):
        super().__init__()
        if epoch < 0:
            raise ValueError(f"Expected a stage-2 epoch >= 0. Received: epoch={epoch}")
        self.epoch = int(epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.set_stage(2 if epoch >= self.epoch else 1)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs["merge_gamma"] = self.model.gamma
        distances = self.model.weight_distances()
        logs["merge_distance"] = sum(distances.values())
        logs.update({f"merge_distance_{name}": value for name, value in distances.items()})


@register_loop
class AuxiliaryTrainingLoop(Loop):
    """ "@auxiliary": Auxiliary Training with all its parts (`AuxTrainingConfig`): one auxiliary
    classifier per corruption, Selective BatchNorm, self-distillation, the stage switch to
    weight merging. Its subclasses are Table 9's ablations and Table 8's PGD-trained primary."""

    name = "auxiliary"
    model_class = AuxiliaryTrainingModel
    chunked_batch = True
    selection = "last"  # Algorithm 1 returns the stage-2 (merged) model
    attention, selective_norm, distill, merge, adversarial = True, True, True, True, False

    def model_options(self, batch_size: int) -> dict:
        return {
            "penalty": self.recipe.auxiliary.penalty,
            "distill": self.distill,
            "merge": self.merge,
            "adversarial_eps": self.recipe.adversarial.eps if self.adversarial else None,
            "adversarial_steps": self.recipe.adversarial.pgd_steps,
            "distillation": self.recipe.auxiliary.distillation,
        }

    def tasks(self, num_classes: int) -> list:
        config = self.recipe.auxiliary
        return [
            CorruptionClassifier(
                config.alpha,
                corruption=corruption,
                index=index,
                chunks=config.chunks,
                num_classes=num_classes,
                attention=self.attention,
            )
            for index, corruption in enumerate(config.corruptions, start=1)
        ]

    def norm(self, momentum: float, synchronized: bool) -> NormFactory:
        if not self.selective_norm:
            return batch_norm(momentum, synchronized=synchronized)
        return selective_batch_norm(
            self.recipe.auxiliary.chunks, momentum, synchronized=synchronized
        )

    def check_settings(self) -> None:
        super().check_settings()
        epochs, merge_epoch = self.recipe.training.epochs, self.recipe.auxiliary.merge_epoch
        if self.merge and merge_epoch is not None and merge_epoch >= epochs:
            raise ValueError(
                f"Expected auxiliary.merge_epoch < training.epochs for '@{self.name}' (stage 2, "
                f"the weight merging, would never start). Received: merge_epoch={merge_epoch}, "
                f"epochs={epochs}"
            )

    def callbacks(self, epochs):
        return [MergeStage(self.recipe.auxiliary.stage_two_epoch(epochs))]

    def results(self, history, *, steps_per_epoch, optimizer_steps, learning_rates) -> dict:
        """The entry "merging": how far stage 2 closed the weight distance (issue 24).

        The distance Σ_j ‖θ_0 − θ_j‖² after the last stage-1 epoch ("before"; None when stage 2
        is the whole run) and after the last epoch ("after"), `ratio` = after / before, the
        first stage-2 epoch (1-based, as the history's rows), its optimizer steps and the
        learning rates they took, as [rate, steps] runs in order. The ablation without merging
        records the same at the same epoch: there stage 2 is only more training.
        """
        if "merge_distance" not in history:  # a history from before it was logged
            return {}
        distances = history["merge_distance"]
        start = self.recipe.auxiliary.stage_two_epoch(self.epochs(self.recipe.training.epochs))
        before = float(distances[start - 1]) if start > 0 else None
        after = float(distances[-1])
        first_step = min(start * steps_per_epoch, optimizer_steps)
        rates = learning_rates(first_step, optimizer_steps)
        return {
            "merging": {
                "merge": self.merge,
                "penalty": self.recipe.auxiliary.penalty,
                "stage_two_epoch": start + 1,
                "epochs": len(distances),
                "distance_before": before,
                "distance_after": after,
                "ratio": after / before if before else None,
                "stage_two_steps": optimizer_steps - first_step,
                "stage_two_learning_rates": _runs(rates),
            }
        }

    def passes_per_step(self, tasks=()) -> int:
        attack = self.recipe.adversarial.pgd_steps if self.adversarial else 0
        return self.recipe.auxiliary.chunks + attack


def _runs(values) -> list[list]:
    """[[value, count], ...]: consecutive equal values, in order (a step schedule in brief)."""
    runs: list[list] = []
    for value in (float(f"{v:.6g}") for v in values):  # float32 rates: 1e-4, not 9.99999975e-5
        if runs and runs[-1][0] == value:
            runs[-1][1] += 1
        else:
            runs.append([value, 1])
    return runs


@register_loop
class NoSelectiveNormLoop(AuxiliaryTrainingLoop):
    """ "@auxiliary_no_sbn": Table 9's "w/o SBN", ordinary BatchNorm over all chunks."""

    name, selective_norm = "auxiliary_no_sbn", False


@register_loop
class NoDistillationLoop(AuxiliaryTrainingLoop):
    """ "@auxiliary_no_distill": Table 9's "w/o self distillation"."""

    name, distill = "auxiliary_no_distill", False


@register_loop
class NoAttentionLoop(AuxiliaryTrainingLoop):
    """ "@auxiliary_no_attention": Table 9's "w/o attention" in the auxiliary classifiers."""

    name, attention = "auxiliary_no_attention", False


@register_loop
class NoMergingLoop(AuxiliaryTrainingLoop):
    """ "@auxiliary_no_merge": Table 9's "w/o weight merging" (γ stays 0)."""

    name, merge = "auxiliary_no_merge", False


@register_loop
class AdversarialAuxiliaryLoop(AuxiliaryTrainingLoop):
    """ "@auxiliary_pgd": Table 8, the primary chunk trained on PGD examples at
    `adversarial.eps` (`adversarial.pgd_steps` steps)."""

    name, adversarial, trains_at_eps = "auxiliary_pgd", True, True


@register_loop
class CorruptionAugmentLoop(Loop):
    """ "@corruption_augment": Table 6's baseline, the same corruptions as plain augmentation."""

    name = "corruption_augment"
    model_class = CorruptionAugmentModel
    chunked_batch = True
    selection = "last"  # Auxiliary Training's protocol: the end of the same schedule

    def model_options(self, batch_size: int) -> dict:
        return {"corruptions": self.recipe.auxiliary.corruptions}

    def passes_per_step(self, tasks=()) -> int:
        return self.recipe.auxiliary.chunks
