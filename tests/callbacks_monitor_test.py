import warnings

import keras
import numpy as np
import pytest

from augpro_keras import Distiller
from augpro_keras import augmentations as aug
from augpro_keras.callbacks import LowTokenChangeRateWarning, TokenChangeRateMonitor
from tests import tiny


def run_epoch_end(monitor, logs, epoch=0):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monitor.on_epoch_end(epoch, logs)
    return [w for w in caught if issubclass(w.category, LowTokenChangeRateWarning)]


def test_warns_when_a_rate_stays_near_zero():
    monitor = TokenChangeRateMonitor()
    logs = {"loss": 0.5, "augpro_fgsm_token_change_rate": np.float32(0.003), "augpro_mix_token_change_rate": 0.4}
    caught = run_epoch_end(monitor, logs, epoch=2)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "augpro_fgsm_token_change_rate was 0.003 in epoch 3, below min_rate=0.01" in message
    assert "'augpro_fgsm'" in message and "relative_epsilon" in message
    assert monitor.alerts == [(2, "augpro_fgsm_token_change_rate", pytest.approx(0.003))]
    assert run_epoch_end(monitor, {"augpro_fgsm_token_change_rate": 0.2}) == []
    assert run_epoch_end(monitor, {"loss": 0.1}) == []  # plain KD: nothing to watch


def test_max_rate_validation_logs_and_explicit_names():
    monitor = TokenChangeRateMonitor(min_rate=0.05, max_rate=0.9, monitor=["knn_token_change_rate"])
    caught = run_epoch_end(monitor, {"knn_token_change_rate": 0.97, "augpro_fgsm_token_change_rate": 0.0})
    assert len(caught) == 1 and "above max_rate=0.9" in str(caught[0].message)
    caught = run_epoch_end(monitor, {"augpro_fgsm_token_change_rate": 0.3})
    assert len(caught) == 1 and "knn_token_change_rate is not in the logs of epoch 1" in str(caught[0].message)
    assert monitor.alerts[-1] == (0, "knn_token_change_rate", None)
    everything = TokenChangeRateMonitor()
    assert run_epoch_end(everything, {"val_augpro_fgsm_token_change_rate": 0.0, "x_token_change_rate": float("nan")}) == []
    assert TokenChangeRateMonitor(0.02, 0.5, ["a"]).get_config() == {"min_rate": 0.02, "max_rate": 0.5, "monitor": ["a"]}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_rate": -0.1}, r"`min_rate` must be a number in \[0, 1\]. Received: min_rate=-0.1"),
        ({"min_rate": float("nan")}, "min_rate=nan"),
        ({"min_rate": 0.2, "max_rate": 0.1}, r"greater than `min_rate` \(0.2\). Received: max_rate=0.1"),
        ({"monitor": "augpro_fgsm_token_change_rate"}, "list of log names"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TokenChangeRateMonitor(**kwargs)


def test_a_run_whose_augmentation_changes_no_token_is_warned_about():
    teacher, student = tiny.pair()
    distiller = Distiller(
        teacher, student, augmentations=[aug.AugProFGSM(relative_epsilon=0.0), "augpro_mix"],
        seed=0, teacher_dropout=False,
    )
    distiller.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    monitor = TokenChangeRateMonitor()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = distiller.fit(tiny.dataset(num_batches=2), epochs=1, verbose=0, callbacks=[monitor]).history
    assert history["augpro_fgsm_token_change_rate"][0] == 0.0
    assert history["augpro_mix_token_change_rate"][0] > 0.01
    low = [w for w in caught if issubclass(w.category, LowTokenChangeRateWarning)]
    assert len(low) == 1 and "augpro_fgsm_token_change_rate was 0 in epoch 1" in str(low[0].message)
    assert [name for _, name, _ in monitor.alerts] == ["augpro_fgsm_token_change_rate"]
