"""Projection of embeddings back to the nearest vocabulary tokens."""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from augpro_keras.api_export import export
from augpro_keras.layers import similarity as sim


# Columns per group in `_first_maximum_in_groups`: large enough that the
# second argmax (over one group per row) costs little, and a divisor of the
# usual chunk sizes (powers of two).
_GROUP = 128


def _first_maximum(scores):
    """Each row's largest score of `[N, C]` and its first column, in one pass.

    TensorFlow's and XLA's argmax return the lowest index on ties (tested),
    which saves a compare-and-min pass; the best score is then gathered, not
    reduced in another pass. (`keras.ops.argmax` would add three passes to
    order -0.0 below 0.0, a distinction no similarity needs.)
    """
    index = tf.argmax(scores, axis=1, output_type=tf.int32)
    return tf.gather(scores, index, batch_dims=1), index


def _first_maximum_in_groups(scores):
    """The same answer as `_first_maximum`, in less time on CPU.

    An argmax carries an (index, value) pair through the reduction and is not
    vectorised, while a max is. So the row maxima of groups of `_GROUP`
    consecutive columns come first, then the argmax over those group maxima
    (the first group that holds the row's maximum), then the argmax inside
    that one group (its first column with the maximum). Both argmaxes see
    1/`_GROUP` of the block, and ties still go to the lowest column.
    """
    groups = tf.reshape(scores, (tf.shape(scores)[0], -1, _GROUP))
    group_maxima = tf.reduce_max(groups, axis=2)
    group_index = tf.argmax(group_maxima, axis=1, output_type=tf.int32)
    winning_group = tf.gather(groups, group_index, batch_dims=1)
    within = tf.argmax(winning_group, axis=1, output_type=tf.int32)
    best = tf.gather(group_maxima, group_index, batch_dims=1)
    return best, group_index * _GROUP + within


