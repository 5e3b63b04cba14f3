"""Similarity scores between query vectors and an embedding table.

Shared by `EmbeddingProjection` (nearest token) and the KNN baseline
(k nearest tokens). Everything here is computed in float32 so that the
answers do not change under a `mixed_bfloat16` policy.
"""

import tensorflow as tf
from keras import ops

SIMILARITIES = ("cosine", "dot", "l2")
_NORM_EPSILON = 1e-12


def validate_similarity(similarity):
    if similarity not in SIMILARITIES:
        raise ValueError(
            f"Unknown similarity {similarity!r}. Allowed values: {', '.join(SIMILARITIES)}."
        )
    return similarity


def l2_normalize(x):
    """Normalises rows to unit length; a zero row stays zero (never NaN)."""
    norm = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))
    return x / ops.maximum(norm, _NORM_EPSILON)


def prepare_queries(queries, similarity):
    """Casts `[N, H]` queries to float32 and normalises them for cosine."""
    queries = ops.cast(queries, "float32")
    return l2_normalize(queries) if similarity == "cosine" else queries


def scores(prepared_queries, table_rows, similarity):
    """Scores `[N, C]`; larger is more similar.

    For "l2" the score is `2 q.e - |e|^2`, the negative squared distance up
    to `|q|^2`, which is the same for every row of the table and so does not
    change the ranking.
    """
    table_rows = ops.cast(table_rows, "float32")
    if similarity == "cosine":
        table_rows = l2_normalize(table_rows)
    # `transpose_b` reads the rows in place; `ops.transpose` would copy them.
    dots = tf.matmul(prepared_queries, table_rows, transpose_b=True)
    if similarity == "l2":
        return 2.0 * dots - ops.sum(ops.square(table_rows), axis=-1)[None, :]
    return dots
