"""Stateless draws of MixUp partners and weights for one training step."""

import tensorflow as tf
from keras import ops


def draw_mix(context, lam=0.5, alpha=None):
    """Returns `(partner_index [B] int32, lam [B] float32)`.

    Partners are a random permutation within each group of
    `context.distiller.mix_group_size` consecutive rows (the whole replica
    batch by default); `lam` is fixed or drawn from Beta(alpha, alpha).
    """
    batch_size = context.batch_size
    group_size = context.distiller.mix_group_size or batch_size
    if batch_size % group_size:
        raise ValueError(
            f"The per-replica batch size {batch_size} is not a multiple of "
            f"mix_group_size={group_size}."
        )
    partners, weights = [], []
    for group in range(batch_size // group_size):
        seed = context.seed(draw=0, group=group)
        keys = tf.random.stateless_uniform((group_size,), seed=seed)
        partners.append(ops.cast(ops.argsort(keys), "int32") + group * group_size)
        if alpha is None:
            weights.append(ops.full((group_size,), lam, dtype="float32"))
        else:
            weights.append(_stateless_beta((group_size,), alpha, seed))
    return ops.concatenate(partners, axis=0), ops.concatenate(weights, axis=0)


def _stateless_beta(shape, alpha, seed):
    first, second = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    a = tf.random.stateless_gamma(shape, seed=first, alpha=alpha)
    b = tf.random.stateless_gamma(shape, seed=second, alpha=alpha)
    return a / tf.maximum(a + b, 1e-30)
