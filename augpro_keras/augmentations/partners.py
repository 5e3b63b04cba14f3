"""Stateless draws of MixUp partners and weights for one training step."""

import tensorflow as tf
from keras import ops


def draw_mix(context, lam=0.5, alpha=None):
    """Returns `(partner_index [B] int32, lam [B] float32)`.

    Partners are a random permutation within each group of
    `context.settings.mix_group_size` consecutive rows (the whole replica
    batch by default); `lam` is fixed or drawn from Beta(alpha, alpha).
    """
    batch_size = context.batch_size
    group_size = context.settings.mix_group_size or batch_size
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
    a = stateless_gamma(shape, alpha, first)
    b = stateless_gamma(shape, alpha, second)
    return a / tf.maximum(a + b, 1e-30)


def stateless_gamma(shape, alpha, seed, candidates=8):
    """Gamma(alpha, 1) samples that XLA can compile (`tf.random.stateless_gamma` cannot).

    Marsaglia and Tsang's method with a fixed number of candidates drawn at
    once instead of a rejection loop; each is accepted with probability
    above 0.95, so all eight fail with probability below 1e-10 (the last one
    is then used). For alpha < 1 it samples Gamma(alpha + 1) and multiplies
    by `U^(1 / alpha)`.
    """
    boost = alpha < 1.0
    d = (alpha + 1.0 if boost else alpha) - 1.0 / 3.0
    c = 1.0 / (9.0 * d) ** 0.5
    seeds = tf.random.experimental.stateless_split(seed, 3)
    full = (candidates,) + tuple(shape)
    x = tf.random.stateless_normal(full, seed=seeds[0])
    u = tf.random.stateless_uniform(full, seed=seeds[1], minval=1e-12)
    v = tf.maximum(1.0 + c * x, 1e-6) ** 3
    accept = tf.logical_and(
        1.0 + c * x > 0.0,
        tf.math.log(u) < 0.5 * x * x + d - d * v + d * tf.math.log(v),
    )
    accept = tf.concat([accept[:-1], tf.ones_like(accept[-1:])], axis=0)
    first = tf.argmax(tf.cast(accept, "int32"), axis=0, output_type="int32")
    per_sample = tf.transpose(tf.reshape(v, (candidates, -1)))  # [N, candidates]
    chosen = tf.gather(per_sample, tf.reshape(first, (-1, 1)), batch_dims=1)
    sample = d * tf.reshape(chosen, shape)
    if boost:
        uniform = tf.random.stateless_uniform(shape, seed=seeds[2], minval=1e-12)
        sample = sample * uniform ** (1.0 / alpha)
    return sample
