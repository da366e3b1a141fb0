"""Contrastive auxiliary task: a SimCLR projection head trained with NT-Xent (seed 002, eq. 4).

The model sees two augmented views of every image (`AuxModel.augment`), so a batch of N images
becomes [view_1 (N), view_2 (N)]; the positive of each view is the other view of its image and
the other 2N − 2 views are its negatives. Under `tf.distribute` the embeddings of all replicas
are gathered, so every replica contrasts against the global batch and the loss equals the
single-device loss.
"""

from __future__ import annotations

import tensorflow as tf
from keras import layers

from tfaux.tasks.base import AuxTask, register_task


def nt_xent(z: tf.Tensor, temperature: float = 0.5) -> tf.Tensor:
    """Per-view NT-Xent losses of a two-view batch `z` = [z_1 (N), z_2 (N)] (SimCLR eq. 1).

    l_i = −log( exp(sim(z_i, z_pos(i))/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ) ) with cosine similarity;
    the mean of the 2N values is seed 002's symmetric l(x_i, x_j) + l(x_j, x_i) over 2N.

    Returns:
        (2N,) float32 losses, in the order of `z`.
    """
    z = tf.math.l2_normalize(tf.convert_to_tensor(z, tf.float32), axis=1)
    return _nt_xent_rows(z, z, tf.constant(0), temperature)


def _nt_xent_rows(anchors, candidates, offset, temperature):
    """NT-Xent of `anchors` (rows offset..offset+2n of the global two-view batch `candidates`,
    laid out as consecutive [view_1 (n), view_2 (n)] blocks per replica)."""
    n2 = tf.shape(anchors)[0]
    n = n2 // 2
    logits = tf.matmul(anchors, candidates, transpose_b=True) / temperature
    own = offset + tf.range(n2)
    positive = offset + (tf.range(n2) + n) % n2
    self_mask = tf.one_hot(own, tf.shape(candidates)[0], on_value=True, off_value=False)
    logits = tf.where(self_mask, tf.constant(-1e9, logits.dtype), logits)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=positive, logits=logits)


def distributed_nt_xent(z: tf.Tensor, temperature: float) -> tf.Tensor:
    """The global-batch NT-Xent mean, as this replica's share (the shares sum to the mean).

    Each replica gathers every replica's [view_1, view_2] block, so negatives come from the
    global batch as on one device; the per-replica sum is divided by the global count, the
    convention of `keras.losses` under a strategy (gradients are summed across replicas).
    """
    z = tf.math.l2_normalize(tf.convert_to_tensor(z, tf.float32), axis=1)
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tf.reduce_mean(_nt_xent_rows(z, z, tf.constant(0), temperature))
    sizes = context.all_gather(tf.shape(z)[:1], axis=0)
    replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
    offset = tf.reduce_sum(sizes[:replica])
    candidates = context.all_gather(z, axis=0)
    losses = _nt_xent_rows(z, candidates, offset, temperature)
    return tf.reduce_sum(losses) / tf.cast(tf.reduce_sum(sizes), tf.float32)


@register_task
class ProjectionTask(AuxTask):
    """SimCLR projection head z = W_2·ReLU(W_1·h) on the pooled features, trained with NT-Xent.

    Args:
        weight: λ_c of seed 002 eq. (5) (the classification term's λ_s is 1; with Adam only
            the ratio matters).
        temperature: τ (0.5, SimCLR's best for CIFAR-10; the seed paper does not give it).
        dim: the embedding size (128, as SimCLR and seed 002 §4.2.1).
    """

    name = "projection"
    views = 2

    def __init__(self, weight: float = 0.01, temperature: float = 0.5, dim: int = 128):
        super().__init__(weight)
        if not temperature > 0 or dim < 1:
            raise ValueError(
                f"Expected temperature > 0 and dim >= 1. Received: temperature={temperature}, "
                f"dim={dim}"
            )
        self.temperature, self.dim = float(temperature), int(dim)

    def head(self, features, *, images, stride, norm=None):
        x = layers.GlobalAveragePooling2D(name=f"{self.name}_pool")(features)
        x = layers.Dense(features.shape[-1], activation="relu", name=f"{self.name}_hidden")(x)
        return layers.Dense(self.dim, name=self.name, dtype="float32")(x)  # NT-Xent in float32

    def target(self, x, y):
        return None  # the positives are the other views: no target

    def loss(self, target, prediction):
        return distributed_nt_xent(prediction, self.temperature)

    def get_config(self) -> dict:
        return {**super().get_config(), "temperature": self.temperature, "dim": self.dim}
