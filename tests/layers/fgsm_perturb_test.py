import keras
import numpy as np
import pytest
import tensorflow as tf

from augpro_keras.layers import FGSMPerturb
from augpro_keras.models import TinyTransformerClassifier


def test_every_real_element_moves_by_epsilon_and_padding_stays():
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(2, 4, 3)).astype("float32")
    gradient = rng.normal(size=(2, 4, 3)).astype("float32")
    gradient[0, 0, 0] = 0.0
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
    for direction, expected_sign in [("ascent", np.where(gradient >= 0, 1, -1)), ("descent", np.where(gradient >= 0, -1, 1))]:
        out = FGSMPerturb(0.25, direction)(embeddings, gradient, mask).numpy()
        delta = out - embeddings
        np.testing.assert_allclose(delta[mask], 0.25 * expected_sign[mask], rtol=1e-6)
        np.testing.assert_array_equal(out[~mask], embeddings[~mask])
    out = FGSMPerturb(0.25, "random", seed=1)(embeddings, None, mask).numpy()
    delta = out - embeddings
    np.testing.assert_allclose(np.abs(delta[mask]), 0.25, rtol=1e-6)
    assert (delta[mask] > 0).any() and (delta[mask] < 0).any()
    np.testing.assert_array_equal(out[~mask], embeddings[~mask])


def test_ascent_raises_the_loss_and_descent_lowers_it():
    keras.utils.set_random_seed(0)
    model = TinyTransformerClassifier(vocabulary_size=40, num_classes=3, hidden_dim=16, num_layers=1)
    ids = np.random.default_rng(1).integers(1, 40, size=(8, 6)).astype("int32")
    labels = np.arange(8) % 3
    mask = np.ones_like(ids, bool)
    embeddings = model.embed_tokens(ids)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss(e):
        return float(loss_fn(labels, model.call_from_embeddings(e, mask)))

    with tf.GradientTape() as tape:
        tape.watch(embeddings)
        value = loss_fn(labels, model.call_from_embeddings(embeddings, mask))
    gradient = tape.gradient(value, embeddings)
    base = loss(embeddings)
    assert loss(FGSMPerturb(0.01, "ascent")(embeddings, gradient, mask)) > base
    assert loss(FGSMPerturb(0.01, "descent")(embeddings, gradient, mask)) < base


def test_epsilon_override_and_serialization():
    embeddings = np.zeros((1, 2, 2), "float32")
    gradient = np.ones((1, 2, 2), "float32")
    layer = FGSMPerturb(1.0, "descent", seed=3)
    np.testing.assert_allclose(layer(embeddings, gradient, epsilon=0.5).numpy(), -0.5)
    restored = FGSMPerturb.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    np.testing.assert_array_equal(restored(embeddings, gradient).numpy(), layer(embeddings, gradient).numpy())
    e, g = keras.Input((2, 2)), keras.Input((2, 2))
    model = keras.Model([e, g], layer(e, g))
    np.testing.assert_allclose(model([embeddings, gradient]).numpy(), -1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"epsilon": -1.0}, "epsilon"), ({"epsilon": 1.0, "direction": "up"}, "ascent, descent, random")],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FGSMPerturb(**kwargs)


def test_gradient_required_unless_random():
    with pytest.raises(ValueError, match="needs a `gradient`"):
        FGSMPerturb(1.0)(np.zeros((1, 2, 2), "float32"))
