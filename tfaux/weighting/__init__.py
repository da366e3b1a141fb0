"""How the loss terms are weighted: fixed λ, uncertainty weighting or GradNorm.

A train step hands its unweighted terms (the primary cross-entropy first, then one per aux task,
each already scaled per replica) to `total`, and after the backward pass lets the weighting
`update` itself from the same tape. Learned weights are model weights (`model.add_weight`), so
`save_weights`, `BackupAndRestore` and a resumed run keep them. Learned weightings replace every
λ, the primary's implicit 1 included: they learn the balance λ fixes by hand. A new weighting
is a `FixedWeighting` subclass decorated with `register_weighting` (README, "Extending it").
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import tensorflow as tf

from tfaux.registry import Registry

# GradNorm keeps every weight above this floor before renormalizing, so no task is switched off
# for good (a zero weight would zero its gradient norm and the rule could never raise it again).
_MIN_GRADNORM_WEIGHT = 1e-3


def _replicas() -> int:
    return tf.distribute.get_strategy().num_replicas_in_sync


class FixedWeighting:
    """Today's objective, L = L_primary + Σ_i λ_i·L_i, with each task's λ from `AuxTask.weight`.

    Args:
        model: the model the terms come from (unused: fixed weights are not variables).
        lambdas: term name → λ, the primary first (λ = 1).
    """

    name = "fixed"
    # Whether `update` reads per-term gradients from the step's tape (then it must be persistent).
    needs_term_gradients = False

    def __init__(self, model: keras.Model, lambdas: Mapping[str, float]):
        self.lambdas = dict(lambdas)

    @property
    def names(self) -> list[str]:
        """The weighted terms, primary first."""
        return list(self.lambdas)

    def total(self, terms: Mapping[str, tf.Tensor]) -> tf.Tensor:
        """The weighted sum of `terms` (already scaled per replica), summed in term order."""
        primary, *tasks = self.names
        total = terms[primary]  # the primary's λ = 1 is not multiplied: bit-for-bit as before
        for name in tasks:
            total += self.lambdas[name] * terms[name]
        return total

    def update(self, tape: tf.GradientTape, terms: Mapping[str, tf.Tensor]) -> None:
        """Learns the weights after the backward pass; fixed weights do not move."""

    def weights(self) -> dict[str, tf.Tensor]:
        """Effective weight of every term, logged as `weight_<term>`; none for fixed λ, so its
        metrics stay what they were."""
        return {}

    def decay_free_variables(self) -> list:
        """Trainable variables the optimizer must not weight-decay."""
        return []

    def get_config(self) -> dict:
        return {}


class UncertaintyWeighting(FixedWeighting):
    """Homoscedastic-uncertainty weighting: L = Σ_i ½·exp(−s_i)·L_i + ½·s_i.

    One learned log-variance s_i = log σ_i² per term, the primary included (as in the paper),
    initialized to 0 and trained with the model. The paper writes regression terms as
    L/(2σ²) + log σ and classification terms as L/σ² + log σ; we use the regression form for all:
    both reach their equilibrium (∂/∂s = 0) at the same effective weight 1/(2·L_i), which is what
    the weighting is for, and one form keeps every task's head free of a per-kind rule. The
    effective weights ½·exp(−s_i) are logged; s is excluded from weight decay, which would pull
    every σ² toward 1 and bias the balance.

    Reference:
        Kendall, Gal, Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene
        Geometry and Semantics", CVPR 2018.
    """

    name = "uncertainty"

    def __init__(self, model: keras.Model, lambdas: Mapping[str, float]):
        super().__init__(model, lambdas)
        self.log_variances = model.add_weight(
            shape=(len(self.lambdas),),
            initializer="zeros",
            trainable=True,
            name="uncertainty_log_variances",
        )

    def total(self, terms):
        s = tf.convert_to_tensor(self.log_variances)
        losses = tf.stack([terms[name] for name in self.names])
        # The terms are already divided by the replica count and the gradients are summed across
        # replicas; the regularizer ½·s must be divided likewise to count once per global batch.
        return tf.reduce_sum(0.5 * tf.exp(-s) * losses + 0.5 * s / _replicas())

    def weights(self):
        weights = 0.5 * tf.exp(-tf.convert_to_tensor(self.log_variances))
        return {name: weights[i] for i, name in enumerate(self.names)}

    def decay_free_variables(self):
        return [self.log_variances]


class GradNorm(FixedWeighting):
    """GradNorm: weights w_i (primary included, all starting at 1) that equalize training rates.

    At every step, with W the last shared weights (`shared_kernel`): G_i = ‖∇_W (w_i·L_i)‖,
    r_i = (L_i/L_i(0)) / mean_j (L_j/L_j(0)), target_i = mean(G)·r_i^α (held constant), and
    L_grad = Σ_i |G_i − target_i|. The model trains on Σ_i w_i·L_i with w held constant; w takes
    one gradient-descent step on L_grad, is floored above 0 and renormalized to Σ_i w_i = T, the
    number of terms. A task whose gradients dominate W thus loses weight, a task that trains
    slower than the others gains it. L_i(0), the losses of the first step, are a model weight, so
    a resumed run keeps its reference. A term that does not depend on W (a front end before the
    backbone) has G_i = 0 and moves only by the renormalization.

    Under tf.distribute the per-term gradients w.r.t. W and the losses are summed across replicas
    (each is scaled per replica, so the sums are the global-batch values) before the norms and
    ratios are taken: every replica computes the same update, and the variables' MEAN
    aggregation keeps their copies identical.

    Args:
        model: the model; its backbone holds W and its weights receive w and L(0).
        lambdas: term name → λ, the primary first (only the names are used).
        alpha: α, the strength of the pull toward equal training rates (0: equal norms).
        learning_rate: the step size of the gradient descent on w.

    Reference:
        Chen, Badrinarayanan, Lee, Rabinovich, "GradNorm: Gradient Normalization for Adaptive
        Loss Balancing in Deep Multitask Networks", ICML 2018.
    """

    name = "gradnorm"
    needs_term_gradients = True

    def __init__(
        self,
        model: keras.Model,
        lambdas: Mapping[str, float],
        alpha: float = 1.5,
        learning_rate: float = 0.025,
    ):
        super().__init__(model, lambdas)
        check_gradnorm(alpha, learning_rate)
        self.alpha, self.learning_rate = float(alpha), float(learning_rate)
        self.kernel = shared_kernel(model)
        terms = len(self.lambdas)
        # Not trainable: the model's optimizer never sees w, `update` steps it by its own rule.
        self.task_weights = model.add_weight(
            shape=(terms,),
            initializer="ones",
            trainable=False,
            aggregation="mean",
            name="gradnorm_weights",
        )
        self.initial_losses = model.add_weight(  # all zero until the first step records them
            shape=(terms,),
            initializer="zeros",
            trainable=False,
            aggregation="mean",
            name="gradnorm_initial_losses",
        )

    def total(self, terms):
        weights = tf.stop_gradient(tf.convert_to_tensor(self.task_weights))
        losses = tf.stack([terms[name] for name in self.names])
        return tf.reduce_sum(weights * losses)

    def update(self, tape, terms):
        context = tf.distribute.get_replica_context()
        term_gradients = [
            tf.reshape(
                tape.gradient(
                    terms[name], self.kernel, unconnected_gradients=tf.UnconnectedGradients.ZERO
                ),
                [-1],
            )
            for name in self.names
        ]
        # Summed over replicas: the gradients and losses of the global batch (see the class doc).
        term_gradients, losses = context.all_reduce(
            tf.distribute.ReduceOp.SUM,
            [tf.stack(term_gradients), tf.stack([terms[name] for name in self.names])],
        )
        norms = tf.norm(term_gradients, axis=1)
        recorded = tf.reduce_any(self.initial_losses > 0)
        initial = tf.where(recorded, tf.convert_to_tensor(self.initial_losses), losses)
        rates = tf.math.divide_no_nan(losses, initial)
        rates = tf.math.divide_no_nan(rates, tf.reduce_mean(rates))
        weights = tf.convert_to_tensor(self.task_weights)
        with tf.GradientTape() as weight_tape:
            weight_tape.watch(weights)
            norms_weighted = weights * norms  # G_i = ‖∇_W (w_i·L_i)‖ = w_i·‖∇_W L_i‖
            target = tf.stop_gradient(tf.reduce_mean(norms_weighted) * rates**self.alpha)
            gradnorm_loss = tf.reduce_sum(tf.abs(norms_weighted - target))
        step = weight_tape.gradient(gradnorm_loss, weights)
        weights = tf.maximum(weights - self.learning_rate * step, _MIN_GRADNORM_WEIGHT)
        self.task_weights.assign(weights * len(self.names) / tf.reduce_sum(weights))
        self.initial_losses.assign(initial)

    def weights(self):
        weights = tf.convert_to_tensor(self.task_weights)
        return {name: weights[i] for i, name in enumerate(self.names)}

    def get_config(self):
        return {"gradnorm_alpha": self.alpha, "gradnorm_learning_rate": self.learning_rate}


WEIGHTINGS: Registry[type[FixedWeighting]] = Registry("loss weighting")


def register_weighting(cls: type[FixedWeighting]) -> type[FixedWeighting]:
    """Class decorator: makes a `FixedWeighting` subclass selectable as "~<cls.name>" in a
    variant. It is built as `cls(model, lambdas)`; settings it needs are class attributes."""
    return WEIGHTINGS.register(cls)


for _weighting in (FixedWeighting, UncertaintyWeighting, GradNorm):
    register_weighting(_weighting)


def list_weightings() -> list[str]:
    """Names of the loss weightings."""
    return WEIGHTINGS.names()


def check_gradnorm(alpha: float, learning_rate: float) -> None:
    """Raises ValueError unless α >= 0 and the learning rate of w is > 0."""
    if not alpha >= 0 or not learning_rate > 0:
        raise ValueError(
            "Expected gradnorm_alpha >= 0 and gradnorm_learning_rate > 0. Received: "
            f"gradnorm_alpha={alpha}, gradnorm_learning_rate={learning_rate}"
        )


def create_weighting(
    name: str,
    model: keras.Model,
    lambdas: Mapping[str, float],
    *,
    gradnorm_alpha: float = 1.5,
    gradnorm_learning_rate: float = 0.025,
) -> FixedWeighting:
    """The weighting `name` ("fixed", "uncertainty", "gradnorm", or a registered one) of
    `model`'s terms.

    Args:
        name: a name from `list_weightings()`; unknown names suggest the closest.
        model: the model; learned weightings add their variables to it (call inside the
            strategy scope the model was built in).
        lambdas: term name → λ, the primary first with λ = 1 (learned weightings use the names).
        gradnorm_alpha, gradnorm_learning_rate: GradNorm's α and the step size of its weights.
    """
    weighting = WEIGHTINGS.get(name)
    check_gradnorm(gradnorm_alpha, gradnorm_learning_rate)
    if weighting is GradNorm:
        return GradNorm(model, lambdas, gradnorm_alpha, gradnorm_learning_rate)
    return weighting(model, lambdas)


def shared_kernel(model: keras.Model) -> keras.Variable:
    """W of GradNorm: the kernel of the last layer with a kernel inside the backbone.

    The backbone is the nested `keras.Model` among `model.layers` (what `tfaux.models.build`
    wraps its heads around); its last kernel is the last weight every head shares.
    """
    backbones = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(backbones) != 1:
        raise ValueError(
            "Expected exactly one nested keras.Model (the backbone) among the model's layers. "
            f"Received: {[layer.name for layer in backbones]}"
        )
    kernels = [layer.kernel for layer in backbones[0].layers if hasattr(layer, "kernel")]
    if not kernels:
        raise ValueError(
            f"Expected a layer with a kernel in the backbone {backbones[0].name!r}. "
            f"Received layers: {[layer.name for layer in backbones[0].layers]}"
        )
    return kernels[-1]
