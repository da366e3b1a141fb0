"""Small layers and layer factories shared by every backbone.

`SelectiveBatchNorm` and `ChunkSelect` serve Auxiliary Training (seed 001), whose training batch
is the concatenation [clean, T_1(clean), …, T_t(clean)] of `chunks` equal parts.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

NormFactory = Callable[[str], keras.layers.Layer]


def batch_norm(momentum: float = 0.9, epsilon: float = 1e-5, synchronized: bool = False):
    """Returns a norm factory `norm(name) -> BatchNormalization`.

    Momentum 0.9 rather than Keras' 0.99: with 0.99 the moving statistics lag so badly in short
    CPU runs that validation accuracy sits near chance after a few hundred steps.
    `synchronized=True` computes batch statistics over all replicas, so a MirroredStrategy run
    normalizes exactly like a single-device run with the global batch.
    """
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"Expected 0 <= momentum < 1. Received: momentum={momentum}")

    def make(name: str) -> keras.layers.Layer:
        return keras.layers.BatchNormalization(
            momentum=momentum, epsilon=epsilon, synchronized=synchronized, name=name
        )

    make.single_chunk = make
    return make


def selective_batch_norm(
    chunks: int, momentum: float = 0.9, epsilon: float = 1e-5, synchronized: bool = False
):
    """Returns a norm factory of `SelectiveBatchNorm` layers for batches of `chunks` parts.

    The factory's `single_chunk` attribute is the plain BatchNorm factory with the same settings,
    for heads that only ever see one chunk (the auxiliary classifiers).
    """
    if chunks < 1:
        raise ValueError(f"Expected chunks >= 1. Received: chunks={chunks}")
    plain = batch_norm(momentum, epsilon, synchronized)

    def make(name: str) -> keras.layers.Layer:
        return SelectiveBatchNorm(
            chunks, momentum=momentum, epsilon=epsilon, synchronized=synchronized, name=name
        )

    make.single_chunk = plain
    return make


def single_chunk(norm: NormFactory) -> NormFactory:
    """The plain-BatchNorm version of a norm factory (itself when it has none)."""
    return getattr(norm, "single_chunk", norm)


@keras.saving.register_keras_serializable(package="tfaux")
class SelectiveBatchNorm(keras.layers.BatchNormalization):
    """Selective BatchNorm (Zhang et al. 2020, §3.3): BatchNorm that keeps corruptions apart.

    In training the batch is `chunks` equal parts [clean, T_1(clean), …]; each part is normalized
    with its own batch statistics, and the moving statistics are updated from the first (clean)
    part only, so corrupted images never shift what inference uses. At inference it is plain
    BatchNorm with those clean statistics (same weights, same cost as a standard model).

    Args:
        chunks: the number of equal parts of a training batch; 1 is plain BatchNorm.
        **kwargs: `keras.layers.BatchNormalization` arguments (momentum, epsilon, synchronized…).
    """

    def __init__(self, chunks: int = 1, **kwargs):
        super().__init__(**kwargs)
        if chunks < 1:
            raise ValueError(f"Expected chunks >= 1. Received: chunks={chunks}")
        if self.renorm:
            raise ValueError("Expected renorm=False: Selective BatchNorm does not renormalize.")
        self.chunks = int(chunks)

    def call(self, inputs, training=None, mask=None):
        if self.chunks == 1 or not (training and self.trainable) or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, tf.float32)
        # (chunks · n, ..., C) → (chunks, n, ..., C): statistics per part, over all but channels.
        parts = tf.reshape(x, tf.concat([[self.chunks, -1], tf.shape(x)[1:]], axis=0))
        axes = list(range(1, len(x.shape)))  # n and the spatial axes of each part
        mean, variance = self._part_moments(parts, axes)
        # Moving statistics from the clean part only.
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean[0] * (1.0 - momentum))
        self.moving_variance.assign(
            self.moving_variance * momentum + variance[0] * (1.0 - momentum)
        )
        shape = [self.chunks] + [1] * (len(x.shape) - 1) + [-1]
        outputs = tf.nn.batch_normalization(
            parts,
            tf.reshape(mean, shape),
            tf.reshape(variance, shape),
            offset=self.beta if self.center else None,
            scale=self.gamma if self.scale else None,
            variance_epsilon=self.epsilon,
        )
        return tf.cast(tf.reshape(outputs, tf.shape(x)), self.compute_dtype)

    def _part_moments(self, parts: tf.Tensor, axes: list[int]):
        """Per-part mean and biased variance (chunks, C), over all replicas if synchronized."""
        context = tf.distribute.get_replica_context()
        if not self.synchronized or context is None or context.num_replicas_in_sync == 1:
            return tf.nn.moments(parts, axes=axes)
        count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(parts), axes)), tf.float32)
        total, squares, count = context.all_reduce(
            tf.distribute.ReduceOp.SUM,
            [tf.reduce_sum(parts, axes), tf.reduce_sum(tf.square(parts), axes), count],
        )
        mean = total / count
        return mean, tf.maximum(squares / count - tf.square(mean), 0.0)

    def get_config(self):
        return {**super().get_config(), "chunks": self.chunks}


def chunk(tensor: tf.Tensor, index: int, chunks: int) -> tf.Tensor:
    """The `index`-th of `chunks` equal parts of a batch (rows [index·n, (index+1)·n))."""
    n = tf.shape(tensor)[0] // chunks
    return tensor[index * n : (index + 1) * n]


@keras.saving.register_keras_serializable(package="tfaux")
class ChunkSelect(keras.layers.Layer):
    """The `index`-th of `chunks` equal parts of the batch (rows [index·n, (index+1)·n)).

    An auxiliary classifier sits behind one of these, so it only ever computes on the images of
    its own corruption: t heads cost t head passes on one chunk each, not on the whole batch.
    """

    def __init__(self, index: int, chunks: int, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= index < chunks:
            raise ValueError(f"Expected 0 <= index < chunks. Received: {index=}, {chunks=}")
        self.index, self.chunks = int(index), int(chunks)

    def call(self, inputs):
        return chunk(inputs, self.index, self.chunks)

    def compute_output_shape(self, input_shape):
        return (None, *input_shape[1:])

    def get_config(self):
        return {**super().get_config(), "index": self.index, "chunks": self.chunks}
