"""One step on 2 replicas moves the student exactly as one step on 1 device.

`tests/conftest.py` splits the CPU into two logical devices before
TensorFlow starts.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from augpro_keras import Distiller
from augpro_keras import augmentations as aug
from tests import tiny

MODES = {"kd": [], "augpro_mix": ["augpro_mix"], "augpro_fgsm": ["augpro_fgsm"]}


def one_step(strategy, augmentations, jit_compile=False, labeled=True):
    with strategy.scope():
        teacher, student = tiny.smallest_pair() if jit_compile else tiny.pair()
        distiller = Distiller(
            teacher, student, augmentations=augmentations, seed=3,
            teacher_dropout=False, mix_group_size=4,
        )
        # Plain SGD: Adam's first step hides a wrong gradient scale.
        distiller.compile(optimizer=keras.optimizers.SGD(0.5), metrics=["accuracy"], jit_compile=jit_compile)
    history = distiller.fit(tiny.dataset(batch_size=8, labeled=labeled), epochs=1, verbose=0).history
    return distiller, history


@pytest.fixture(scope="module")
def strategies():
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) >= 2, "conftest.py should have created two logical CPUs"
    return (
        tf.distribute.OneDeviceStrategy(devices[0]),
        tf.distribute.MirroredStrategy(devices[:2]),
    )


@pytest.mark.parametrize("mode", sorted(MODES))
def test_two_replicas_match_one_device(mode, strategies):
    single, mirrored = strategies
    assert mirrored.num_replicas_in_sync == 2
    reference, reference_logs = one_step(single, MODES[mode])
    distributed, distributed_logs = one_step(mirrored, MODES[mode])
    initial = tiny.pair()[1].get_weights()
    moved = False
    for start, a, b in zip(initial, reference.student.get_weights(), distributed.student.get_weights()):
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=1e-5)
        moved = moved or not np.allclose(start, a)
    assert moved
    assert set(reference_logs) == set(distributed_logs)
    for name in reference_logs:
        np.testing.assert_allclose(distributed_logs[name], reference_logs[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_xla_step_under_mirrored_strategy(strategies):
    """XLA's numerics differ slightly from TensorFlow's, so compare XLA with XLA."""
    single, mirrored = strategies
    reference, _ = one_step(single, ["augpro_fgsm"], jit_compile=True)
    distributed, _ = one_step(mirrored, ["augpro_fgsm"], jit_compile=True)
    assert distributed.xla_step and reference.xla_step
    for a, b in zip(reference.student.get_weights(), distributed.student.get_weights()):
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=1e-5)


def test_unlabeled_data_under_explicit_strategies(strategies):
    """Batches without labels (Table 2) build and train under any strategy,
    with label metrics compiled but left out of the logs."""
    single, mirrored = strategies
    reference, reference_logs = one_step(single, ["augpro_mix"], labeled=False)
    distributed, distributed_logs = one_step(mirrored, ["augpro_mix"], labeled=False)
    # With the augmentation's diagnostics (`<name>_<diagnostic>`), which it names itself.
    diagnostics = {f"augpro_mix_{d}" for d in aug.get("augpro_mix").diagnostic_names()}
    assert set(reference_logs) == set(distributed_logs) == {
        "loss", "distillation_loss", "augpro_mix_loss", "augpro_mix_token_change_rate"} | diagnostics
    for a, b in zip(reference.student.get_weights(), distributed.student.get_weights()):
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=1e-5)


def test_plain_fit_of_a_classifier_with_boolean_masks(strategies):
    """`model.fit`, `evaluate` and `predict` of a model alone (fine-tuning a
    teacher) take boolean padding masks under two replicas too."""
    results = []
    for strategy in strategies:
        with strategy.scope():
            model, _ = tiny.pair()
            model.compile(optimizer=keras.optimizers.SGD(0.5), metrics=["accuracy"],
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        data = tiny.dataset(batch_size=8)
        assert data.element_spec[0]["padding_mask"].dtype == tf.bool
        model.fit(data, epochs=1, verbose=0)
        results.append((model.get_weights(), model.evaluate(data, verbose=0),
                        model.predict(data, verbose=0)))
    (weights, metrics, logits), (weights_2, metrics_2, logits_2) = results
    for a, b in zip(weights, weights_2):
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(metrics_2, metrics, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(logits_2, logits, atol=1e-5, rtol=1e-5)
