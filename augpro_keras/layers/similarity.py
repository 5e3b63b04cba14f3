"""Similarity scores between query vectors and an embedding table.

Shared by `EmbeddingProjection` (nearest token) and the KNN baseline
(k nearest tokens). `scores` computes in float32, so that the answers do not
change under a `mixed_bfloat16` policy; `bfloat16_scores` is the fast
approximation that `EmbeddingProjection(search_dtype="bfloat16")` searches
with (and then certifies against float32).
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


def prepare_rows(table_rows, similarity):
    """Casts `[C, H]` table rows to float32 and normalises them for cosine."""
    table_rows = ops.cast(table_rows, "float32")
    return l2_normalize(table_rows) if similarity == "cosine" else table_rows


def scores(prepared_queries, table_rows, similarity):
    """Scores `[N, C]`; larger is more similar.

    For "l2" the score is `2 q.e - |e|^2`, the negative squared distance up
    to `|q|^2`, which is the same for every row of the table and so does not
    change the ranking.
    """
    table_rows = prepare_rows(table_rows, similarity)
    # `transpose_b` reads the rows in place; `ops.transpose` would copy them.
    dots = tf.matmul(prepared_queries, table_rows, transpose_b=True)
    if similarity == "l2":
        return 2.0 * dots - ops.sum(ops.square(table_rows), axis=-1)[None, :]
    return dots


def bfloat16_scores(bfloat16_queries, bfloat16_rows, similarity, squared_norms=None):
    """Approximate scores `[N, C]` from a bfloat16 matmul.

    `bfloat16_queries` and `bfloat16_rows` are the prepared queries and rows
    (`prepare_queries`, `prepare_rows`) cast to bfloat16. For "cosine" and
    "dot" the result is the bfloat16 product (bfloat16). For "l2" the
    product is cast to float32 before `squared_norms` (`|e|^2` of the
    float32 rows) is subtracted, since a bfloat16 subtraction would lose
    the small differences between rows.
    """
    dots = tf.matmul(bfloat16_queries, bfloat16_rows, transpose_b=True)
    if similarity == "l2":
        return 2.0 * ops.cast(dots, "float32") - squared_norms[None, :]
    return dots


def rescore(prepared_queries, table, token_ids, similarity):
    """Float32 scores `[N, K]` of each query against its own `K` token ids.

    The same values as `scores` gives for those rows, up to float32 rounding.
    """
    rows = prepare_rows(tf.gather(table, token_ids), similarity)
    dots = tf.linalg.matvec(rows, prepared_queries)  # [N, K, H] x [N, H]
    if similarity == "l2":
        return 2.0 * dots - ops.sum(ops.square(rows), axis=-1)
    return dots
