import keras
import numpy as np
import pytest

from augpro_keras.layers import MixUpEmbedding


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
        MixUpEmbedding()(embeddings, mask, partner_index=np.arange(4))


@pytest.mark.parametrize("kwargs", [{"lam": 1.5}, {"lam": -0.1}, {"alpha": 0}, {"alpha": -1.0}])
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
