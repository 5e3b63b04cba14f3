import keras
import numpy as np
import pytest
import tensorflow as tf

from augpro_keras.layers import FGSMPerturb
from augpro_keras.models import TinyTransformerClassifier
from tests import harness


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


@pytest.mark.parametrize("epsilon", [float("nan"), float("inf"), -0.5, True, "0.1", None])
def test_non_finite_negative_or_non_number_epsilon_is_refused(epsilon):
    with pytest.raises(ValueError, match=r"`epsilon` must be a number >= 0 \(not NaN or infinite\)\. Received: epsilon="):
        FGSMPerturb(epsilon)


def test_call_time_epsilon_is_checked():
    embeddings, gradient = np.zeros((1, 2, 2), "float32"), np.ones((1, 2, 2), "float32")
    layer = FGSMPerturb(1.0)
    with pytest.raises(ValueError, match=r"epsilon=nan"):
        layer(embeddings, gradient, epsilon=float("nan"))
    with pytest.raises(ValueError, match=r"must be a number >= 0 \(not NaN or infinite\)\. Received epsilon=-2\.0"):
        layer(embeddings, gradient, epsilon=tf.constant(-2.0))
    with pytest.raises(ValueError, match="must be a scalar"):
        layer(embeddings, gradient, epsilon=tf.constant([0.1, 0.2]))

    @tf.function
    def graph(epsilon):
        return layer(embeddings, gradient, epsilon=epsilon)

    np.testing.assert_allclose(graph(tf.constant(0.5)).numpy(), 0.5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`epsilon` must be a number >= 0"):
        graph(tf.constant(float("inf")))


def test_nan_gradient_raises_in_eager_mode():
    embeddings = np.zeros((2, 3, 4), "float32")
    gradient = np.ones((2, 3, 4), "float32")
    gradient[1, 2, 3] = np.nan
    gradient[0, 1, 0] = np.inf
    with pytest.raises(ValueError, match=r"2 non-finite entries \(of 24; the first at index \(0, 1, 0\) is inf\)"):
        FGSMPerturb(0.1)(embeddings, gradient)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_nan_gradient_entries_do_not_move_inside_graphs(jit_compile):
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(2, 3, 4)).astype("float32")
    gradient = rng.normal(size=(2, 3, 4)).astype("float32")
    gradient[1, 2, :] = np.nan
    gradient[0, 0, 1] = -np.inf
    mask = np.ones((2, 3), bool)
    layer = FGSMPerturb(0.25)
    out = tf.function(lambda e, g: layer(e, g, mask), jit_compile=jit_compile)(embeddings, gradient).numpy()
    finite = np.isfinite(gradient)
    np.testing.assert_array_equal(out[~finite], embeddings[~finite])
    np.testing.assert_allclose((out - embeddings)[finite], 0.25 * np.where(gradient >= 0, 1, -1)[finite], rtol=1e-6)


def test_mismatched_gradient_and_mask_shapes_are_named():
    embeddings = np.zeros((2, 3, 4), "float32")
    layer = FGSMPerturb(0.1)
    with pytest.raises(ValueError, match=r"`gradient` must have shape \[2, 3, 4\] to match the embeddings, but has shape \[2, 3, 5\]"):
        layer(embeddings, np.ones((2, 3, 5), "float32"))
    with pytest.raises(ValueError, match=r"`padding_mask` must have shape \[2, 3\] .* but has shape \[2, 4\]"):
        layer(embeddings, np.ones((2, 3, 4), "float32"), np.ones((2, 4), bool))
    with pytest.raises(ValueError, match=r"`gradient` must have shape \[2, 3, 4\]"):
        FGSMPerturb(0.1, "random")(embeddings, np.ones((3, 3, 4), "float32"))

    @tf.function(input_signature=[tf.TensorSpec((None, 3, 4)), tf.TensorSpec((None, 3, 5))])
    def traced(e, g):
        return layer(e, g)

    with pytest.raises(ValueError, match=r"but has shape \[None, 3, 5\]"):
        traced.get_concrete_function()


def test_the_step_is_a_constant_and_gradients_pass_to_the_embeddings():
    embeddings = tf.constant(np.random.default_rng(2).normal(size=(2, 3, 4)).astype("float32"))
    gradient = tf.constant(np.random.default_rng(3).normal(size=(2, 3, 4)).astype("float32"))
    epsilon = tf.constant(0.3)
    weights = tf.constant(np.random.default_rng(4).normal(size=(2, 3, 4)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([embeddings, epsilon])
        out = FGSMPerturb(1.0)(embeddings, gradient, epsilon=epsilon)
        value = tf.reduce_sum(weights * out)
    np.testing.assert_allclose(tape.gradient(value, embeddings).numpy(), weights.numpy())
    assert tape.gradient(value, epsilon) is None


@pytest.mark.parametrize(
    "kwargs, deterministic",
    [({"epsilon": 0.1}, True), ({"epsilon": 0.5, "direction": "descent"}, True),
     ({"epsilon": 0.2, "direction": "random", "seed": 3}, False)],
)
def test_layer_harness(kwargs, deterministic):
    rng = np.random.default_rng(2)
    harness.run_layer_test(
        FGSMPerturb,
        kwargs,
        input_data={
            "embeddings": rng.normal(size=(2, 4, 3)).astype("float32"),
            "gradient": rng.normal(size=(2, 4, 3)).astype("float32"),
            "padding_mask": np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool),
        },
        expected_output_shape=(2, 4, 3),
        expected_output_dtype="float32",
        deterministic=deterministic,
    )
