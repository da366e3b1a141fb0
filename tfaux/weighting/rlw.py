"""RLW (Lin et al., TMLR 2022): loss weights drawn at random every step."""

import tensorflow as tf

from tfaux.weighting import FixedWeighting, register_weighting


@register_weighting
class RandomLossWeighting(FixedWeighting):
    """L = Σ_i w_i·L_i with w = T·softmax(z), z ~ N(0, I) drawn afresh every step (the same on
    every replica, reproducible from the step). LibMTL (weighting/RLW.py) draws softmax(z), which
    sums to 1; the factor T makes the mean weight 1, equal weighting's, so the comparison with
    fixed λ is not also one of learning rates (×1/T). The draw of the next step is made after
    each step; it is a model weight, so a resumed run continues the sequence.

    Reference:
        Lin, Ye, Xu, Shi, Zhang, "Reasonable Effectiveness of Random Weighting: A Litmus Test for
        Multi-Task Learning", TMLR 2022.
    """

    name = "rlw"
    learned = True
    min_tasks = 1

    def __init__(self, model, lambdas):
        super().__init__(model, lambdas)
        self.steps = model.add_weight(
            shape=(), initializer="zeros", trainable=False, aggregation="mean", name="rlw_steps"
        )
        self.drawn = model.add_weight(
            shape=(len(self.names),),
            initializer=lambda shape, dtype=None: self.draw(0),
            trainable=False,
            aggregation="mean",
            name="rlw_weights",
        )

    def draw(self, step) -> tf.Tensor:
        """T·softmax(z) with z ~ N(0, I) seeded by `step`."""
        seed = tf.stack([tf.cast(step, tf.int32), tf.constant(104_729)])
        normals = tf.random.stateless_normal([len(self.names)], seed)
        return len(self.names) * tf.nn.softmax(normals)

    def total(self, terms):
        weights = tf.convert_to_tensor(self.drawn)
        return tf.add_n([weights[i] * terms[name] for i, name in enumerate(self.names)])

    def update(self, tape, terms):
        self.steps.assign_add(1.0)
        self.drawn.assign(self.draw(self.steps))

    def weights(self):
        weights = tf.convert_to_tensor(self.drawn)
        return {name: weights[i] for i, name in enumerate(self.names)}
