"""Strategy resolution: TPU, then GPUs, then CPU, and clear errors."""

import pytest
import tensorflow as tf

from augpro_keras.cli import strategy as strategy_lib


def test_auto_falls_back_to_cpu_and_says_why():
    info = strategy_lib.resolve_strategy("auto")
    assert info.kind == "cpu"
    assert info.num_replicas == 1
    assert info.strategy is tf.distribute.get_strategy()
    assert info.description.startswith("CPU (default strategy), 1 replica")
    assert "no TPU found" in info.description and "no GPU found" in info.description


def test_explicit_tpu_without_one_is_a_clear_error():
    with pytest.raises(strategy_lib.StrategyError) as error:
        strategy_lib.resolve_strategy("tpu")
    message = str(error.value)
    assert message.startswith("No TPU found (")
    assert "Runtime > Change runtime type > TPU" in message
    assert "--strategy auto, mirrored or cpu" in message


def test_cpu_and_mirrored_strategies():
    cpu = strategy_lib.resolve_strategy("cpu")
    assert isinstance(cpu.strategy, tf.distribute.OneDeviceStrategy)
    assert cpu.description == "CPU (OneDeviceStrategy), 1 replica"
    mirrored = strategy_lib.resolve_strategy("mirrored")
    assert isinstance(mirrored.strategy, tf.distribute.MirroredStrategy)
    assert mirrored.description.startswith("MirroredStrategy (")


def test_multiworker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(strategy_lib.StrategyError, match="needs the TF_CONFIG"):
        strategy_lib.resolve_strategy("multiworker")


def test_unknown_strategy():
    with pytest.raises(ValueError, match="Unknown strategy 'gpu'"):
        strategy_lib.resolve_strategy("gpu")


def test_cli_reports_tpu_error_without_traceback(capsys):
    from augpro_keras.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["finetune", "--strategy", "tpu", "--quiet"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "augpro-keras finetune: error: No TPU found" in err
    assert "Traceback" not in err
