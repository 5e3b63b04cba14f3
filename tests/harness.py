"""One test harness for the package's layers, augmentations and models.

In the spirit of keras-hub's `TestCase.run_layer_test` and
`run_model_saving_test`: every layer, augmentation and model test calls one
of these, so each kind of object gets the same checks.

- `run_layer_test`: config round trip, symbolic call (`keras.Input`), eager
  call, XLA call, `.keras` saving round trip inside a model, and a fit step
  of a tiny model around the layer.
- `run_augmentation_test`: config round trip through `augmentations.get`,
  one Distiller step eagerly and one under `jit_compile=True` on tiny models
  (exactly the expected logs, finite, the total the sum of its parts; the
  student trains), and valid token outputs.
- `run_model_test`: config round trip, `.keras` saving round trip with equal
  outputs, and a fit step.
- `assert_step_logs`: the logs of a Distiller's epoch, exactly those of its
  augmentations, finite, the total the sum of its parts.
"""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from augpro_keras import Distiller
from augpro_keras import augmentations
from tests import tiny


# === Shared checks ===
def _shapes(outputs):
    """The shape of a tensor, or a tuple of the shapes of a list or tuple of tensors."""
    if isinstance(outputs, (list, tuple)):
        return tuple(tuple(o.shape) for o in outputs)
    return tuple(outputs.shape)


def _with_unknown_batch(shapes):
    if shapes and isinstance(shapes[0], tuple):
        return tuple(_with_unknown_batch(s) for s in shapes)
    return (None,) + tuple(shapes[1:])


def _assert_same_outputs(actual, expected, rtol=1e-6, atol=1e-6):
    actual, expected = keras.tree.flatten(actual), keras.tree.flatten(expected)
    assert len(actual) == len(expected), (len(actual), len(expected))
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(e), rtol=rtol, atol=atol
        )


def _assert_config_round_trip(obj, restored):
    assert type(restored) is type(obj), (type(restored), type(obj))
    assert restored.get_config() == obj.get_config()


def _as_float_features(outputs):
    """Every output, cast to float32 and flattened per example, side by side."""
    flat = [keras.ops.cast(o, "float32") for o in keras.tree.flatten(outputs)]
    flat = [keras.layers.Flatten()(o) if len(o.shape) > 1 else keras.ops.expand_dims(o, -1) for o in flat]
    return flat[0] if len(flat) == 1 else keras.layers.Concatenate()(flat)


