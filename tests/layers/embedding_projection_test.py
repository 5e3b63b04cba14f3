import keras
import numpy as np
import pytest
import tensorflow as tf

from augpro_keras.layers import EmbeddingProjection


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
    # itself and the vocabulary-sized exclusion mask.
    assert max(s for s in sizes if s != table_size) <= max(biggest_similarity_block, vocab)
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
