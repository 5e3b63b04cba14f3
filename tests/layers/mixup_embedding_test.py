import keras
import numpy as np
import pytest
import tensorflow as tf

from augpro_keras.layers import MixUpEmbedding
from tests import harness


def batch(seed=0):
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(4, 5, 3)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]], bool)
    return embeddings, mask


def test_fixed_lam_mixes_and_takes_union_of_masks():
    embeddings, mask = batch()
    partner_index = np.array([1, 0, 3, 2], "int32")
    lam = np.full((4,), 0.5, "float32")
    mixed, mixed_mask = MixUpEmbedding()(embeddings, mask, partner_index, lam)
    expected = 0.5 * embeddings + 0.5 * embeddings[partner_index]
    np.testing.assert_allclose(mixed.numpy(), expected, rtol=1e-6)
    np.testing.assert_array_equal(mixed_mask.numpy(), mask | mask[partner_index])


def test_same_mix_reused_for_a_second_tensor():
    embeddings, mask = batch()
    other = np.random.default_rng(5).normal(size=(4, 5, 7)).astype("float32")
    layer = MixUpEmbedding(alpha=0.4, seed=3)
    partner_index, lam = layer.sample_mix(4)
    assert sorted(partner_index.numpy().tolist()) == [0, 1, 2, 3]
    _, mask_a = layer(embeddings, mask, partner_index, lam)
    mixed_b, mask_b = layer(other, mask, partner_index, lam)
    w = lam.numpy()[:, None, None]
    np.testing.assert_allclose(
        mixed_b.numpy(), w * other + (1 - w) * other[partner_index.numpy()], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(mask_a.numpy(), mask_b.numpy())


def test_beta_lam_is_drawn_per_row_in_unit_interval():
    layer = MixUpEmbedding(alpha=0.4, seed=1)
    _, lam = layer.sample_mix(256)
    lam = lam.numpy()
    assert lam.min() >= 0 and lam.max() <= 1 and lam.std() > 0.1
    _, fixed = MixUpEmbedding(lam=0.3).sample_mix(4)
    np.testing.assert_allclose(fixed.numpy(), 0.3)


def test_lam_one_gives_the_input_back():
    embeddings, mask = batch()
    mixed, mixed_mask = MixUpEmbedding(lam=1.0, seed=0)(embeddings, mask)
    np.testing.assert_array_equal(mixed.numpy(), embeddings)
    np.testing.assert_array_equal(mixed_mask.numpy(), mask)


def test_random_partners_without_arguments():
    embeddings, mask = batch()
    mixed, _ = MixUpEmbedding(seed=0)(embeddings, mask)
    assert mixed.shape == embeddings.shape


def test_partial_arguments_are_refused():
    embeddings, mask = batch()
    with pytest.raises(ValueError, match="both `partner_index` and `lam`"):
        MixUpEmbedding(alpha=0.4)(embeddings, mask, partner_index=np.arange(4))
    with pytest.raises(ValueError, match="`lam` was given without `partner_index`"):
        MixUpEmbedding()(embeddings, mask, lam=np.full((4,), 0.5, "float32"))


def test_fixed_lam_layer_takes_partner_index_alone():
    """DESIGN.md's call form: with a fixed lam, the layer's own lam applies."""
    embeddings, mask = batch()
    partner_index = np.array([2, 3, 0, 1], "int32")
    mixed, mixed_mask = MixUpEmbedding(lam=0.7)(embeddings, mask, partner_index=partner_index)
    np.testing.assert_allclose(
        mixed.numpy(), 0.7 * embeddings + 0.3 * embeddings[partner_index], rtol=1e-6, atol=1e-7
    )
    np.testing.assert_array_equal(mixed_mask.numpy(), mask | mask[partner_index])


@pytest.mark.parametrize(
    "partner_index, lam, message",
    [
        ([1, 0, 3, 2], [2.0, -1.0, 0.5, 0.5], r"`lam` must be in \[0, 1\]\. Received lam=\[2\.0, -1\.0, 0\.5, 0\.5\] \(outside: \[2\.0, -1\.0\]\)"),
        ([1, 0, 3, 2], [0.5, float("nan"), 0.5, 0.5], r"`lam` must be in \[0, 1\]"),
        ([1, 0, 3, -1], [0.5] * 4, r"`partner_index` must be row indices in \[0, 4\) \(the batch size\)\. Received partner_index=\[1, 0, 3, -1\] \(outside: \[-1\]\)"),
        ([1, 0, 3, 4], [0.5] * 4, r"outside: \[4\]"),
    ],
)
def test_out_of_range_lam_and_partners_are_refused(partner_index, lam, message):
    embeddings, mask = batch()
    with pytest.raises(ValueError, match=message):
        MixUpEmbedding()(embeddings, mask, np.array(partner_index, "int32"), np.array(lam, "float32"))


def test_out_of_range_values_are_checked_inside_tf_function_but_not_under_xla():
    embeddings, mask = batch()
    layer = MixUpEmbedding()

    def mix(partner_index, lam):
        return layer(embeddings, mask, partner_index, lam)[0]

    good = (np.array([1, 0, 3, 2], "int32"), np.full((4,), 0.5, "float32"))
    graph = tf.function(mix)
    np.testing.assert_allclose(graph(*good).numpy(), mix(*good).numpy(), rtol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`lam` must be in"):
        graph(good[0], np.array([0.5, 2.0, 0.5, 0.5], "float32"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="`partner_index` must be row indices"):
        graph(np.array([1, 0, 3, -1], "int32"), good[1])
    # XLA drops assertions (documented): the compiled call does not check.
    compiled = tf.function(mix, jit_compile=True)
    np.testing.assert_allclose(compiled(*good).numpy(), mix(*good).numpy(), rtol=1e-6)
    assert compiled(good[0], np.array([0.5, 2.0, 0.5, 0.5], "float32")).shape == embeddings.shape


def test_mismatched_shapes_are_named():
    embeddings, mask = batch()
    layer = MixUpEmbedding()
    with pytest.raises(ValueError, match=r"`padding_mask` must have shape \[4, 5\] .* but has shape \[4, 6\]"):
        layer(embeddings, np.ones((4, 6), bool))
    with pytest.raises(ValueError, match=r"`partner_index` must have shape \[4\] .* but has shape \[3\]"):
        layer(embeddings, mask, np.array([1, 0, 2], "int32"))
    with pytest.raises(ValueError, match=r"`lam` must have shape \[4\] .* but has shape \[\]"):
        layer(embeddings, mask, np.array([1, 0, 3, 2], "int32"), np.float32(0.5))
    with pytest.raises(ValueError, match="integer row indices"):
        layer(embeddings, mask, np.array([1.0, 0.0, 3.0, 2.0], "float32"))


@pytest.mark.parametrize(
    "kwargs",
    [{"lam": 1.5}, {"lam": -0.1}, {"lam": float("nan")}, {"alpha": 0}, {"alpha": -1.0},
     {"alpha": float("nan")}, {"alpha": float("inf")}],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="lam|alpha"):
        MixUpEmbedding(**kwargs)


def test_serialization_and_use_in_a_model():
    embeddings, mask = batch()
    layer = MixUpEmbedding(lam=0.7, alpha=None, seed=4)
    restored = MixUpEmbedding.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    partner_index, lam = layer.sample_mix(4)
    a = layer(embeddings, mask, partner_index, lam)
    b = restored(embeddings, mask, partner_index, lam)
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    x, m = keras.Input((5, 3)), keras.Input((5,), dtype="bool")
    p, w = keras.Input((), dtype="int32"), keras.Input(())
    model = keras.Model([x, m, p, w], layer(x, m, p, w))
    out = model([embeddings, mask, partner_index.numpy(), lam.numpy()])
    np.testing.assert_allclose(out[0].numpy(), a[0].numpy(), rtol=1e-6)


@pytest.mark.parametrize("kwargs", [{"lam": 0.7, "seed": 4}, {"alpha": 0.4, "seed": 1}])
def test_layer_harness(kwargs):
    embeddings, mask = batch()
    harness.run_layer_test(
        MixUpEmbedding,
        kwargs,
        input_data={
            "embeddings": embeddings,
            "padding_mask": mask,
            "partner_index": np.array([1, 0, 3, 2], "int32"),
            "lam": np.array([0.5, 0.25, 1.0, 0.0], "float32"),
        },
        expected_output_shape=((4, 5, 3), (4, 5)),
        expected_output_dtype="float32",
    )
