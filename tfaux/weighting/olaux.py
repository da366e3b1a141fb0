"""OL-AUX (Lin et al., NeurIPS 2019): aux weights learned online from their gradients' agreement
with the primary's."""

import tensorflow as tf

from tfaux.weighting import GradientWeighting, register_weighting


@register_weighting
class OLAux(GradientWeighting):
    """The update is g_0 + Σ_i w_i·g_i with weights w_i ≥ 0 (starting at 1) that follow the
    primary's loss a few steps ahead: every step adds η·(g_i·g_0) (η the optimizer's current
    learning rate) to a buffer, and every `olaux_horizon` steps w ← max(0, w + β·Σ buffer), a
    first-order step of −∇_w L_0 over the horizon, then the buffer empties (the authors' code,
    Xingyu-Lin/auxiliary-tasks-rl, olaux/ddpg.py: β = 5, N = 5). g_0 is the gradient of the
    primary's loss, as in the paper (their code uses the total's); their gradient smoothing and
    log-loss transform are not reproduced. The weights and the buffer are model weights.

    Args:
        olaux_learning_rate: β, the step size of the weights.
        olaux_horizon: N, the steps between two updates of the weights.

    Reference:
        Lin, Baweja, Kantor, Held, "Adaptive Auxiliary Task Weighting for Reinforcement
        Learning", NeurIPS 2019.
    """

    name = "olaux"
    settings = ("olaux_learning_rate", "olaux_horizon")

    def __init__(self, model, lambdas, olaux_learning_rate: float = 5.0, olaux_horizon: int = 5):
        if not olaux_learning_rate > 0 or not int(olaux_horizon) >= 1:
            raise ValueError(
                "Expected olaux_learning_rate > 0 and olaux_horizon >= 1. Received: "
                f"olaux_learning_rate={olaux_learning_rate}, olaux_horizon={olaux_horizon}"
            )
        super().__init__(model, lambdas)
        self.beta, self.horizon = float(olaux_learning_rate), int(olaux_horizon)
        tasks = len(self.names) - 1

        def state(name, initializer, shape):
            return model.add_weight(
                shape=shape,
                initializer=initializer,
                trainable=False,
                aggregation="mean",
                name=f"olaux_{name}",
            )

        self.aux_weights = state("weights", "ones", (tasks,))
        self.buffer = state("buffer", "zeros", (tasks,))
        self.buffered = state("buffered_steps", "zeros", ())
        self.learning_rate = tf.constant(1.0)

    def gradients(self, tape, loss, terms, sources, optimizer):
        self.learning_rate = tf.cast(optimizer.learning_rate, tf.float32)
        return super().gradients(tape, loss, terms, sources, optimizer)

    def combine(self, gram, losses, seed):
        variables = (self.aux_weights, self.buffer, self.buffered)
        applied, *state = olaux_step(
            gram,
            variables,
            learning_rate=self.learning_rate,
            beta=self.beta,
            horizon=self.horizon,
        )
        for variable, value in zip(
            (self.aux_weights, self.buffer, self.buffered), state, strict=True
        ):
            variable.assign(value)
        return applied

    def get_config(self):
        return {"olaux_learning_rate": self.beta, "olaux_horizon": self.horizon}


def olaux_step(gram, state, *, learning_rate, beta: float, horizon: int):
    """(weights applied now, aux weights, buffer, buffered steps) after one step from `state`
    (aux weights, buffer, buffered steps): the weights before this step's update are applied."""
    weights, buffer, buffered = (tf.cast(tf.convert_to_tensor(s), tf.float32) for s in state)
    buffer = buffer + tf.cast(learning_rate, tf.float32) * tf.cast(gram[0, 1:], tf.float32)
    full = buffered + 1.0 >= horizon
    updated = tf.where(full, tf.maximum(0.0, weights + beta * buffer), weights)
    return (
        tf.concat([[1.0], weights], axis=0),
        updated,
        tf.where(full, tf.zeros_like(buffer), buffer),
        tf.where(full, 0.0, buffered + 1.0),
    )
