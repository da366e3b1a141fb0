"""MART (Wang et al. 2020): adversarial training that weighs misclassified examples up.

x′ is PGD on the cross-entropy (`adversarial_examples`, as in PGD-AT) from the official code's
start x + 0.001·N(0, I) (`gaussian_start`, TRADES' start), not PGD-AT's uniform one. The
loss replaces PGD-AT's CE(f(x′), y) by a boosted CE that also pushes the most probable wrong
class down, and adds β·KL(p(x) ‖ p(x′)) weighted per example by 1 − p_y(x): examples the model
already gets wrong on clean inputs are pulled hardest toward consistency.

No TensorFlow implementation exists: this follows the paper's objective and the official PyTorch
code (YisenWang/MART, mart.py) with its offsets in the boosted CE (1.0001, 1e-12) and the weight
(1.0000001); the KL comes from log-softmaxes, which needs no log(p + 1e-12).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfaux.data.pipeline import labels_of
from tfaux.models.aux_model import PRIMARY, step_seed
from tfaux.training.loop import register_loop
from tfaux.training.loops.adversarial import AdversarialModel, adversarial_examples
from tfaux.training.loops.trades import (
    KLDivergenceFromLogits,
    TRADESLoop,
    gaussian_start,
    kl_divergence,
)

CLEAN = "clean_logits"  # the extra output of `train_outputs`: primary logits on the clean x


# === Loss ===
def boosted_cross_entropy(labels, logits) -> tf.Tensor:
    """Per-example BCE = −log p_y − log(1.0001 − max_{k≠y} p_k + 1e-12), MART's first term.

    The official code finds the top wrong class by argsort (the best class, or the runner-up when
    the best is y); a max over the other classes is the same probability.
    """
    labels = tf.cast(labels, tf.int32)  # `keras.losses.Loss` hands labels over as floats
    logits = tf.cast(logits, tf.float32)
    probs = tf.nn.softmax(logits)
    is_label = tf.one_hot(labels, tf.shape(logits)[-1], on_value=True, off_value=False)
    top_wrong = tf.reduce_max(tf.where(is_label, tf.zeros_like(probs), probs), axis=-1)
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    return cross_entropy - tf.math.log(1.0001 - top_wrong + 1e-12)


class BoostedCrossEntropy(keras.losses.Loss):
    """`boosted_cross_entropy` as a Keras loss (`y_true`: labels, `y_pred`: logits), reduced like
    every `keras.losses` term: the batch mean divided by the replica count."""

    def call(self, y_true, y_pred):
        return boosted_cross_entropy(y_true, y_pred)


def misclassification_weight(labels, clean_logits) -> tf.Tensor:
    """Per-example 1 − p_y(x) (official: 1.0000001 − p_y, so no weight is exactly 0); the
    gradient flows through it, as in the official code."""
    probs = tf.nn.softmax(tf.cast(clean_logits, tf.float32))
    return 1.0000001 - tf.gather(probs, tf.cast(labels, tf.int32), batch_dims=1)


def mart_loss(clean_logits, adversarial_logits, labels, beta: float) -> tf.Tensor:
    """The MART objective on one batch:
    mean_i BCE(p(x′_i), y_i) + β·mean_i[KL(p(x_i) ‖ p(x′_i))·(1 − p_{y_i}(x_i))].

    Reference:
        Wang et al., "Improving adversarial robustness requires revisiting misclassified
        examples", ICLR 2020.
    """
    boosted = boosted_cross_entropy(labels, adversarial_logits)
    robust = kl_divergence(clean_logits, adversarial_logits)
    robust *= misclassification_weight(labels, clean_logits)
    return tf.reduce_mean(boosted) + beta * tf.reduce_mean(robust)


# === Model ===
@keras.saving.register_keras_serializable(package="tfaux")
class MARTModel(AdversarialModel):
    """An `AdversarialModel` (PGD examples of its primary classifier) trained with MART's loss.

    Loss = BCE(f(x′), y) + Σ_i λ_i·aux_i (outputs on x′, targets from the clean x, as in PGD-AT)
    + β·robust, robust = mean_i KL(p(x_i) ‖ p(x′_i))·(1 − p_y(x_i)); every term is a batch mean
    divided by the replica count like `keras.losses` terms (gradients summed over replicas give
    the global-batch mean). Logged: `logits_loss` (the BCE), `robust_loss`, and `accuracy` on
    the logits the BCE uses, i.e. on x′ in training (PGD-AT's convention). Validation has no
    attack: there x′ = x, the BCE is on clean logits and `robust_loss` is 0.

    Args:
        *args, **kwargs: `AdversarialModel` arguments (eps, steps, step_size, clean_fraction;
            random_start: start at x + 0.001·N(0, I) like the official code, else at x).
        beta: β, the weight of the robust term (paper: 6).

    Reference:
        Wang et al., "Improving adversarial robustness requires revisiting misclassified
        examples", ICLR 2020.
    """

    LOOP_PARAMS = (*AdversarialModel.LOOP_PARAMS, "beta")
    fixed_loss_weights = True  # β fixes the trade-off; a learned weight on the BCE would move it

    def __init__(self, *args, beta: float = 6.0, **kwargs):
        super().__init__(*args, **{"attack": "pgd", **kwargs})
        if not beta >= 0:
            raise ValueError(f"Expected beta >= 0. Received: beta={beta}")
        self.beta = float(beta)
        self._boosted_cross_entropy = BoostedCrossEntropy(name="boosted_cross_entropy")
        self._kl = KLDivergenceFromLogits(name="kl_divergence")
        self._trackers["robust_loss"] = keras.metrics.Mean(name="robust_loss")

    def perturb(self, x, y):
        """PGD on the CE from x + 0.001·N(0, I), seeded like TRADES' start (fresh every step and
        replica, reproducible)."""
        start = gaussian_start(x, step_seed(self)) if self.random_start else None
        return adversarial_examples(
            self, x, labels_of(y), eps=self.eps, step_size=self.step_size, steps=self.steps,
            random_start=False, clean_fraction=self.clean_fraction, start=start,
        )  # fmt: skip

    def train_outputs(self, x, x_train):
        """Every head on x′ (as in PGD-AT), and the primary logits on the clean x under `CLEAN`."""
        clean = self(x, training=True)[PRIMARY]  # first, as in the official code (BN statistics)
        return {**self(x_train, training=True), CLEAN: clean}

    def primary_loss(self, labels, logits):
        """The boosted CE on the adversarial logits, in place of PGD-AT's CE."""
        return self._boosted_cross_entropy(labels, logits)

    def loss_terms(self, x, y, outputs, originals=None):
        total, terms = super().loss_terms(x, y, outputs, originals)
        labels = labels_of(y)
        adversarial = outputs[PRIMARY]
        clean = outputs.get(CLEAN, adversarial)  # no attack: x′ = x
        # The weight enters as a sample weight: keras multiplies it in (gradient included) and
        # still divides by the batch size, so this is mean_i KL_i·w_i, as in the official code.
        robust = self._kl(clean, adversarial, sample_weight=misclassification_weight(labels, clean))
        total += self.beta * robust
        terms.update(robust=robust, loss=total)
        return total, terms


@register_loop
class MARTLoop(TRADESLoop):
    """The "@mart" loop: MART at ε = `adversarial.eps`, PGD-`adversarial.pgd_steps` from
    x + 0.001·N(0, I) (α = 2.5ε/steps), β = `adversarial.beta`; TRADES' settings, and one
    training-mode pass fewer than TRADES (x, then x′)."""

    name = "mart"
    model_class = MARTModel

    def passes_per_step(self, tasks=()) -> int:
        return self.recipe.adversarial.pgd_steps + 2  # the attack, then x and x′
