"""Mixed precision: projections give the float32 answers; one Distiller step under
`mixed_float16` or `mixed_bfloat16` moves the student as float32 does."""

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


# --- one step under a mixed policy against float32 ---------------------------

MODES = {"kd": [], "augpro_mix": ["augpro_mix"], "augpro_fgsm": ["augpro_fgsm"]}


def one_sgd_step(policy, augmentations, optimizer=None):
    """The student's weight changes after one plain-SGD step under `policy`,
    and the Distiller. Same models, batch and seed whatever the policy; no
    dropout anywhere, so that runs under different policies compare."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        teacher, student = tiny.pair(seed=0)
        distiller = Distiller(teacher, student, augmentations=augmentations, seed=3,
                              teacher_dropout=False)
        distiller.compile(optimizer=optimizer or keras.optimizers.SGD(learning_rate=1.0))
        before = [w.copy() for w in student.get_weights()]
        distiller.fit(tiny.dataset(batch_size=8, length=10), epochs=1, verbose=0)
        moves = [a - b for a, b in zip(student.get_weights(), before)]
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return moves, distiller


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("policy, tolerance", [("mixed_float16", 1e-2), ("mixed_bfloat16", 3e-2)])
def test_one_step_under_mixed_policy_moves_the_student_as_float32(mode, policy, tolerance):
    reference, _ = one_sgd_step("float32", MODES[mode])
    optimizer = None
    if policy == "mixed_float16":
        # Keras's default initial scale (2^15) overflows float16 in this
        # model's first backward pass, so that step would be skipped (see the
        # test below); 2^10 does not overflow.
        optimizer = keras.optimizers.LossScaleOptimizer(
            keras.optimizers.SGD(learning_rate=1.0), initial_scale=2.0**10)
    moves, distiller = one_sgd_step(policy, MODES[mode], optimizer=optimizer)
    largest = max(float(np.abs(m).max()) for m in reference)
    assert largest > 0.1  # the step really moves the student
    worst = max(float(np.abs(m - r).max()) for m, r in zip(moves, reference))
    # A step without the loss scale (the Distiller must call
    # `optimizer.scale_loss`) would move the weights 2^10 times less, a
    # difference of nearly `largest` itself. Measured: 0.1% to 0.2% of `largest`
    # under mixed_float16, 0.3% to 0.5% under mixed_bfloat16.
    assert worst <= tolerance * largest, (worst, largest)


@pytest.mark.parametrize("mode", ["kd", "augpro_fgsm"])
def test_non_finite_scaled_gradients_skip_the_step(mode):
    # A loss scale of 2^40 overflows float16 in the backward pass: the
    # LossScaleOptimizer must skip the update (not write inf or NaN into the
    # weights) and halve the scale.
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(learning_rate=1.0), initial_scale=2.0**40)
    moves, distiller = one_sgd_step("mixed_float16", MODES[mode], optimizer=optimizer)
    assert all(np.array_equal(m, np.zeros_like(m)) for m in moves)
    assert float(distiller.optimizer.dynamic_scale.numpy()) == 2.0**39
    assert all(np.all(np.isfinite(w)) for w in distiller.student.get_weights())
    # Keras's own wrapper (compile with plain SGD) starts at 2^15, which
    # overflows here too: the first step is skipped the same way.
    moves, distiller = one_sgd_step("mixed_float16", MODES[mode])
    assert isinstance(distiller.optimizer, keras.optimizers.LossScaleOptimizer)
    assert all(np.array_equal(m, np.zeros_like(m)) for m in moves)
    assert float(distiller.optimizer.dynamic_scale.numpy()) == 2.0**14
