"""The learning rate schedules of the command line tool: shape, saving, resume, TensorBoard."""

import dataclasses
import os

import keras
import numpy as np
import pytest

from augpro_keras.cli import config as config_lib
from augpro_keras.cli import schedules
from augpro_keras.cli import training
from augpro_keras.cli.session import WorkFolder
from tests.cli.conftest import event_values
from tests.cli.conftest import tiny_config
from tests.reliability import common


def _section(kind, warmup, epochs=2, rate=1e-3):
    return {"learning_rate": rate, "learning_rate_schedule": kind, "warmup_steps": warmup,
            "epochs": epochs}


def _values(schedule, steps):
    return [float(schedule(step)) for step in steps]


def test_schedules_warm_up_then_hold_or_decay_to_zero_at_the_last_step():
    steps = (0, 5, 10, 55, 100, 120)
    assert schedules.learning_rate(_section("constant", 0), 50) == 1e-3  # A plain float.
    np.testing.assert_allclose(_values(schedules.learning_rate(_section("constant", 10), 50),
                                       steps), [0, 5e-4, 1e-3, 1e-3, 1e-3, 1e-3], atol=1e-9)
    np.testing.assert_allclose(_values(schedules.learning_rate(_section("linear", 10), 50),
                                       steps), [0, 5e-4, 1e-3, 5e-4, 0, 0], atol=1e-9)
    np.testing.assert_allclose(_values(schedules.learning_rate(_section("linear", 0), 50),
                                       (0, 50, 100)), [1e-3, 5e-4, 0], atol=1e-9)
    cosine = schedules.learning_rate(_section("cosine", 10), 50)
    assert isinstance(cosine, keras.optimizers.schedules.CosineDecay)
    np.testing.assert_allclose(_values(cosine, steps), [0, 5e-4, 1e-3, 5e-4, 0, 0], atol=1e-9)
    np.testing.assert_allclose(_values(schedules.learning_rate(_section("cosine", 0), 50),
                                       (0, 50, 100)), [1e-3, 5e-4, 0], atol=1e-9)
    with pytest.raises(ValueError, match="warmup_steps: expected fewer steps than the run's 100"):
        schedules.learning_rate(_section("linear", 100), 50)


@pytest.mark.parametrize("kind", ["constant", "linear", "cosine"])
def test_schedules_survive_serialization(kind):
    schedule = schedules.learning_rate(_section(kind, 3), 10)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert type(again) is type(schedule) and again.get_config() == schedule.get_config()
    steps = (0, 2, 3, 11, 20)
    np.testing.assert_allclose(_values(again, steps), _values(schedule, steps))


@dataclasses.dataclass
class _Session:
    """What `training._fit` and `training._tensorboard` read of a command's session."""

    config: dict
    work: object
    root: str

    def out(self, _):
        pass

    def log_dir(self, name):
        return os.path.join(self.root, "logs", name)


class _Rates(keras.callbacks.Callback):
    """`{optimizer step: learning rate}` of every trained batch."""

    def __init__(self):
        super().__init__()
        self.rates = {}

    def on_train_batch_begin(self, batch, logs=None):
        optimizer = self.model.optimizer
        self.rates[int(optimizer.iterations.numpy())] = float(optimizer.learning_rate)


def _train(tmp_path, name, config, interrupt_after=None):
    session = _Session(config, WorkFolder(str(tmp_path / name)), str(tmp_path / name))
    rate = training.run_learning_rate(config, "distill", config["distill"]["steps_per_epoch"])
    model = common.distiller(augmentations=("augpro_mix",), learning_rate=rate)
    rates = _Rates()
    callbacks = [rates] + training._tensorboard(session, "run")
    if interrupt_after is not None:
        callbacks.append(common.InterruptAfter(interrupt_after))
    training._fit(session, model, common.dataset(num_examples=12), "distill", callbacks, "run")
    return model, rates.rates, session


def test_a_resumed_run_has_the_learning_rate_of_an_uninterrupted_one(tmp_path):
    # 2 epochs of 3 steps, warmup 2, then a linear decay; a backup every 2 steps.
    config = config_lib.load_config(None, overrides=[
        "distill.epochs=2", "distill.steps_per_epoch=3", "distill.learning_rate=1.0e-2",
        "distill.learning_rate_schedule=linear", "distill.warmup_steps=2",
        "runtime.backup_every_steps=2", "runtime.verbose=0", f"output_dir={tmp_path}"])
    reference, expected, session = _train(tmp_path, "reference", config)
    np.testing.assert_allclose([expected[k] for k in range(6)],
                               [0, 5e-3, 1e-2, 7.5e-3, 5e-3, 2.5e-3], rtol=1e-6, atol=1e-9)
    assert float(reference.optimizer.learning_rate) == 0.0  # Step 6: the run's end.
    # TensorBoard logs the rate of every epoch end (steps 3 and 6).
    logged = event_values(session.log_dir("run"))[("train", "epoch_learning_rate")]
    np.testing.assert_allclose(logged, [7.5e-3, 0.0], atol=1e-9)

    # Killed during step 5 (epoch 2, batch 2): the backup of step 4 is mid-epoch.
    with pytest.raises(common.Interrupt):
        _train(tmp_path, "resumed", config, interrupt_after=5)
    resumed, rates, _ = _train(tmp_path, "resumed", config)
    assert int(resumed.optimizer.iterations.numpy()) == 6
    assert min(rates) == 4 and max(rates) == 5
    for step, rate in rates.items():
        assert rate == pytest.approx(expected[step], rel=1e-6, abs=1e-12), step
    assert common.max_difference(resumed.student.get_weights(),
                                 reference.student.get_weights()) <= 1e-5


def test_one_pass_epochs_are_the_datasets_batches():
    config = config_lib.load_config(None)
    assert training.epoch_steps(common.dataset(num_examples=12), None, config, "distill") == 3
    config = config_lib.load_config(None, overrides=["distill.steps_per_epoch=7"])
    assert training.epoch_steps(common.dataset(num_examples=12), None, config, "distill") == 7


def test_the_tool_trains_students_and_teachers_on_their_schedules(tmp_path):
    from augpro_keras.cli import pipeline

    config = tiny_config(str(tmp_path), "distill.runs=[[]]", "student.finetune=false",
                         "distill.learning_rate_schedule=cosine", "distill.warmup_steps=1",
                         "finetune.learning_rate_schedule=linear", "finetune.epochs=2")
    pipeline.run(config, out=lambda _: None)
    found = event_values(os.path.join(tmp_path, "logs"))
    rates = {where.split(os.sep)[-2]: values for (where, tag), values in found.items()
             if tag == "epoch_learning_rate"}
    # Teacher: linear over 2 x 2 steps, logged at steps 2 and 4; KD: cosine ends at 0.
    np.testing.assert_allclose(rates["teacher"], [5e-4, 0.0], atol=1e-9)
    np.testing.assert_allclose(rates["kd"], [0.0], atol=1e-9)
