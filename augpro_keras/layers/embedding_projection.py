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


# Columns per sub-group inside a kept group (`_best_two_in_slots`).
_SUBGROUP = 16
# Bits of bfloat16 -inf read as int16 (0xFF80).
_BFLOAT16_MINUS_INF_BITS = -128


def _score_groups(scores, excluded, has_excluded, group=_GROUP):
    """A block's scores `[N, C]` as `[N, ceil(C / group), group]` groups,
    -inf in the columns that `excluded` marks and in the padding to a whole
    group (only blocks of a size that is not a multiple of `group` pay it)."""
    pad = -scores.shape[1] % group
    if pad:
        scores = tf.pad(scores, [[0, 0], [0, pad]])
        excluded = tf.concat([tf.convert_to_tensor(excluded), tf.ones((pad,), tf.bool)], axis=0)
        has_excluded = True
    scores = _masked(scores, excluded, has_excluded)
    return tf.reshape(scores, (-1, scores.shape[1] // group, group))


def _group_maxima(groups, exact):
    """Float32 row maxima `[N, G]` of `groups` `[N, G, group]`.

    TensorFlow's CPU reductions over bfloat16 convert element by element and
    run several times slower than the bfloat16 matmul's own output rate, so
    bfloat16 groups are reduced as their int16 bit patterns, which is
    vectorised. For non-negative numbers the bit patterns are in the order of
    the values, and every negative bfloat16 reads as a negative int16, so
    the largest int16 is the largest value whenever the group holds a
    non-negative score. A group of negative scores only (int16 maximum below
    zero) has its true maximum where its int16 minimum is (the smallest
    magnitude): with `exact`, that reduction is paid too; without, such a
    group gets the upper bound 0, enough for the certificate, which needs
    upper bounds only. Float32 groups (the "l2" scores) are reduced directly.
    """
    if groups.dtype == tf.float32:
        return tf.reduce_max(groups, axis=2)
    bits = tf.bitcast(groups, tf.int16)
    largest = tf.reduce_max(bits, axis=2)
    if exact:
        largest = tf.where(largest >= 0, largest, tf.reduce_min(bits, axis=2))
    values = tf.cast(tf.bitcast(largest, tf.bfloat16), tf.float32)
    return values if exact else tf.where(largest >= 0, values, 0.0)


def _best_two_in_slots(slots):
    """Each slot's best score, its first column and its second-best score
    (the best of its other columns; equal to the best on a tie) for float32
    `slots` `[N, K, group]`.

    Through sub-groups of `_SUBGROUP` columns (or the whole group if
    smaller): their maxima, the first sub-group with the best, and the first
    column of it; the second best is the larger of the other sub-groups'
    maxima and the winning sub-group's other columns. Only one reduction
    sees every column.
    """
    shape = tf.shape(slots)
    group = slots.shape[2]
    width = min(_SUBGROUP, group)
    subgroups = tf.reshape(slots, (shape[0], shape[1], group // width, width))
    sub_maxima = tf.reduce_max(subgroups, axis=3)
    sub_index = tf.argmax(sub_maxima, axis=2, output_type=tf.int32)
    best = tf.reduce_max(sub_maxima, axis=2)
    lowest = tf.constant(-np.inf, tf.float32)
    other_subgroups = tf.reduce_max(tf.where(
        tf.range(group // width)[None, None, :] == sub_index[..., None], lowest, sub_maxima), axis=2)
    winning = tf.gather(subgroups, sub_index, batch_dims=2)
    within = tf.argmax(winning, axis=2, output_type=tf.int32)
    other_columns = tf.reduce_max(tf.where(
        tf.range(width)[None, None, :] == within[..., None], lowest, winning), axis=2)
    return best, sub_index * width + within, tf.maximum(other_subgroups, other_columns)


def _slot_values(groups, group_index):
    """The groups `group_index` `[N, K]` of `groups` as float32 `[N, K, group]`."""
    return tf.cast(tf.gather(groups, group_index, batch_dims=1), tf.float32)


def _masked(scores, excluded, has_excluded):
    """`scores` with -inf in the columns that `excluded` marks.

    `has_excluded` (a Python bool, or a bool tensor inside the chunk loop)
    says whether the block has such columns; only those blocks pay the pass.
    """
    def masked():
        return tf.where(tf.convert_to_tensor(excluded)[None, :],
                        tf.constant(-np.inf, scores.dtype), scores)

    if isinstance(has_excluded, bool):
        return masked() if has_excluded else scores
    return tf.cond(has_excluded, masked, lambda: scores)


def _merge_best(state, block):
    """The better of two `(best, index)` answers; ties keep `state`.

    Blocks come in increasing order of rows, so keeping the earlier answer
    on a tie keeps the lowest id.
    """
    best, index = state
    block_best, block_index = block
    better = block_best > best
    return ops.where(better, block_best, best), ops.where(better, block_index, index)


# bfloat16 keeps 8 significant bits: a value rounds to nearest with a relative
# error of at most 2^-8. float32: 24 bits, 2^-24.
_BFLOAT16_ROUNDING = 2.0**-8
_FLOAT32_ROUNDING = 2.0**-24
# Smallest normal float32: values below it may be flushed to zero.
_FLOAT32_TINY = 2.0**-126


def _bfloat16_error_bound(scores, query_norms, query_errors, row_norm, width, similarity):
    """An upper bound on `float32 score - bfloat16 score` of any row whose
    bfloat16 score is at most `scores` (per position), and on the absolute
    difference of the two scores of one row.

    Derived in docs/method.md ("Projection in bfloat16"). With `u = 2^-8`,
    `g = H 2^-24 / (1 - H 2^-24)`, `Q` the query's norm, `d` the norm of its
    rounding error `bfloat16(q) - q` (measured, about `0.4 u Q`) and `M`
    the largest row norm (1 for cosine):

    - the casts move a score by at most `d M + u Q M + d u M`
      (Cauchy-Schwarz on `dq.e + q.de + dq.de`, `|de| <= u |e|`);
    - float32 accumulation in both searches: `2.05 g (1 + u)^2 Q M`;
    - cosine, dot: the bfloat16 output's own rounding, `u / (1 - u) |s|`;
    - l2 (`2 q.e - |e|^2`): twice the dot terms, the output rounding at the
      largest `|q.e|`, plus the float32 rounding of the subtraction in both
      searches.

    Norms are inflated by `(1 + (H + 4) 2^-24)` for their own rounding, and
    a term for values below the smallest normal float32 (flushed to zero)
    is added. The result is inflated by `2^-10` of itself plus `4` float32
    roundings of the score, so that rounding in this sum cannot shrink it.
    """
    u, u32 = _BFLOAT16_ROUNDING, _FLOAT32_ROUNDING
    gamma = width * u32 / (1.0 - width * u32)
    slack = 1.0 + (width + 4) * u32
    q = query_norms * slack
    d = ops.minimum(query_errors * slack, u * q)
    m = row_norm * slack
    dots = (d + u * q + d * u) * m + 2.05 * gamma * (1 + u) ** 2 * q * m
    output = u / (1 - u)
    tiny = _FLOAT32_TINY * (2.0 * math.sqrt(width) * (q + m) + 2.0 * width)
    magnitude = ops.abs(ops.where(ops.isinf(scores), 0.0, scores))
    if similarity == "l2":
        bound = 2.0 * (dots + output * (q * m + dots)) + 2.0 * tiny
        bound = bound + 2.0 * u32 * (2.0 * q * m + m * m) * slack
    else:
        bound = dots + output * magnitude + tiny
    return bound * (1.0 + 2.0**-10) + 4.0 * u32 * magnitude


def _query_rounding_errors(queries):
    """`|bfloat16(q) - q|` of each prepared float32 query `[N, H]` (the
    difference of a float32 number and its bfloat16 rounding is exact)."""
    errors = ops.cast(ops.cast(queries, "bfloat16"), "float32") - queries
    return ops.sqrt(ops.sum(ops.square(errors), axis=-1))


def _static_positions(queries):
    """The static number of positions of `queries` `[N, H]`, which the exact
    bfloat16 search needs to size its re-search rounds."""
    if queries.shape[0] is None:
        raise ValueError(
            "EmbeddingProjection(search_dtype='bfloat16', exact=True) needs a static number "
            "of positions (batch size times length) to size its re-search rounds; this call "
            "has embeddings of shape with unknown batch size or length. Batch with "
            "`drop_remainder=True` and a fixed length, or use exact=False or "
            "search_dtype='float32'."
        )
    return queries.shape[0]


# Groups of `_GROUP` columns whose best columns the first bfloat16 pass keeps
# and re-scores in float32. The second pass, for positions that the first
# cannot certify, keeps more, and smaller, groups: the two best rows of a
# position in one group of 128 (which the first pass cannot tell apart,
# since the second is its bound) are rarely in one group of 16.
_FIRST_GROUPS = 4
_SECOND_GROUPS = 16
_SECOND_GROUP = 16
# The re-searches of uncertified positions take this fraction of the
# positions per round (at least 8 rows): the second bfloat16 pass, then the
# float32 search.
_SECOND_ROWS = 1 / 16
_FLOAT32_ROWS = 1 / 64

_SEARCH_DTYPES = ("float32", "bfloat16")


def _check_finite(embeddings, embedding_matrix, finite, padding_mask):
    """Eager calls: refuse non-finite embeddings (inside the mask) and tables."""
    bad = ops.logical_not(ops.reshape(finite, ops.shape(embeddings)[:-1]))
    if padding_mask is not None:
        bad = ops.logical_and(bad, ops.cast(padding_mask, "bool"))
    bad = np.argwhere(ops.convert_to_numpy(bad))
    if len(bad):
        raise ValueError(
            f"EmbeddingProjection received non-finite embeddings (NaN or infinity) at "
            f"{len(bad)} position(s), the first at index {tuple(int(i) for i in bad[0])} of "
            f"the shape {tuple(embeddings.shape[:-1])}. There is no most similar token to a "
            "NaN; inside a compiled function (tf.function, fit) such positions get "
            "`pad_token_id`."
        )
    rows = ops.convert_to_numpy(ops.logical_not(ops.all(ops.isfinite(
        ops.cast(embedding_matrix, "float32")), axis=-1)))
    if rows.any():
        bad_rows = np.flatnonzero(rows)
        raise ValueError(
            f"The embedding matrix has non-finite values (NaN or infinity) in "
            f"{len(bad_rows)} row(s), the first {bad_rows[:5].tolist()}; the projection "
            "needs a finite table."
        )


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
    in float32 whatever the input dtype (or in bfloat16, see below).

    Non-finite embeddings (a NaN or an infinity in a position's vector)
    have no most similar token: called eagerly, the layer raises a
    `ValueError` naming the first such position inside the mask; inside a
    compiled function (`tf.function`, `fit`) such positions get
    `pad_token_id`, never a real token. An eager call also refuses a table
    with non-finite rows (inside a compiled step such a table means the
    model's weights are already non-finite, which the loss shows).

    With `chunk_size`, the vocabulary is scanned in chunks of that many rows
    and only a `[B * L, chunk_size]` block of similarities exists at a time,
    so memory does not grow with the vocabulary. The answer is exactly the
    same as without chunks for every chunk size. Chunks of a multiple of 128
    rows (4096, 8192, ...) and the whole table (`None`) take a faster search
    for each block's best token than other chunk sizes.

    `search_dtype="bfloat16"` scores with a bfloat16 matmul (several times
    faster than float32 on CPUs with AMX-BF16 and on TPUs). With `exact=True`
    (default) the answer is still the float32 search's: the bfloat16 pass
    keeps each position's best columns of its best 4 groups of 128 columns,
    which are re-scored in float32 and certified with an error bound on the
    bfloat16 scores (docs/method.md, "Projection in bfloat16"); positions
    it cannot certify take a bfloat16 pass that keeps 16 groups of 16, and
    positions still uncertified the float32 search, a fixed number of
    positions at a time. `re_searched_positions` reports the
    shares. `exact=False` returns the plain bfloat16 answer (ties, at
    bfloat16's resolution, to the lowest id). Without `chunk_size` the
    bfloat16 search holds a bfloat16 copy of the prepared table (half a
    float32 table); with it, memory stays chunk-sized.

    Args:
        similarity: "cosine" (default, as in the paper), "dot" (inner
            product) or "l2" (smallest Euclidean distance).
        chunk_size: `None` (compare with the whole table at once) or a
            positive number of vocabulary rows per chunk.
        excluded_token_ids: ids that are never returned, typically the
            special tokens (padding, [CLS], [SEP], [UNK], [MASK]).
        pad_token_id: the id returned at padding positions (and at
            non-finite embeddings inside compiled code).
        search_dtype: "float32" (default) or "bfloat16", the precision of
            the similarity search.
        exact: with `search_dtype="bfloat16"`, True (default) for exactly
            the float32 answer, False for the plain bfloat16 answer. Must be
            True with "float32".
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
    fast = augpro_keras.layers.EmbeddingProjection(
        excluded_token_ids=(0,), chunk_size=4096, search_dtype="bfloat16")
    fast(noisy, table)  # the same ids, searched in bfloat16
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
        search_dtype="float32",
        exact=True,
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
        if search_dtype not in _SEARCH_DTYPES:
            raise ValueError(
                f"`search_dtype` must be one of {', '.join(_SEARCH_DTYPES)}. "
                f"Received: search_dtype={search_dtype!r}"
            )
        self.search_dtype = search_dtype
        if not isinstance(exact, bool):
            raise ValueError(f"`exact` must be True or False. Received: exact={exact!r}")
        if not exact and search_dtype == "float32":
            raise ValueError(
                "`exact=False` only applies to search_dtype='bfloat16' (the float32 search "
                "is the reference). Received: search_dtype='float32', exact=False"
            )
        self.exact = exact

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

    def _plan(self, vocabulary_size):
        """The blocks of table rows that one search scans, fixed by the shapes.

        Returns `(blocks, block_excluded, first_allowed, chunked)`: a list of
        `(start, size)`, for each block a bool array of its rows that must
        not win (excluded ids, and rows that an earlier block already
        covered), the lowest allowed id, and whether the blocks run in a
        `tf.while_loop` (all of one size) or one after the other.
        """
        is_excluded = self._excluded_mask(vocabulary_size)
        chunk = vocabulary_size if self.chunk_size is None else min(self.chunk_size, vocabulary_size)
        num_chunks = math.ceil(vocabulary_size / chunk)
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
        block_excluded = []
        covered = 0
        for start, size in blocks:
            excluded = is_excluded[start:start + size].copy()
            excluded[:max(0, covered - start)] = True  # seen in an earlier block
            block_excluded.append(excluded)
            covered = start + size
        return blocks, block_excluded, int(np.argmin(is_excluded)), num_chunks > 1

    def _search(self, plan, block_search, merge, state):
        """Runs `block_search(block, start, size, excluded, has_excluded)`
        over the plan's blocks (`block` is the block's number) and folds the
        results into `state` with `merge`, in increasing order of rows."""
        blocks, block_excluded, _, chunked = plan
        if not chunked:
            for block, ((start, size), excluded) in enumerate(zip(blocks, block_excluded)):
                state = merge(state, block_search(block, start, size, excluded, bool(excluded.any())))
            return state
        # One chunk at a time: the chunks' products do not depend on the
        # loop state, so a parallel loop (`ops.fori_loop` allows ten
        # iterations at once) would hold ten blocks and thrash the cache.
        size = blocks[0][1]
        starts = tf.constant([start for start, _ in blocks], dtype=tf.int32)
        excluded_by_block = tf.constant(np.stack(block_excluded))
        has_excluded_by_block = tf.constant([bool(e.any()) for e in block_excluded])
        return tf.while_loop(
            lambda i, *_: i < len(blocks),
            lambda i, *state: (
                i + 1,
                *merge(state, block_search(i, tf.gather(starts, i), size,
                                           tf.gather(excluded_by_block, i),
                                           tf.gather(has_excluded_by_block, i))),
            ),
            (tf.constant(0), *state),
            parallel_iterations=1,
        )[1:]

    def _table_rows(self, embedding_matrix, start, size):
        """Rows `start` to `start + size` of the table, in float32, prepared
        for the similarity (normalised for cosine)."""
        width = embedding_matrix.shape[1]
        return sim.prepare_rows(ops.slice(embedding_matrix, (start, 0), (size, width)),
                                self.similarity)

    def _float32_search(self, queries, embedding_matrix, plan):
        """Ids `[N]` of the most similar allowed rows, scored in float32."""
        similarity = "dot" if self.similarity == "cosine" else self.similarity  # rows normalised

        def block_search(block, start, size, excluded, has_excluded):
            rows = self._table_rows(embedding_matrix, start, size)
            scores = _masked(sim.scores(queries, rows, similarity), excluded, has_excluded)
            first_maximum = _first_maximum_in_groups if size % _GROUP == 0 else _first_maximum
            best, index = first_maximum(scores)
            return best, index + ops.cast(start, "int32")

        num_queries = ops.shape(queries)[0]
        state = (ops.full((num_queries,), -np.inf, dtype="float32"),
                 ops.full((num_queries,), plan[2], dtype="int32"))
        return self._search(plan, block_search, _merge_best, state)[1]

    def _bfloat16_table(self, embedding_matrix, plan):
        """The table prepared for the bfloat16 searches.

        Returns `(rows_of, squared_norms_of, row_norm)`: functions of a
        block (its number, start and size) giving its prepared rows in
        bfloat16 (for cosine normalised in float32 first) and, for "l2",
        their squared norms in float32 (`None` otherwise), and the largest
        row norm for the error bound (1 for cosine, whose rows are
        normalised). Without chunks the prepared blocks are made once per
        call and the re-searches reuse them; with chunks every pass
        prepares its blocks again, so that memory does not grow with the
        vocabulary (a re-search round pays one pass over the table).
        """
        blocks, _, _, chunked = plan
        cosine = self.similarity == "cosine"

        def prepare(start, size):
            rows = self._table_rows(embedding_matrix, start, size)
            squared = None if cosine else ops.sum(ops.square(rows), axis=-1)
            return ops.cast(rows, "bfloat16"), squared

        if not chunked:
            prepared = [prepare(start, size) for start, size in blocks]

            def rows_of(block, start, size):
                return prepared[block][0]

            def squared_norms_of(block, start, size):
                return prepared[block][1]

            largest = None if cosine else tf.reduce_max(
                ops.concatenate([squared for _, squared in prepared], axis=0))
        else:

            def rows_of(block, start, size):
                return prepare(start, size)[0]

            def squared_norms_of(block, start, size):
                return ops.sum(ops.square(self._table_rows(embedding_matrix, start, size)), axis=-1)

            largest = None if cosine else tf.reduce_max(
                ops.sum(ops.square(ops.cast(embedding_matrix, "float32")), axis=-1))

        if cosine:
            return rows_of, None, 1.0
        return rows_of, squared_norms_of if self.similarity == "l2" else None, ops.sqrt(largest)

    def _bfloat16_search(self, queries, embedding_matrix, plan, searched, fallback=True):
        """Ids `[N]` from a bfloat16 search; exact (the float32 answer) by default.

        The exact search runs `_certified_search` with `_FIRST_GROUPS` kept
        groups on every position; the positions inside `searched` that it
        cannot certify take it again with `_SECOND_GROUPS` groups of
        `_SECOND_GROUP` columns (`_SECOND_ROWS`
        of the positions at a time), and those still uncertified the
        float32 search (`_FLOAT32_ROWS` at a time). With `fallback=False`,
        returns which positions each re-search takes
        (`re_searched_positions`) instead.
        """
        table = self._bfloat16_table(embedding_matrix, plan)
        if not self.exact:
            return self._bfloat16_argmax(queries, plan, table)
        _static_positions(queries)
        token_ids, uncertified = self._certified_search(
            queries, embedding_matrix, plan, table, _FIRST_GROUPS, _GROUP)
        first_needed = ops.logical_and(searched, uncertified)
        token_ids, needed = self._re_search(
            queries, token_ids, first_needed, _SECOND_ROWS,
            lambda rows: self._certified_search(rows, embedding_matrix, plan, table, _SECOND_GROUPS,
                                                _SECOND_GROUP))
        if not fallback:
            return first_needed, needed
        return self._re_search(
            queries, token_ids, needed, _FLOAT32_ROWS,
            lambda rows: (self._float32_search(rows, embedding_matrix, plan),
                          ops.zeros((rows.shape[0],), "bool")))[0]

    def _block_groups(self, table, bfloat16_queries, block, start, size, excluded, has_excluded,
                      group=_GROUP):
        """One block's bfloat16 scores as groups of `group` columns (`_score_groups`)."""
        rows_of, squared_norms_of, _ = table
        squared = None if squared_norms_of is None else squared_norms_of(block, start, size)
        scores = sim.bfloat16_scores(bfloat16_queries, rows_of(block, start, size),
                                     self.similarity, squared)
        return _score_groups(scores, excluded, has_excluded, group)

    def _bfloat16_argmax(self, queries, plan, table):
        """Ids `[N]` of the best bfloat16 scores (the inexact search): the
        exact group maxima, the first group with the best, its first column
        with it; blocks merge keeping the lower id on ties."""
        bfloat16_queries = ops.cast(queries, "bfloat16")

        def block_search(block, start, size, excluded, has_excluded):
            groups = self._block_groups(table, bfloat16_queries, block, start, size,
                                        excluded, has_excluded)
            maxima = _group_maxima(groups, exact=True)
            group_index = tf.argmax(maxima, axis=1, output_type=tf.int32)
            winning = tf.cast(tf.gather(groups, group_index, batch_dims=1), tf.float32)
            within = tf.argmax(winning, axis=1, output_type=tf.int32)
            best = tf.gather(maxima, group_index, batch_dims=1)
            return best, group_index * _GROUP + within + ops.cast(start, "int32")

        num_queries = ops.shape(queries)[0]
        state = (ops.full((num_queries,), -np.inf, dtype="float32"),
                 ops.full((num_queries,), plan[2], dtype="int32"))
        return self._search(plan, block_search, _merge_best, state)[1]

    def _certified_search(self, queries, embedding_matrix, plan, table, kept_groups, group):
        """`(token_ids, uncertified)` of `[R]` positions from one bfloat16 pass
        that keeps, per position, the best column of each of its best
        `kept_groups` groups of `group` columns.

        Each block's group maxima (`_group_maxima`, upper bounds) compete
        with the kept groups so far (`tf.math.top_k` over `K + G` values);
        the block's groups that enter are gathered and give their best
        column, its score and their second-best score
        (`_best_two_in_slots`). A threshold `t` collects the largest
        bfloat16 score that no kept column has: the groups that drop out
        (their maxima) and the second-best scores of the kept groups. So
        every row that is not a kept column has a bfloat16 score at most
        `t`, and a float32 score at most `t + bound(t)`
        (`_bfloat16_error_bound`). The kept columns are re-scored in
        float32; the best (the lowest id among equal scores) is the float32
        answer when it beats `t + bound(t)` (certified).
        """
        _, _, row_norm = table
        bfloat16_queries = ops.cast(queries, "bfloat16")
        k = kept_groups
        vocabulary_size = embedding_matrix.shape[0]

        def block_search(block, start, size, excluded, has_excluded):
            groups = self._block_groups(table, bfloat16_queries, block, start, size,
                                        excluded, has_excluded, group)
            return groups, _group_maxima(groups, exact=False), ops.cast(start, "int32")

        def merge(state, block):
            values, ids, threshold = state
            groups, maxima, start = block
            top_values, top_index = tf.math.top_k(ops.concatenate([values, maxima], axis=1), k=k + 1)
            chosen = top_index[:, :k]
            from_block = chosen >= k
            group_index = ops.clip(chosen - k, 0, maxima.shape[1] - 1)
            best, column, second = _best_two_in_slots(_slot_values(groups, group_index))
            earlier = ops.minimum(chosen, k - 1)
            values = ops.where(from_block, best, tf.gather(values, earlier, batch_dims=1))
            block_ids = ops.minimum(start + group_index * group + column, vocabulary_size - 1)
            ids = ops.where(from_block, block_ids, tf.gather(ids, earlier, batch_dims=1))
            dropped = ops.maximum(top_values[:, k], ops.max(ops.where(from_block, second, -np.inf), axis=1))
            return values, ids, ops.maximum(threshold, dropped)

        num_queries = ops.shape(queries)[0]
        state = (ops.full((num_queries, k), -np.inf, dtype="float32"),
                 ops.full((num_queries, k), plan[2], dtype="int32"),
                 ops.full((num_queries,), -np.inf, dtype="float32"))
        values, ids, threshold = self._search(plan, block_search, merge, state)
        rescored = sim.rescore(queries, embedding_matrix, ids, self.similarity)
        rescored = ops.where(values == -np.inf, -np.inf, rescored)  # excluded, placeholders
        best = tf.reduce_max(rescored, axis=1)
        token_ids = tf.reduce_min(
            ops.where(rescored == best[:, None], ids, np.iinfo("int32").max), axis=1)
        bound = _bfloat16_error_bound(
            threshold, ops.sqrt(ops.sum(ops.square(queries), axis=-1)),
            _query_rounding_errors(queries), row_norm, queries.shape[-1], self.similarity)
        # A threshold of -inf: every allowed row was kept and re-scored.
        certified = ops.logical_or(best > threshold + bound, ops.isinf(threshold))
        return token_ids, ops.logical_not(certified)

    def _re_search(self, queries, token_ids, needed, share, search):
        """Searches the positions where `needed` again with `search`.

        `search(queries[R, H])` returns `(token_ids[R], still_needed[R])`.
        The needed positions are searched `R` at a time (a static number,
        `share` of the positions, at least 8), in a loop that runs as many
        rounds as there are full or partial groups of them: none when no
        position is needed. Returns the updated `(token_ids, needed)`.
        """
        num_queries = _static_positions(queries)
        rows = min(num_queries, max(8, math.ceil(num_queries * share)))
        rounds = math.ceil(num_queries / rows)
        # The needed positions first, in increasing order; the padding to a
        # whole number of rounds repeats position 0, which is either needed
        # (and gets the same answer again) or written back unchanged.
        order = tf.argsort(ops.cast(ops.logical_not(needed), "int32"), stable=True)
        order = ops.concatenate([ops.cast(order, "int32"),
                                 ops.zeros((rounds * rows - num_queries,), "int32")])
        count = ops.sum(ops.cast(needed, "int32"))

        def one_round(i, token_ids, still_needed):
            positions = ops.slice(order, (i * rows,), (rows,))
            fresh, fresh_needed = search(ops.take(queries, positions, axis=0))
            write = ops.take(needed, positions)
            kept = ops.where(write, fresh, ops.take(token_ids, positions))
            kept_needed = ops.logical_and(write, fresh_needed)
            return (i + 1,
                    tf.tensor_scatter_nd_update(token_ids, positions[:, None], kept),
                    tf.tensor_scatter_nd_update(still_needed, positions[:, None], kept_needed))

        _, token_ids, needed = tf.while_loop(
            lambda i, *_: i * rows < count, one_round,
            (tf.constant(0), token_ids, ops.zeros_like(needed)),
            parallel_iterations=1,
        )
        return token_ids, needed

    def _prepare(self, embeddings, embedding_matrix, padding_mask):
        """Validation, the search plan, the prepared queries and the positions
        to search (finite, inside the mask)."""
        vocabulary_size, width = embedding_matrix.shape
        if embeddings.shape[-1] != width:
            raise ValueError(
                f"The embeddings have width {embeddings.shape[-1]} but the "
                f"embedding matrix has rows of width {width}; they must match."
            )
        plan = self._plan(vocabulary_size)
        flat = ops.reshape(embeddings, (-1, width))
        finite = ops.all(ops.isfinite(ops.cast(flat, "float32")), axis=-1)
        searched = finite
        if padding_mask is not None:
            searched = ops.logical_and(searched, ops.reshape(ops.cast(padding_mask, "bool"), (-1,)))
        if tf.executing_eagerly():
            _check_finite(embeddings, embedding_matrix, finite, padding_mask)
        return plan, sim.prepare_queries(flat, self.similarity), searched

    def call(self, embeddings, embedding_matrix, padding_mask=None):
        plan, queries, searched = self._prepare(embeddings, embedding_matrix, padding_mask)
        if self.search_dtype == "float32":
            token_ids = self._float32_search(queries, embedding_matrix, plan)
        else:
            token_ids = self._bfloat16_search(queries, embedding_matrix, plan, searched)
        # Non-finite embeddings and padding positions get the pad id.
        token_ids = ops.where(searched, token_ids, self.pad_token_id)
        return ops.reshape(token_ids, ops.shape(embeddings)[:-1])

    def re_searched_positions(self, embeddings, embedding_matrix, padding_mask=None):
        """Which positions the exact bfloat16 search searches again.

        Takes the call's arguments and returns a dict of two bool tensors
        `[B, L]`: "candidates", where the first bfloat16 pass (the best
        columns of `_FIRST_GROUPS` groups) could not certify its answer
        (these take a second bfloat16 pass that keeps `_SECOND_GROUPS`
        groups of `_SECOND_GROUP` columns), and "float32", where that could not certify either (these
        take the float32 search). Their means are the shares of those
        searches that a call pays on top of the bfloat16 pass. Needs
        `search_dtype="bfloat16"` and `exact=True`.
        """
        if self.search_dtype != "bfloat16" or not self.exact:
            raise ValueError(
                "`re_searched_positions` applies to search_dtype='bfloat16' with exact=True. "
                f"This layer has search_dtype={self.search_dtype!r}, exact={self.exact!r}."
            )
        plan, queries, searched = self._prepare(embeddings, embedding_matrix, padding_mask)
        candidates, float32 = self._bfloat16_search(queries, embedding_matrix, plan, searched,
                                                    fallback=False)
        shape = ops.shape(embeddings)[:-1]
        return {"candidates": ops.reshape(candidates, shape), "float32": ops.reshape(float32, shape)}

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
                "search_dtype": self.search_dtype,
                "exact": self.exact,
            }
        )
        return config
