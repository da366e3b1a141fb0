"""DWA (Liu et al., CVPR 2019): loss weights from how fast each loss fell over the last epoch."""

import keras
import tensorflow as tf

from tfaux.weighting import FixedWeighting, register_weighting


@register_weighting
class DynamicWeightAverage(FixedWeighting):
    """L = Σ_i w_i·L_i with w = T·softmax(r/τ), r_i = L̄_i(e−1)/L̄_i(e−2) the ratio of the term's
    mean loss over the last two epochs (w = 1 in the first two), so a term whose loss falls
    slower gains weight (LibMTL, weighting/DWA.py: τ = 2; it averages by batch size, here by
    step). The epochs' means are summed in the steps (over replicas: the global batch's) and
    rolled at each epoch's end by the callback `callbacks()` returns, which the runner adds
    before the backup; they are model weights, so a resumed run keeps them.

    Args:
        dwa_temperature: τ.

    Reference:
        Liu, Johns, Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019.
    """

    name = "dwa"
    learned = True
    min_tasks = 1
    settings = ("dwa_temperature",)

    def __init__(self, model, lambdas, dwa_temperature: float = 2.0):
        if not dwa_temperature > 0:
            raise ValueError(f"Expected dwa_temperature > 0. Received: {dwa_temperature}")
        super().__init__(model, lambdas)
        self.temperature = float(dwa_temperature)
        terms = len(self.names)

        def state(name, shape):
            return model.add_weight(
                shape=shape,
                initializer="zeros",
                trainable=False,
                aggregation="mean",
                name=f"dwa_{name}",
            )

        self.history = state("epoch_losses", (2, terms))  # the last two epochs' means
        self.epochs = state("epochs", ())
        self.sums = state("loss_sums", (terms,))
        self.steps = state("steps", ())

    def current(self) -> tf.Tensor:
        """The weights of this epoch."""
        return dwa_weights(self.history, self.epochs, self.temperature)

    def total(self, terms):
        weights = self.current()
        return tf.add_n([weights[i] * terms[name] for i, name in enumerate(self.names)])

    def update(self, tape, terms):
        losses = tf.stack([tf.cast(terms[name], tf.float32) for name in self.names])
        context = tf.distribute.get_replica_context()
        self.sums.assign_add(context.all_reduce(tf.distribute.ReduceOp.SUM, losses))
        self.steps.assign_add(1.0)

    def end_epoch(self) -> None:
        """Rolls the history: this epoch's mean losses become the last."""
        if float(self.steps.numpy()) == 0:
            return
        mean = tf.convert_to_tensor(self.sums) / tf.convert_to_tensor(self.steps)
        self.history.assign(tf.stack([tf.convert_to_tensor(self.history)[1], mean]))
        self.epochs.assign_add(1.0)
        self.sums.assign(tf.zeros_like(self.sums))
        self.steps.assign(0.0)

    def weights(self):
        weights = self.current()
        return {name: weights[i] for i, name in enumerate(self.names)}

    def callbacks(self):
        return [EpochEnd(self)]

    def get_config(self):
        return {"dwa_temperature": self.temperature}


def dwa_weights(history, epochs, temperature: float = 2.0) -> tf.Tensor:
    """T·softmax(r/τ) from the last two epochs' mean losses (2, T), or 1 before two epochs."""
    history = tf.cast(tf.convert_to_tensor(history), tf.float32)
    ratios = tf.math.divide_no_nan(history[1], history[0])
    weights = history.shape[1] * tf.nn.softmax(ratios / temperature)
    return tf.where(tf.convert_to_tensor(epochs) >= 2, weights, tf.ones_like(weights))


class EpochEnd(keras.callbacks.Callback):
    """Tells a weighting that an epoch ended."""

    def __init__(self, weighting: DynamicWeightAverage):
        super().__init__()
        self.weighting = weighting

    def on_epoch_end(self, epoch, logs=None):
        self.weighting.end_epoch()
