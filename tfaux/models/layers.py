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


@keras.saving.register_keras_serializable(package="tfaux")
class RandomSign(keras.layers.Layer):
    """Random-sign perturbation g(x) = x + ε·x⊙l(x) of seed 003 (§3.3), a feed-forward
    counterpart of FGSM that needs no gradient computation.

    In training each element gets l(x) = sgn(x) with probability `probability` and −sgn(x)
    otherwise (p = 0.5 in the paper). Since x·sgn(x) = |x|, that is g(x) = x + ε|x| (a shift
    up, whatever the sign of x) with probability p and x − ε|x| otherwise: each element is
    scaled by 1 ± ε and zeros stay zero. At
    inference (training False or None) the layer is the identity. The sign pattern l is a
    constant to autodiff (`tf.stop_gradient`), so ∂g/∂x = 1 + ε·l elementwise, the Jacobian of
    the paper's §3.1 without the Dirac term. Randomness comes from a `keras.random.SeedGenerator`,
    as in `keras.layers.Dropout`, so the layer works under `tf.function` and MirroredStrategy
    (where each replica folds its id into the seed).

    Reference:
        Di, Yu, Tian, "Towards Adversarial Training with Moderate Performance Improvement for
        Neural Network Classification".

    Args:
        eps: ε ≥ 0, the relative size of the perturbation (ε < 1 keeps every sign, §3.1).
        probability: p in [0, 1], the chance of l(x) = sgn(x), i.e. of g(x) = x + ε|x| > x.
        seed: seed of the layer's `SeedGenerator`; the same seed gives the same sign patterns.
        **kwargs: `keras.layers.Layer` arguments (name, dtype…).
    """

    def __init__(
        self, eps: float = 0.1, probability: float = 0.5, seed: int | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        if not eps >= 0.0:  # also rejects NaN
            raise ValueError(f"Expected eps >= 0. Received: eps={eps}")
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"Expected 0 <= probability <= 1. Received: probability={probability}")
        self.eps, self.probability, self.seed = float(eps), float(probability), seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self._build_at_init()

    def call(self, inputs, training=None):
        if not training or self.eps == 0.0:
            return inputs
        keep = tf.random.stateless_uniform(tf.shape(inputs), self._draw_seed()) < self.probability
        sign = tf.sign(inputs)
        pattern = tf.stop_gradient(tf.where(keep, sign, -sign))  # l(x), constant to autodiff
        return inputs + tf.cast(self.eps, inputs.dtype) * inputs * pattern

    def _draw_seed(self) -> tf.Tensor:
        """The next int32 stateless seed; under a multi-replica strategy, one per replica, so
        replicas draw independent patterns (keras' Dropout gives every replica the same one)."""
        seed = self.seed_generator.next()
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)  # as keras does
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            seed = tf.random.experimental.stateless_fold_in(seed, context.replica_id_in_sync_group)
        return seed

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "eps": self.eps,
            "probability": self.probability,
            "seed": self.seed,
        }