# === Layers ===
def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    constants=None,
    expected_output_dtype=None,
    expected_num_trainable_weights=0,
    deterministic=True,
    run_training_check=True,
    run_jit_check=True,
):
    """Runs the checks every layer of the package must pass.

    Args:
        layer_cls: the layer class.
        init_kwargs: its constructor arguments.
        input_data: dict `argument name: batched numpy array`; each becomes a
            `keras.Input` in the symbolic call.
        expected_output_shape: the output's shape (a tuple of shapes for
            several outputs) for `input_data`.
        constants: dict `argument name: value` passed as it is to every call
            (e.g. an embedding table), not batched.
        expected_output_dtype: the dtype of the (first) output, or `None`.
        expected_num_trainable_weights: how many trainable weights the
            built layer has.
        deterministic: whether two calls on the same inputs give the same
            outputs (then outputs are compared across every kind of call).
        run_training_check: run a fit step of a tiny model around the layer.
        run_jit_check: call the layer under `tf.function(jit_compile=True)`.
    """
    constants = dict(constants or {})
    layer = layer_cls(**init_kwargs)

    # Config round trip, directly and through Keras's serialization.
    from_config = layer_cls.from_config(layer.get_config())
    _assert_config_round_trip(layer, from_config)
    _assert_config_round_trip(
        layer, keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    )

    # Eager call; a layer rebuilt from its config computes the same.
    eager = layer(**input_data, **constants)
    if deterministic:
        _assert_same_outputs(from_config(**input_data, **constants), eager)
    assert _shapes(eager) == expected_output_shape, (_shapes(eager), expected_output_shape)
    if expected_output_dtype is not None:
        assert keras.backend.standardize_dtype(keras.tree.flatten(eager)[0].dtype) == expected_output_dtype
    assert len(layer.trainable_weights) == expected_num_trainable_weights

    # Symbolic call: the same shapes with an unknown batch size.
    inputs = {
        name: keras.Input(shape=np.shape(value)[1:], dtype=keras.backend.standardize_dtype(value.dtype), name=name)
        for name, value in input_data.items()
    }
    symbolic = layer(**inputs, **constants)
    expected_symbolic = _with_unknown_batch(expected_output_shape)
    assert _shapes(symbolic) == expected_symbolic, (_shapes(symbolic), expected_symbolic)
    model = keras.Model(inputs, symbolic)
    through_model = model(input_data)
    assert _shapes(through_model) == expected_output_shape
    if deterministic:
        _assert_same_outputs(through_model, eager)

    # Under XLA.
    if run_jit_check:
        compiled = tf.function(lambda data: layer(**data, **constants), jit_compile=True)(input_data)
        assert _shapes(compiled) == expected_output_shape
        if deterministic:
            _assert_same_outputs(compiled, eager)

    # `.keras` saving round trip of the model around the layer.
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "layer_model.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
    restored_layer = [la for la in loaded.layers if isinstance(la, layer_cls)]
    assert len(restored_layer) == 1
    _assert_config_round_trip(layer, restored_layer[0])
    reloaded = loaded(input_data)
    assert _shapes(reloaded) == expected_output_shape
    if deterministic:
        _assert_same_outputs(reloaded, eager)

    # A fit step: the layer inside a tiny model with a trainable head.
    if run_training_check:
        head = keras.layers.Dense(1, name="head")
        trainer = keras.Model(inputs, head(_as_float_features(symbolic)))
        trainer.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        batch_size = len(next(iter(input_data.values())))
        before = [w.copy() for w in head.get_weights()]
        history = trainer.fit(
            input_data, np.ones((batch_size, 1), "float32"), batch_size=batch_size, epochs=1, verbose=0
        ).history
        assert np.isfinite(history["loss"][0]), history
        assert any(not np.array_equal(b, a) for b, a in zip(before, head.get_weights()))
    return layer


# === Augmentations ===
def run_augmentation_test(augmentation, labeled=True, batch_size=4, length=8, run_jit_check=True,
                          changes_tokens=True):
    """Runs the checks every augmentation must pass.

    Args:
        augmentation: an `Augmentation` instance (or a registered name).
        labeled: train on labeled batches (else inputs only).
        batch_size, length: the shape of the tiny batches.
        run_jit_check: also train one step with `jit_compile=True`.
        changes_tokens: a token-producing augmentation must change some
            tokens in each step (a logged token change rate above 0).

    Returns:
        The `AugmentationOutput` of an eager `Distiller.augment` call.
    """
    augmentation = augmentations.get(augmentation)
    config = keras.saving.serialize_keras_object(augmentation)
    _assert_config_round_trip(augmentation, augmentations.get(config))

    for jit_compile in (False, True) if run_jit_check else (False,):
        teacher, student = tiny.smallest_pair()
        distiller = Distiller(
            teacher, student, augmentations=[augmentations.get(config)], seed=3, teacher_dropout=False
        )
        # Eagerly, then compiled with XLA (a graph, so graph mode is covered too).
        distiller.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit_compile,
                          run_eagerly=not jit_compile)
        assert distiller.xla_step == jit_compile
        before = [w.copy() for w in student.get_weights()]
        data = tiny.dataset(batch_size=batch_size, length=length, labeled=labeled)
        history = distiller.fit(data, epochs=1, verbose=0).history
        assert_step_logs(history, [augmentation], labeled, changes_tokens=changes_tokens,
                         where=f"jit_compile={jit_compile}")
        assert any(not np.array_equal(b, a) for b, a in zip(before, student.get_weights())), jit_compile

    # Eager: the augmented batch itself.
    x, y = tiny.batch(batch_size, length=length)
    output = distiller.augment(x, y if labeled else None)[augmentation.name]
    loss = np.asarray(output.loss)
    assert loss.shape == (batch_size,) and np.all(np.isfinite(loss)), loss
    if output.token_ids is not None:
        _assert_valid_tokens(output, x, distiller)
    return output


