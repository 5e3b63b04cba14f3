"""A NaN or infinite loss stops training with a clear error; the last good backup stays."""

import keras
import numpy as np
import pytest

from augpro_keras import checkpointing
from augpro_keras.callbacks import DistillationBackup
from augpro_keras.callbacks import NonFiniteLossError
from augpro_keras.callbacks import NonFiniteLossGuard
from tests.reliability import common


class PoisonTeacherAfter(keras.callbacks.Callback):
    """Makes the teacher's logits NaN after the given step; records the student then."""

    def __init__(self, step):
        super().__init__()
        self.step = step
        self.good_weights = None

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            self.good_weights = [w.copy() for w in self.model.student.get_weights()]
            head = self.model.teacher.head.kernel
            head.assign(np.full(head.shape, np.nan, "float32"))


def test_nan_teacher_stops_training_and_keeps_the_last_good_backup(tmp_path):
    model = common.distiller(augmentations=("augpro_mix",))
    poison = PoisonTeacherAfter(2)
    backup = DistillationBackup(tmp_path / "backup", save_every_steps=1)
    checkpoint = tmp_path / "student.weights.h5"
    callbacks = [
        poison,
        backup,
        keras.callbacks.ModelCheckpoint(str(checkpoint), save_weights_only=True, save_freq=1),
        NonFiniteLossGuard(),  # fit() runs guards first, wherever they are listed
    ]
    with pytest.raises(NonFiniteLossError) as raised:
        model.fit(common.dataset(num_examples=16), epochs=2, verbose=0, callbacks=callbacks)
    message = str(raised.value)
    assert "non-finite values at epoch 1, batch 3 (optimizer step 3)" in message
    assert "loss=nan" in message and "learning rate" in message
    assert "The last finite state is the backup" in message and "optimizer step 2" in message
    assert model.stop_training

    latest = checkpointing.latest_backup(tmp_path / "backup")
    assert latest["iterations"] == 2 and latest["path"] in message
    # The backup and the checkpoint hold the state after step 2, finite.
    restored = common.distiller(augmentations=("augpro_mix",))
    backup.restore(restored)
    assert int(restored.optimizer.iterations.numpy()) == 2
    assert common.max_difference(restored.student.get_weights(), poison.good_weights) == 0.0
    checkpointed = common.distiller(augmentations=("augpro_mix",))
    checkpointed.optimizer.build(checkpointed.trainable_variables)
    checkpointed.load_weights(checkpoint)  # the Distiller's weights (teacher and student)
    assert common.max_difference(checkpointed.student.get_weights(), poison.good_weights) == 0.0


def test_huge_learning_rate_is_caught():
    model = common.distiller(augmentations=(), learning_rate=1e38, dropout=0.0)
    with pytest.raises(NonFiniteLossError, match="non-finite values at epoch 1"):
        model.fit(common.dataset(num_examples=40), epochs=1, verbose=0, callbacks=[NonFiniteLossGuard()])


def test_guard_checks_every_value_or_the_monitored_ones():
    guard = NonFiniteLossGuard()
    guard.set_model(common.distiller(augmentations=()))
    guard.on_train_batch_end(0, {"loss": 1.0, "accuracy": 0.5})
    with pytest.raises(NonFiniteLossError, match=r"augpro_mix_loss=inf"):
        guard.on_train_batch_end(4, {"loss": 1.0, "augpro_mix_loss": np.float32(np.inf)})
    only_loss = NonFiniteLossGuard(monitor=["loss"])
    only_loss.set_model(guard.model)
    only_loss.on_train_batch_end(0, {"loss": 1.0, "accuracy": float("nan")})