@export
class EmbeddingProjection(keras.layers.Layer):
    """Projects each embedding vector to its most similar vocabulary token.

    This is the projection `p(.)` of AugPro (Eq. 5, Algorithm 2 of the paper):
    for every position it returns the id of the row of `embedding_matrix`
    that is most similar to the embedding at that position. (Algorithm 2
    writes `argmin` of a similarity; the most similar token is meant.)

    Ties go to the lowest token id. Ids in `excluded_token_ids` are never
    returned. Positions where `padding_mask` is false get `pad_token_id`.
    With "cosine", a zero vector is equally similar to every token and gets
    the lowest id that is not excluded (never NaN). Similarities are computed
    in float32 whatever the input dtype.

    With `chunk_size`, the vocabulary is scanned in chunks of that many rows
    and only a `[B * L, chunk_size]` block of similarities exists at a time,
    so memory does not grow with the vocabulary. The answer is exactly the
    same as without chunks for every chunk size. Chunks of a multiple of 128
    rows (4096, 8192, ...) and the whole table (`None`) take a faster search
    for each block's best token than other chunk sizes.

    Args:
        similarity: "cosine" (default, as in the paper), "dot" (inner
            product) or "l2" (smallest Euclidean distance).
        chunk_size: `None` (compare with the whole table at once) or a
            positive number of vocabulary rows per chunk.
        excluded_token_ids: ids that are never returned, typically the
            special tokens (padding, [CLS], [SEP], [UNK], [MASK]).
        pad_token_id: the id returned at padding positions.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        embeddings: float tensor `[B, L, H]`.
        embedding_matrix: float tensor or variable `[V, H]`, the model's
            word-embedding table.
        padding_mask: optional bool tensor `[B, L]`, true at real tokens.

    Returns:
        int32 token ids `[B, L]`.

    Example:
    ```python
    table = keras.random.normal((1000, 64))
    noisy = ops.take(table, [[5, 7, 9]], axis=0) + 0.01
    proj = augpro_keras.layers.EmbeddingProjection(excluded_token_ids=(0,))
    proj(noisy, table)  # [[5, 7, 9]]
    ```

    References:
        - [Wang et al., 2023, "Augmentation with Projection: Towards an
          Effective and Efficient Data Augmentation Paradigm for
          Distillation"](https://arxiv.org/abs/2210.11768)
    """

    def __init__(
        self,
        similarity="cosine",
        chunk_size=None,
        excluded_token_ids=(),
        pad_token_id=0,
        **kwargs,
    ):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.similarity = sim.validate_similarity(similarity)
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0
        ):
            raise ValueError(
                f"`chunk_size` must be None or a positive integer. Received: {chunk_size!r}"
            )
        self.chunk_size = chunk_size
        self.excluded_token_ids = tuple(int(i) for i in excluded_token_ids)
        if any(i < 0 for i in self.excluded_token_ids):
            raise ValueError(
                "`excluded_token_ids` must be non-negative token ids. "
                f"Received: {self.excluded_token_ids}"
            )
        self.pad_token_id = int(pad_token_id)

    def _excluded_mask(self, vocabulary_size):
        too_large = [i for i in self.excluded_token_ids if i >= vocabulary_size]
        if too_large:
            raise ValueError(
                f"`excluded_token_ids` {too_large} are outside the vocabulary of "
                f"size {vocabulary_size} (allowed: 0 to {vocabulary_size - 1})."
            )
        mask = np.zeros((vocabulary_size,), dtype=bool)
        mask[list(self.excluded_token_ids)] = True
        if mask.all():
            raise ValueError(
                "Every token of the vocabulary is in `excluded_token_ids`; "
                "nothing is left to project to."
            )
        return mask

    def call(self, embeddings, embedding_matrix, padding_mask=None):
        vocabulary_size, width = embedding_matrix.shape
        if embeddings.shape[-1] != width:
            raise ValueError(
                f"The embeddings have width {embeddings.shape[-1]} but the "
                f"embedding matrix has rows of width {width}; they must match."
            )
        is_excluded = self._excluded_mask(vocabulary_size)
        chunk = vocabulary_size if self.chunk_size is None else min(self.chunk_size, vocabulary_size)
        num_chunks = math.ceil(vocabulary_size / chunk)
        first_allowed = int(np.argmin(is_excluded))

        batch_shape = ops.shape(embeddings)[:-1]
        queries = sim.prepare_queries(ops.reshape(embeddings, (-1, width)), self.similarity)
        num_queries = ops.shape(queries)[0]

        if num_chunks == 1:
            # The whole table: a block of a multiple of `_GROUP` rows takes the
            # grouped search, and the last `_GROUP` rows cover the remainder.
            blocks = [(0, vocabulary_size)]
            if vocabulary_size % _GROUP and vocabulary_size > _GROUP:
                blocks = [(0, vocabulary_size - vocabulary_size % _GROUP),
                          (vocabulary_size - _GROUP, _GROUP)]
        else:
            # The last chunk is shifted back to stay inside the table.
            blocks = [(min(i * chunk, vocabulary_size - chunk), chunk) for i in range(num_chunks)]
        # Rows seen twice cannot win twice because only a strictly better
        # score replaces the current answer (which also keeps ties on the
        # lowest id, as blocks come in increasing order). Only the blocks that
        # hold excluded ids pay the masking pass.
        block_has_excluded = [bool(is_excluded[s:s + n].any()) for s, n in blocks]
        excluded = ops.convert_to_tensor(is_excluded)

        def best_in_chunk(start, size, has_excluded):
            rows = ops.slice(embedding_matrix, (start, 0), (size, width))
            scores = sim.scores(queries, rows, self.similarity)

            def masked():
                chunk_excluded = ops.slice(excluded, (start,), (size,))
                return ops.where(chunk_excluded[None, :], -np.inf, scores)

            if isinstance(has_excluded, bool):
                scores = masked() if has_excluded else scores
            else:
                scores = tf.cond(has_excluded, masked, lambda: scores)
            first_maximum = _first_maximum_in_groups if size % _GROUP == 0 else _first_maximum
            best, index = first_maximum(scores)
            return best, index + ops.cast(start, "int32")

        def merge(start, size, state, has_excluded):
            best, index = state
            chunk_best, chunk_index = best_in_chunk(start, size, has_excluded)
            better = chunk_best > best
            return ops.where(better, chunk_best, best), ops.where(better, chunk_index, index)

        state = (
            ops.full((num_queries,), -np.inf, dtype="float32"),
            ops.full((num_queries,), first_allowed, dtype="int32"),
        )
        if num_chunks == 1:
            for (start, size), has_excluded in zip(blocks, block_has_excluded):
                state = merge(start, size, state, has_excluded)
            token_ids = state[1]
        else:
            # One chunk at a time: the chunks' products do not depend on the
            # loop state, so a parallel loop (`ops.fori_loop` allows ten
            # iterations at once) would hold ten blocks and thrash the cache.
            starts_by_chunk = tf.constant([start for start, _ in blocks], dtype=tf.int32)
            has_excluded_by_chunk = tf.constant(block_has_excluded)
            _, _, token_ids = tf.while_loop(
                lambda i, *_: i < num_chunks,
                lambda i, best, index: (
                    i + 1,
                    *merge(tf.gather(starts_by_chunk, i), chunk, (best, index),
                           tf.gather(has_excluded_by_chunk, i)),
                ),
                (tf.constant(0), *state),
                parallel_iterations=1,
            )
        token_ids = ops.reshape(token_ids, batch_shape)
        if padding_mask is not None:
            token_ids = ops.where(ops.cast(padding_mask, "bool"), token_ids, self.pad_token_id)
        return token_ids

    def compute_output_spec(self, embeddings, embedding_matrix, padding_mask=None):
        return keras.KerasTensor(embeddings.shape[:-1], dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "similarity": self.similarity,
                "chunk_size": self.chunk_size,
                "excluded_token_ids": list(self.excluded_token_ids),
                "pad_token_id": self.pad_token_id,
            }
        )
        return config