def assert_step_logs(history, augmentation_list, labeled=True, metrics=(), changes_tokens=True,
                     where=""):
    """A Distiller's first epoch logs exactly the losses, metrics and
    diagnostics of its augmentations, all finite, and its total loss is the
    sum of its parts (each augmentation's loss by its weight). Token change
    rates lie in (0, 1], or in [0, 1] with `changes_tokens=False`."""
    expected = {"loss", "distillation_loss", *metrics}
    if labeled:
        expected.add("student_loss")
    for augmentation in augmentation_list:
        expected.add(f"{augmentation.name}_loss")
        expected.update(f"{augmentation.name}_{d}" for d in augmentation.diagnostic_names())
        if augmentation.produces_tokens:
            expected.add(f"{augmentation.name}_token_change_rate")
    assert set(history) == expected, (where, sorted(history))
    for key, values in history.items():
        assert np.isfinite(values[0]), (where, key, values)
        if key.endswith("_token_change_rate"):
            lowest_ok = 0.0 < values[0] if changes_tokens else 0.0 <= values[0]
            assert lowest_ok and values[0] <= 1.0, (where, key, values)
    parts = sum(history[key][0] for key in ("student_loss", "distillation_loss") if key in history)
    parts += sum(a.weight * history[f"{a.name}_loss"][0] for a in augmentation_list)
    np.testing.assert_allclose(history["loss"][0], parts, rtol=1e-5, err_msg=str(where))


def _assert_valid_tokens(output, x, distiller):
    """Ids in the vocabulary, padding outside the mask, special tokens kept."""
    ids = np.asarray(output.token_ids)
    mask = np.asarray(output.padding_mask).astype(bool)
    original = np.asarray(x["token_ids"])
    assert ids.shape == original.shape and ids.dtype == np.int32, (ids.shape, ids.dtype)
    assert ids.min() >= 0 and ids.max() < distiller.student_view.vocabulary_size
    np.testing.assert_array_equal(ids[~mask], distiller.pad_token_id)
    special = np.isin(original, distiller.special_token_ids) & mask & np.asarray(x["padding_mask"])
    np.testing.assert_array_equal(ids[special], original[special])


# === Models ===
def run_model_test(model, inputs, labels=None, loss=None, fit_inputs=None, rtol=1e-5, atol=1e-5):
    """Runs the checks every model (adapter, classifier, keras-hub task) must pass.

    Args:
        model: a built Keras model; it is not changed (the fit step trains
            a reloaded copy).
        inputs: a batch of its inputs (a dict of arrays).
        labels: labels for the fit step (default: class 0 for every row).
        loss: the fit step's loss (default: sparse categorical cross-entropy
            on logits).
        fit_inputs: what the fit step trains on, if not `inputs` (raw
            strings for a keras-hub task, whose `fit` runs its preprocessor).
        rtol, atol: tolerances of the saving round trip.
    """
    expected = model(inputs, training=False)

    # Config round trip: the same config and output shapes (new weights).
    restored = type(model).from_config(model.get_config())
    assert type(restored) is type(model)
    assert _shapes(restored(inputs, training=False)) == _shapes(expected)

    # `.keras` saving round trip: the same outputs.
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    _assert_same_outputs(loaded(inputs, training=False), expected, rtol=rtol, atol=atol)

    # A fit step of the reloaded copy.
    batch_size = len(next(iter(keras.tree.flatten(inputs))))
    labels = np.zeros((batch_size,), "int32") if labels is None else labels
    loaded.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    before = [w.copy() for w in loaded.get_weights()]
    fit_inputs = inputs if fit_inputs is None else fit_inputs
    history = loaded.fit(fit_inputs, labels, batch_size=batch_size, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0]), history
    assert any(not np.array_equal(b, a) for b, a in zip(before, loaded.get_weights()))
    return loaded
