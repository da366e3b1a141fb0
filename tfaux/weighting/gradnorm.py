"""GradNorm (Chen, Badrinarayanan, Lee, Rabinovich, ICML 2018): weights that equalize the terms'
training rates."""

from collections.abc import Mapping

import keras
import tensorflow as tf

from tfaux.weighting import FixedWeighting, register_weighting

# GradNorm keeps every weight above this floor before renormalizing, so no task is switched off
# for good (a zero weight would zero its gradient norm and the rule could never raise it again).
_MIN_GRADNORM_WEIGHT = 1e-3


@register_weighting
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
        gradnorm_alpha: α, the strength of the pull toward equal training rates (0: equal norms).
        gradnorm_learning_rate: the step size of the gradient descent on w.

    Reference:
        Chen, Badrinarayanan, Lee, Rabinovich, "GradNorm: Gradient Normalization for Adaptive
        Loss Balancing in Deep Multitask Networks", ICML 2018.
    """

    name = "gradnorm"
    learned = True
    needs_term_gradients = True
    settings = ("gradnorm_alpha", "gradnorm_learning_rate")
    min_tasks = 1  # with the primary alone its weight stays 1

    def __init__(
        self,
        model: keras.Model,
        lambdas: Mapping[str, float],
        gradnorm_alpha: float = 1.5,
        gradnorm_learning_rate: float = 0.025,
    ):
        super().__init__(model, lambdas)
        check_gradnorm(gradnorm_alpha, gradnorm_learning_rate)
        self.alpha, self.learning_rate = float(gradnorm_alpha), float(gradnorm_learning_rate)
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


def check_gradnorm(alpha: float, learning_rate: float) -> None:
    """Raises ValueError unless α >= 0 and the learning rate of w is > 0."""
    if not alpha >= 0 or not learning_rate > 0:
        raise ValueError(
            "Expected gradnorm_alpha >= 0 and gradnorm_learning_rate > 0. Received: "
            f"gradnorm_alpha={alpha}, gradnorm_learning_rate={learning_rate}"
        )


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
