"""The argument parser: subcommands, help texts, options and exit codes."""

import os
import subprocess
import sys

import pytest

from augpro_keras.cli import main as main_lib

COMMANDS = ("run", "finetune", "distill", "evaluate", "augment", "config")


def _help(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main_lib.main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys):
    text = _help(capsys)
    for command in COMMANDS:
        assert f"    {command}" in text
    assert "--set KEY=VALUE" in text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_useful_help(capsys, command):
    text = _help(capsys, command)
    for option in ("--config", "--set", "--output-dir", "--task", "--glue-dir", "--strategy",
                   "--steps-per-execution"):
        assert option in text
    assert len(text) > 1200


def test_command_specific_options(capsys):
    assert "--augmentations" in _help(capsys, "distill")
    assert "--teacher" in _help(capsys, "distill")
    text = _help(capsys, "augment")
    for option in ("--student", "--num-examples", "--output", "--augmentations"):
        assert option in text
    assert "--model" in _help(capsys, "evaluate")


def test_config_command_prints_the_resolved_config(capsys):
    assert main_lib.main(["config", "--task", "rte", "--set", "distill.epochs=2",
                          "--strategy", "cpu", "--steps-per-execution", "4"]) == 0
    out = capsys.readouterr().out
    assert "source: glue" in out and "task: rte" in out
    assert "epochs: 2" in out and "strategy: cpu" in out and "steps_per_execution: 4" in out


def test_invalid_config_exits_with_code_2_and_the_problems(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main_lib.main(["run", "--set", "distill.epoch=1", "--set", "seed=x"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "augpro-keras run: error: Invalid configuration:" in err
    assert "did you mean 'distill.epochs'?" in err
    assert "seed: expected an integer, got str 'x'" in err


def test_distill_augmentations_option_makes_one_run():
    parser = main_lib.build_parser()
    args = parser.parse_args(["distill", "--augmentations", "augpro_mix, augpro_fgsm"])
    config = main_lib._load(args)
    assert config["distill"]["runs"] == [
        {"name": "KD+AugPro-Mix+AugPro-FGSM", "augmentations": ["augpro_mix", "augpro_fgsm"]}]
    args = parser.parse_args(["distill", "--augmentations", ""])
    assert main_lib._load(args)["distill"]["runs"] == [{"name": "KD", "augmentations": []}]


def test_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "augpro-keras")
    assert os.path.isfile(script), "reinstall with `pip install -e .`"
    result = subprocess.run([script, "distill", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0
    assert "usage: augpro-keras distill" in result.stdout


def test_no_tensorflow_start_up_notices_on_help():
    import subprocess
    import sys

    from tests.reliability.common import ROOT
    from tests.reliability.common import python_environment

    done = subprocess.run([sys.executable, "-m", "augpro_keras.cli.main", "--help"], cwd=ROOT,
                          env=python_environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "usage: augpro-keras" in done.stdout
    assert done.stderr == ""


def test_native_notices_are_recognised_and_nothing_else():
    from augpro_keras.cli.quiet import is_notice

    for line in [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796120907.077239    4566 port.cc:153] oneDNN custom operations are on.",
        "I0000 00:00:1796120907.077519    4566 cudart_stub.cc:31] Could not find cuda drivers",
        "E0000 00:00:1796121283.830700    8963 cuda_platform.cc:52] failed call to cuInit: ...",
        "E0000 00:00:1796121286.030803    8963 util.cc:131] oneDNN supports DT_INT64 only on ...",
    ]:
        assert is_notice(line), line
    for line in ["augpro-keras run: error: Invalid configuration:",
                 "E0000 00:00:1796121286.030803    8963 util.cc:131] Something else failed",
                 "Traceback (most recent call last):"]:
        assert not is_notice(line), line


def test_progress_is_one_line_per_epoch_off_a_terminal():
    import io

    from augpro_keras.cli.training import progress_verbosity

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert progress_verbosity(1, io.StringIO()) == 2
    assert progress_verbosity(1, Terminal()) == 1
    assert progress_verbosity(0, io.StringIO()) == 0
