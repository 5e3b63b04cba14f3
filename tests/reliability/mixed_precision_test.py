"""`mixed_bfloat16`: projections give the float32 answers; the Distiller trains."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from augpro_keras import Distiller
from augpro_keras.layers import EmbeddingProjection
from tests import tiny


@pytest.fixture
def mixed_bfloat16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("similarity", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("chunk_size", [None, 37])
def test_projection_under_mixed_bfloat16_matches_float32(similarity, chunk_size, mixed_bfloat16):
    rng = np.random.default_rng(0)
    table = rng.normal(size=(300, 32)).astype("float32")
    embeddings = tf.cast(rng.normal(size=(4, 16, 32)).astype("float32"), "bfloat16")
    mask = rng.random((4, 16)) > 0.2
    mixed = EmbeddingProjection(similarity=similarity, chunk_size=chunk_size, excluded_token_ids=(0, 1))
    assert mixed.dtype_policy.name == "mixed_bfloat16"
    ids_mixed = mixed(embeddings, table, mask)
    reference = EmbeddingProjection(
        similarity=similarity, chunk_size=chunk_size, excluded_token_ids=(0, 1), dtype="float32"
    )
    # The same (bf16-rounded) inputs in float32.
    ids_float32 = reference(tf.cast(embeddings, "float32"), table, mask)
    np.testing.assert_array_equal(ids_mixed.numpy(), ids_float32.numpy())
    assert ids_mixed.dtype == tf.int32


@pytest.mark.parametrize("jit_compile", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_distiller_trains_under_mixed_bfloat16(jit_compile, mixed_bfloat16):
    teacher, student = tiny.smallest_pair()
    assert student.compute_dtype == "bfloat16" and student.variable_dtype == "float32"
    distiller = Distiller(teacher, student, augmentations=["augpro_mix", "augpro_fgsm"], seed=1,
                          teacher_dropout=False)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"],
                      jit_compile=jit_compile, run_eagerly=not jit_compile)
    before = [w.copy() for w in student.get_weights()]
    history = distiller.fit(tiny.dataset(batch_size=4, length=8), epochs=1, verbose=0).history
    for name, values in history.items():
        assert np.isfinite(values[0]), name
    assert 0.0 < history["augpro_mix_token_change_rate"][0] <= 1.0
    after = student.get_weights()
    assert all(w.dtype == np.float32 for w in after)
    assert any(not np.array_equal(b, a) for b, a in zip(before, after))
    assert all(np.all(np.isfinite(w)) for w in after)
    x, _ = tiny.batch(4, length=8)
    assert distiller.student(x).dtype == "float32"  # the head's logits
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
