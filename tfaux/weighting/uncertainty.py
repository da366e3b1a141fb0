"""Homoscedastic-uncertainty weighting (Kendall, Gal, Cipolla, CVPR 2018)."""

from collections.abc import Mapping

import keras
import tensorflow as tf

from tfaux.weighting import FixedWeighting, register_weighting, replicas


@register_weighting
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
    learned = True

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
        return tf.reduce_sum(0.5 * tf.exp(-s) * losses + 0.5 * s / replicas())

    def weights(self):
        weights = 0.5 * tf.exp(-tf.convert_to_tensor(self.log_variances))
        return {name: weights[i] for i, name in enumerate(self.names)}

    def decay_free_variables(self):
        return [self.log_variances]
