"""Token replacement baselines: KNN replacement and random token sequences."""

import math

import numpy as np
import tensorflow as tf
from keras import ops

from augpro_keras.augmentations import base
from augpro_keras.augmentations.tokens import allowed_token_ids, is_special
from augpro_keras.layers import similarity as sim


def _replaceable(context):
    """Bool `[B, L]`: real, non-special positions."""
    return ops.logical_and(
        ops.cast(context.padding_mask, "bool"),
        ~is_special(context.token_ids, context.settings.special_token_ids),
    )


@base.register
class KNNReplacement(base.Augmentation):
    """Replaces a fraction of tokens by one of their k nearest tokens (baseline).

    In every sentence, `round(fraction * n)` (at least one) of its `n`
    non-special tokens are chosen at random; each is replaced by one of its
    `k` most similar tokens in the teacher's embedding table (the Distiller's
    similarity, the token itself and special tokens excluded), chosen
    uniformly. The teacher labels the result: `L = d(g(x'), f(x'))`.

    Args:
        k: number of neighbours to choose from (paper: 15).
        fraction: fraction of tokens to replace (paper: 0.1).
        name: name in logs (default "knn").
        weight: multiplier of the loss.

    References:
        - [Wang & Yang, 2015](https://aclanthology.org/D15-1306/)
    """

    default_name = "knn"
    produces_tokens = True

    def __init__(self, k=15, fraction=0.1, name=None, weight=1.0):
        super().__init__(name=name, weight=weight)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"`k` must be a positive integer. Received: k={k!r}")
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise ValueError(f"`fraction` must be in (0, 1]. Received: fraction={fraction!r}")
        self.k = k
        self.fraction = float(fraction)

    def validate(self, teacher, student):
        allowed = len(allowed_token_ids(teacher.vocabulary_size, teacher.special_token_ids))
        if allowed < self.k + 1:
            raise ValueError(
                f"KNN replacement with k={self.k} needs at least {self.k + 1} non-special "
                f"tokens; the vocabulary has {allowed}."
            )

    def compute(self, context):
        token_ids = ops.cast(context.token_ids, "int32")
        batch_size, length = token_ids.shape
        replaceable = _replaceable(context)
        # Rank the replaceable positions in random order; choose the first
        # `count` of each row. Only `slots` positions per row can be chosen,
        # so neighbours are searched for `B * slots` tokens, not `B * L`.
        slots = min(length, math.ceil(self.fraction * length))
        keys = tf.random.stateless_uniform((batch_size, length), seed=context.seed(0))
        keys = ops.where(replaceable, keys, 2.0)
        _, positions = ops.top_k(-keys, k=slots)
        available = ops.sum(ops.cast(replaceable, "float32"), axis=1)
        count = ops.where(available > 0, ops.maximum(1.0, ops.round(self.fraction * available)), 0.0)
        chosen = ops.arange(slots, dtype="float32")[None, :] < ops.minimum(count, available)[:, None]

        old_ids = ops.take_along_axis(token_ids, positions, axis=1)
        table = context.teacher.embedding_matrix
        queries = sim.prepare_queries(ops.take(table, ops.reshape(old_ids, (-1,)), axis=0), context.settings.similarity)
        scores = sim.scores(queries, table, context.settings.similarity)
        vocabulary = ops.arange(table.shape[0], dtype="int32")[None, :]
        banned = ops.logical_or(
            vocabulary == ops.reshape(old_ids, (-1, 1)),
            is_special(vocabulary, context.settings.special_token_ids),
        )
        _, neighbours = ops.top_k(ops.where(banned, -np.inf, scores), k=self.k)
        pick = tf.random.stateless_uniform(
            (batch_size * slots, 1), seed=context.seed(1), maxval=self.k, dtype="int32"
        )
        new_ids = ops.reshape(ops.take_along_axis(neighbours, pick, axis=1), (batch_size, slots))

        hits = ops.one_hot(positions, length, dtype="int32") * ops.cast(chosen, "int32")[..., None]
        replaced = ops.sum(hits, axis=1) > 0
        values = ops.sum(hits * new_ids[..., None], axis=1)
        return context.distill_on_tokens(ops.where(replaced, values, token_ids), context.padding_mask)

    def get_config(self):
        return {**super().get_config(), "k": self.k, "fraction": self.fraction}


@base.register
class RandomTokens(base.Augmentation):
    """Random token sequences (paper Table 7 baseline).

    Every real, non-special position gets a token drawn uniformly from the
    non-special vocabulary; special tokens and padding stay. The teacher
    labels the result: `L = d(g(x'), f(x'))`.

    Args:
        name: name in logs (default "random_tokens").
        weight: multiplier of the loss.
    """

    default_name = "random_tokens"
    produces_tokens = True

    def compute(self, context):
        token_ids = ops.cast(context.token_ids, "int32")
        allowed = allowed_token_ids(context.teacher.vocabulary_size, context.settings.special_token_ids)
        draws = tf.random.stateless_uniform(
            token_ids.shape, seed=context.seed(0), maxval=len(allowed), dtype="int32"
        )
        random_ids = ops.take(ops.convert_to_tensor(allowed), draws)
        new_ids = ops.where(_replaceable(context), random_ids, token_ids)
        return context.distill_on_tokens(new_ids, context.padding_mask)
