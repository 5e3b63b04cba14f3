import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from augpro_keras.layers import EmbeddingProjection
from tests import harness


def brute_force(embeddings, table, similarity, excluded=()):
    queries = embeddings.reshape(-1, embeddings.shape[-1]).astype("float64")
    table = table.astype("float64")
    if similarity == "cosine":
        qn = np.linalg.norm(queries, axis=1, keepdims=True)
        tn = np.linalg.norm(table, axis=1, keepdims=True)
        scores = (queries / np.maximum(qn, 1e-12)) @ (table / np.maximum(tn, 1e-12)).T
    elif similarity == "dot":
        scores = queries @ table.T
    else:
        scores = -((queries[:, None, :] - table[None, :, :]) ** 2).sum(-1)
    scores[:, list(excluded)] = -np.inf
    return scores.argmax(axis=1).reshape(embeddings.shape[:-1])  # numpy: first max on ties


@pytest.mark.parametrize("similarity", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("chunk_size", [None, 1, 7, 16, 50, 97, 1000])
def test_matches_brute_force_for_every_chunk_size(similarity, chunk_size):
    rng = np.random.default_rng(0)
    table = rng.normal(size=(97, 8)).astype("float32")
    embeddings = rng.normal(size=(3, 5, 8)).astype("float32")
    excluded = (0, 3, 50)
    layer = EmbeddingProjection(similarity, chunk_size=chunk_size, excluded_token_ids=excluded)
    got = layer(embeddings, table).numpy()
    np.testing.assert_array_equal(got, brute_force(embeddings, table, similarity, excluded))
    assert not np.isin(got, excluded).any()


@pytest.mark.parametrize("chunk_size", [None, 2, 3])
def test_ties_go_to_lowest_id(chunk_size):
    table = np.array([[1, 0], [0, 1], [0, 1], [2, 0], [0, 3]], dtype="float32")
    # cosine: rows 1, 2 and 4 are equally similar to (0, 1); rows 0 and 3 to (1, 0).
    embeddings = np.array([[[0, 1], [1, 0]]], dtype="float32")
    layer = EmbeddingProjection(chunk_size=chunk_size)
    np.testing.assert_array_equal(layer(embeddings, table).numpy(), [[1, 0]])
    layer = EmbeddingProjection(chunk_size=chunk_size, excluded_token_ids=(0, 1))
    np.testing.assert_array_equal(layer(embeddings, table).numpy(), [[2, 3]])


@pytest.mark.parametrize("chunk_size", [None, 3])
def test_padding_and_zero_vectors(chunk_size):
    rng = np.random.default_rng(1)
    table = rng.normal(size=(10, 4)).astype("float32")
    embeddings = np.zeros((2, 3, 4), dtype="float32")
    embeddings[0, 0] = table[7]
    mask = np.array([[True, True, False], [True, False, False]])
    layer = EmbeddingProjection(chunk_size=chunk_size, excluded_token_ids=(0, 1), pad_token_id=0)
    got = layer(embeddings, table, padding_mask=mask).numpy()
    # A zero vector is equally (un)similar to all tokens: lowest allowed id.
    np.testing.assert_array_equal(got, [[7, 2, 0], [2, 0, 0]])


def test_zero_rows_in_table_and_nan_free():
    table = np.zeros((6, 4), dtype="float32")
    table[4] = 1.0
    embeddings = np.ones((1, 2, 4), dtype="float32")
    got = EmbeddingProjection()(embeddings, table).numpy()
    np.testing.assert_array_equal(got, [[4, 4]])


def test_bfloat16_inputs_use_float32_similarities():
    rng = np.random.default_rng(2)
    table = rng.normal(size=(50, 8)).astype("float32")
    embeddings = rng.normal(size=(2, 4, 8)).astype("float32")
    layer = EmbeddingProjection()
    expected = layer(tf.cast(tf.cast(embeddings, "bfloat16"), "float32"), table).numpy()
    got = layer(tf.cast(embeddings, "bfloat16"), table).numpy()
    np.testing.assert_array_equal(got, expected)


def test_chunked_graph_has_no_vocabulary_sized_block():
    rng = np.random.default_rng(3)
    vocab, chunk = 5000, 128
    table = tf.constant(rng.normal(size=(vocab, 8)).astype("float32"))
    embeddings = tf.constant(rng.normal(size=(2, 3, 8)).astype("float32"))
    layer = EmbeddingProjection(chunk_size=chunk)
    graph = tf.function(lambda e, t: layer(e, t)).get_concrete_function(embeddings, table).graph
    sizes = []
    for op in graph.get_operations():
        for output in op.outputs:
            if output.shape.rank and output.shape.is_fully_defined():
                sizes.append(output.shape.num_elements())
    for function in graph._functions.values():  # while-loop bodies
        for op in function.graph.get_operations():
            for output in op.outputs:
                if output.shape.rank and output.shape.is_fully_defined():
                    sizes.append(output.shape.num_elements())
    biggest_similarity_block = 2 * 3 * chunk
    table_size = vocab * 8
    # Nothing as large as [B*L, V] exists; the largest tensors are the table
    # itself and the exclusion mask of every chunk (the vocabulary, plus the
    # rows that the last chunk, shifted back into the table, sees again).
    exclusion_masks = math.ceil(vocab / chunk) * chunk
    assert max(s for s in sizes if s != table_size) <= max(biggest_similarity_block, exclusion_masks)
    assert 2 * 3 * vocab not in sizes


def test_inside_a_keras_model_and_serialization():
    rng = np.random.default_rng(4)
    table = rng.normal(size=(30, 6)).astype("float32")
    embeddings = rng.normal(size=(2, 4, 6)).astype("float32")
    layer = EmbeddingProjection("l2", chunk_size=8, excluded_token_ids=(0, 2), pad_token_id=0)
    inputs = keras.Input((4, 6))
    model = keras.Model(inputs, layer(inputs, table))
    restored = EmbeddingProjection.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    np.testing.assert_array_equal(model(embeddings).numpy(), restored(embeddings, table).numpy())
    config = keras.saving.serialize_keras_object(layer)
    again = keras.saving.deserialize_keras_object(config)
    np.testing.assert_array_equal(again(embeddings, table).numpy(), layer(embeddings, table).numpy())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"similarity": "euclid"}, "Allowed values: cosine, dot, l2"),
        ({"chunk_size": 0}, "positive integer"),
        ({"chunk_size": -3}, "positive integer"),
        ({"excluded_token_ids": (-1,)}, "non-negative"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EmbeddingProjection(**kwargs)


def test_bad_call_arguments():
    table = np.ones((5, 4), dtype="float32")
    with pytest.raises(ValueError, match="width 3 .* width 4"):
        EmbeddingProjection()(np.ones((1, 2, 3), "float32"), table)
    with pytest.raises(ValueError, match=r"\[9\] are outside the vocabulary of size 5"):
        EmbeddingProjection(excluded_token_ids=(9,))(np.ones((1, 2, 4), "float32"), table)
    with pytest.raises(ValueError, match="nothing is left"):
        EmbeddingProjection(excluded_token_ids=range(5))(np.ones((1, 2, 4), "float32"), table)


@pytest.mark.parametrize("chunk_size", [None, 7])
def test_same_answer_under_xla(chunk_size):
    rng = np.random.default_rng(5)
    table = rng.normal(size=(97, 8)).astype("float32")
    embeddings = rng.normal(size=(3, 5, 8)).astype("float32")
    layer = EmbeddingProjection(chunk_size=chunk_size, excluded_token_ids=(0, 1))
    compiled = tf.function(lambda e, t: layer(e, t), jit_compile=True)
    np.testing.assert_array_equal(
        compiled(embeddings, table).numpy(), brute_force(embeddings, table, "cosine", (0, 1))
    )


@pytest.mark.parametrize("similarity", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("chunk_size", [None, 128, 256])
def test_grouped_search_matches_brute_force_with_ties(similarity, chunk_size):
    # Chunks of a multiple of 128 rows take the grouped search, and so does
    # the whole table (640 of its 700 rows, then its last 128); copies of the
    # best rows sit in one group, in other groups, in other chunks and in the
    # remainder, so only the lowest id may win.
    rng = np.random.default_rng(6)
    table = rng.normal(size=(700, 8)).astype("float32")
    for copy_to in (5, 130, 300, 639, 690):
        table[copy_to] = table[400]
    for copy_to in (260, 261, 600):
        table[copy_to] = table[270]
    embeddings = rng.normal(size=(4, 6, 8)).astype("float32")
    embeddings[0, :2] = table[400] + 0.01 * rng.normal(size=(2, 8))
    embeddings[1, :2] = table[270] * 2.0
    excluded = (0, 5, 129)
    layer = EmbeddingProjection(similarity, chunk_size=chunk_size, excluded_token_ids=excluded)
    got = layer(embeddings, table).numpy()
    np.testing.assert_array_equal(got, brute_force(embeddings, table, similarity, excluded))
    if similarity == "cosine":
        np.testing.assert_array_equal(got[0, :2], [130, 130])
        np.testing.assert_array_equal(got[1, :2], [260, 260])
    compiled = tf.function(lambda e, t: layer(e, t), jit_compile=True)
    np.testing.assert_array_equal(compiled(embeddings, table).numpy(), got)


# --- bfloat16 search ----------------------------------------------------------


def near_tie_table(seed, vocab=1000, width=16):
    """A table whose rows form 20 tight clusters, and queries near its rows:
    the best rows of a query differ by about 1e-3, a tie at bfloat16's
    resolution (2^-9 near 1) but not at float32's."""
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(vocab, width)).astype("float32")
    centres = rng.normal(size=(20, width)).astype("float32")
    table[:600] = centres[rng.integers(0, 20, 600)] + 0.03 * rng.normal(size=(600, width))
    embeddings = table[rng.integers(0, vocab, (4, 30))] + 0.03 * rng.normal(size=(4, 30, width))
    return table, embeddings.astype("float32")


@pytest.mark.parametrize("similarity", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("chunk_size", [None, 37, 128, 300])  # 37: a last chunk of one row
def test_exact_bfloat16_search_matches_float32_on_near_ties(similarity, chunk_size, record_property):
    table, embeddings = near_tie_table(7)
    excluded = (0, 5, 129, 999)
    expected = brute_force(embeddings, table, similarity, excluded)
    np.testing.assert_array_equal(
        EmbeddingProjection(similarity, chunk_size=chunk_size, excluded_token_ids=excluded)(
            embeddings, table).numpy(), expected)
    layer = EmbeddingProjection(similarity, chunk_size=chunk_size, excluded_token_ids=excluded,
                                search_dtype="bfloat16")
    np.testing.assert_array_equal(layer(embeddings, table).numpy(), expected)
    inexact = EmbeddingProjection(similarity, chunk_size=chunk_size, excluded_token_ids=excluded,
                                  search_dtype="bfloat16", exact=False)(embeddings, table).numpy()
    assert not np.isin(inexact, excluded).any()
    # The table is hard on purpose: the plain bfloat16 answer often differs,
    # and many positions need the float32 re-search.
    change_rate = float(np.mean(inexact != expected))
    stages = layer.re_searched_positions(embeddings, table)
    candidate_rate = float(np.mean(stages["candidates"].numpy()))
    float32_rate = float(np.mean(stages["float32"].numpy()))
    record_property("inexact_answer_change_rate", change_rate)
    record_property("candidate_search_rate", candidate_rate)
    record_property("float32_search_rate", float32_rate)
    print(f"near ties, {similarity}, chunk {chunk_size}: inexact bfloat16 changes "
          f"{change_rate:.1%} of the answers; {candidate_rate:.1%} re-searched with "
          f"candidates, {float32_rate:.1%} in float32")
    assert change_rate > 0.0 and candidate_rate >= change_rate and float32_rate > 0.0
    assert not np.any(stages["float32"].numpy() & ~stages["candidates"].numpy())


@pytest.mark.parametrize("similarity", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("chunk_size", [None, 128])
def test_exact_bfloat16_search_under_xla(similarity, chunk_size):
    table, embeddings = near_tie_table(8, vocab=700)
    mask = np.random.default_rng(8).random((4, 30)) > 0.2
    layer = EmbeddingProjection(similarity, chunk_size=chunk_size, excluded_token_ids=(0, 1),
                                search_dtype="bfloat16")
    compiled = tf.function(lambda e, t, m: layer(e, t, m), jit_compile=True)
    expected = np.where(mask, brute_force(embeddings, table, similarity, (0, 1)), 0)
    np.testing.assert_array_equal(compiled(embeddings, table, mask).numpy(), expected)


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("chunk_size", [None, 2, 3, 128])
def test_bfloat16_ties_go_to_lowest_id(exact, chunk_size):
    table = np.array([[1, 0], [0, 1], [0, 1], [2, 0], [0, 3]], dtype="float32")
    table = np.concatenate([table, np.full((200, 2), [-1.0, -1.0], "float32")])
    embeddings = np.array([[[0, 1], [1, 0]]], dtype="float32")
    for excluded, expected in (((), [[1, 0]]), ((0, 1), [[2, 3]])):
        layer = EmbeddingProjection(chunk_size=chunk_size, excluded_token_ids=excluded,
                                    search_dtype="bfloat16", exact=exact)
        np.testing.assert_array_equal(layer(embeddings, table).numpy(), expected)


@pytest.mark.parametrize("similarity", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("width", [8, 384, 1024])
def test_bfloat16_error_bound_holds(similarity, width):
    # The bound that certifies the exact search, against the actual
    # difference of the bfloat16 and float32 scores of every pair; rows of
    # mixed scales and entries that cancel make the errors large.
    from augpro_keras.layers import embedding_projection as module
    from augpro_keras.layers import similarity as sim

    rng = np.random.default_rng(width)
    table = rng.normal(size=(400, width)) * rng.lognormal(0, 1, size=(400, 1))
    table[:50] = np.abs(table[:50])
    queries = np.concatenate([np.abs(rng.normal(size=(32, width))), rng.normal(size=(32, width)) * 5])
    queries = sim.prepare_queries(tf.constant(queries, "float32"), similarity)
    rows = sim.prepare_rows(tf.constant(table, "float32"), similarity)
    exact = sim.scores(queries, rows, "dot" if similarity == "cosine" else similarity).numpy()
    approximate = sim.bfloat16_scores(tf.cast(queries, "bfloat16"), tf.cast(rows, "bfloat16"),
                                      similarity, tf.reduce_sum(tf.square(rows), axis=-1))
    approximate = tf.cast(approximate, "float32").numpy()
    row_norm = 1.0 if similarity == "cosine" else float(np.linalg.norm(rows.numpy(), axis=1).max())
    query_norms = tf.norm(queries, axis=1)[:, None]
    query_errors = module._query_rounding_errors(queries)[:, None]
    np.testing.assert_allclose(  # the measured rounding error, against float64
        query_errors.numpy()[:, 0],
        np.linalg.norm(tf.cast(tf.cast(queries, "bfloat16"), "float64").numpy()
                       - queries.numpy().astype("float64"), axis=1), rtol=1e-5)
    bound = module._bfloat16_error_bound(tf.constant(approximate), query_norms, query_errors,
                                         row_norm, width, similarity).numpy()
    error = np.abs(approximate - exact)
    assert (error <= bound).all()
    # Not vacuous: the worst error uses a real share of the bound.
    assert (error / bound).max() > 0.02


@pytest.mark.parametrize("similarity", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("chunk_size", [None, 1024])
def test_exact_bfloat16_search_on_random_normal_data(similarity, chunk_size):
    # The benchmark's hard case, smaller: best scores within a few bfloat16
    # roundings of each other, 32 groups of 128 rows, a shifted last chunk.
    rng = np.random.default_rng(11)
    table = rng.normal(size=(4000, 128)).astype("float32")
    embeddings = rng.normal(size=(4, 128, 128)).astype("float32")
    excluded = (0, 1, 2, 130, 3999)
    expected = brute_force(embeddings, table, similarity, excluded)
    layer = EmbeddingProjection(similarity, chunk_size=chunk_size, excluded_token_ids=excluded,
                                search_dtype="bfloat16")
    np.testing.assert_array_equal(layer(embeddings, table).numpy(), expected)
    stages = layer.re_searched_positions(embeddings, table)
    candidate_rate = float(np.mean(stages["candidates"].numpy()))
    float32_rate = float(np.mean(stages["float32"].numpy()))
    print(f"random normal, {similarity}, chunk {chunk_size}: {candidate_rate:.1%} re-searched "
          f"with candidates, {float32_rate:.1%} in float32")
    # The first pass (the best columns of 4 groups) certifies most positions.
    assert candidate_rate < 0.3 and float32_rate <= candidate_rate


def minilm_word_embeddings():
    from safetensors.numpy import load_file

    from augpro_keras.models import minilm_l6_path

    weights = load_file(f"{minilm_l6_path()}/model.safetensors")
    return weights["embeddings.word_embeddings.weight"]


MINILM_SPECIAL = (0, 100, 101, 102, 103)  # [PAD], [UNK], [CLS], [SEP], [MASK]


@pytest.mark.parametrize("chunk_size", [None, 4096, 5000])
def test_exact_bfloat16_search_on_minilm_mixes(chunk_size, record_property):
    # AugPro-Mix queries: 0.5/0.5 mixes of the real token embeddings of
    # MiniLM-L6 (vocabulary 30522, width 384), projected onto its table.
    table = minilm_word_embeddings()
    rng = np.random.default_rng(0)
    pairs = rng.integers(999, table.shape[0], size=(2, 128, 2))
    embeddings = 0.5 * table[pairs[..., 0]] + 0.5 * table[pairs[..., 1]]
    mask = rng.random((2, 128)) > 0.1
    table_t, embeddings_t = tf.constant(table), tf.constant(embeddings)
    expected = np.where(mask, brute_force(embeddings, table, "cosine", MINILM_SPECIAL), 0)
    layer = EmbeddingProjection(chunk_size=chunk_size, excluded_token_ids=MINILM_SPECIAL,
                                search_dtype="bfloat16")
    np.testing.assert_array_equal(layer(embeddings_t, table_t, mask).numpy(), expected)
    inexact = EmbeddingProjection(chunk_size=chunk_size, excluded_token_ids=MINILM_SPECIAL,
                                  search_dtype="bfloat16", exact=False)
    change_rate = float(np.mean((inexact(embeddings_t, table_t, mask).numpy() != expected)[mask]))
    stages = layer.re_searched_positions(embeddings_t, table_t, mask)
    candidate_rate = float(np.mean(stages["candidates"].numpy()[mask]))
    float32_rate = float(np.mean(stages["float32"].numpy()[mask]))
    record_property("inexact_answer_change_rate", change_rate)
    record_property("candidate_search_rate", candidate_rate)
    record_property("float32_search_rate", float32_rate)
    print(f"MiniLM mixes, chunk {chunk_size}: inexact bfloat16 changes {change_rate:.1%} of "
          f"the answers; {candidate_rate:.1%} re-searched with candidates, "
          f"{float32_rate:.1%} in float32")
    # The first pass (4 kept groups) settles nearly every position.
    assert candidate_rate <= 0.02 and float32_rate <= 0.02
    assert not np.any(stages["candidates"].numpy()[~mask])


@pytest.mark.parametrize("search_dtype", ["float32", "bfloat16"])
def test_non_finite_embeddings(search_dtype):
    rng = np.random.default_rng(9)
    table = rng.normal(size=(300, 8)).astype("float32")
    embeddings = table[rng.integers(4, 300, (2, 5))] + 0.01
    embeddings[0, 1, 3] = np.nan
    embeddings[1, 4] = np.inf
    layer = EmbeddingProjection(excluded_token_ids=(0, 1), pad_token_id=0, search_dtype=search_dtype)
    with pytest.raises(ValueError, match=r"non-finite embeddings \(NaN or infinity\) at 2 "
                                         r"position\(s\), the first at index \(0, 1\)"):
        layer(embeddings, table)
    # Outside the mask a NaN is not projected, so it is no error.
    mask = np.ones((2, 5), bool)
    mask[0, 1] = mask[1, 4] = False
    expected = np.where(mask, brute_force(embeddings, table, "cosine", (0, 1)), 0)
    np.testing.assert_array_equal(layer(embeddings, table, mask).numpy(), expected)
    # Inside a compiled function: the pad id, never a real token.
    for jit_compile in (False, True):
        compiled = tf.function(lambda e, t: layer(e, t), jit_compile=jit_compile)
        got = compiled(embeddings, table).numpy()
        assert got[0, 1] == 0 and got[1, 4] == 0
        np.testing.assert_array_equal(got[mask], expected[mask])
    bad_table = table.copy()
    bad_table[[17, 40]] = np.nan
    with pytest.raises(ValueError, match=r"non-finite values \(NaN or infinity\) in 2 row\(s\), "
                                         r"the first \[17, 40\]"):
        layer(embeddings, bad_table, mask)


def test_bfloat16_config_and_bad_arguments():
    layer = EmbeddingProjection("dot", chunk_size=256, search_dtype="bfloat16", exact=False)
    config = layer.get_config()
    assert config["search_dtype"] == "bfloat16" and config["exact"] is False
    assert EmbeddingProjection.from_config(config).get_config() == config
    assert EmbeddingProjection().get_config()["search_dtype"] == "float32"
    with pytest.raises(ValueError, match="must be one of float32, bfloat16. Received: search_dtype='float16'"):
        EmbeddingProjection(search_dtype="float16")
    with pytest.raises(ValueError, match="`exact` must be True or False. Received: exact=1"):
        EmbeddingProjection(search_dtype="bfloat16", exact=1)
    with pytest.raises(ValueError, match="only applies to search_dtype='bfloat16'"):
        EmbeddingProjection(exact=False)
    with pytest.raises(ValueError, match="applies to search_dtype='bfloat16' with exact=True"):
        layer.re_searched_positions(np.ones((1, 2, 4), "float32"), np.ones((5, 4), "float32"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"similarity": "l2", "chunk_size": 8, "excluded_token_ids": (0, 2), "pad_token_id": 0},
        {"similarity": "dot", "search_dtype": "bfloat16"},
    ],
)
def test_layer_harness(kwargs):
    rng = np.random.default_rng(5)
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    harness.run_layer_test(
        EmbeddingProjection,
        kwargs,
        input_data={"embeddings": rng.normal(size=(2, 4, 6)).astype("float32"), "padding_mask": mask},
        constants={"embedding_matrix": rng.normal(size=(30, 6)).astype("float32")},
        expected_output_shape=(2, 4),
        expected_output_dtype="int32",
    )


def test_exact_bfloat16_search_needs_static_positions():
    layer = EmbeddingProjection(search_dtype="bfloat16")
    table = tf.constant(np.random.default_rng(10).normal(size=(300, 8)).astype("float32"))
    traced = tf.function(lambda e: layer(e, table),
                         input_signature=[tf.TensorSpec((None, 5, 8), tf.float32)])
    with pytest.raises(ValueError, match="needs a static number of positions"):
        traced.get_concrete_function()
    inexact = EmbeddingProjection(search_dtype="bfloat16", exact=False)
    dynamic = tf.function(lambda e: inexact(e, table),
                          input_signature=[tf.TensorSpec((None, 5, 8), tf.float32)])
    embeddings = tf.gather(table, [[4, 9, 17, 200, 3]])
    np.testing.assert_array_equal(dynamic(embeddings).numpy(), [[4, 9, 17, 200, 3]])
