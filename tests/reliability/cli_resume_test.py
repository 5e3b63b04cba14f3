"""`augpro-keras run` killed with SIGKILL mid-epoch resumes and ends as an uninterrupted run."""

import json
import os

import numpy as np

import augpro_keras  # noqa: F401  Registers the package's classes for loading.
from augpro_keras import checkpointing
from augpro_keras.cli.main import main
from tests.cli.conftest import TINY
from tests.reliability import common
from tests.reliability.resume_test import TOLERANCE

# Two epochs of four steps per model, a backup every two steps.
ARGS = [arg for override in TINY + [
    "distill.runs=[[augpro_mix]]", "distill.epochs=2", "distill.steps_per_epoch=4",
    "finetune.steps_per_epoch=3", "runtime.backup_every_steps=2",
    "tensorboard.enabled=false", "augment.num_examples=2",
] for arg in ("--set", override)]


def _weights(path):
    import keras_hub

    return keras_hub.models.TextClassifier.from_preset(str(path)).get_weights()


def _litter(folder):
    return sorted(name for name in os.listdir(folder)
                  if name.startswith(".staging-") or name == ".augpro-work")


def test_sigkilled_run_resumes_mid_epoch_to_the_same_student(tmp_path):
    killed_dir, reference_dir, marker = tmp_path / "killed", tmp_path / "reference", tmp_path / "m"
    command = ["run", "--output-dir", str(killed_dir), *ARGS]
    # Killed after step 7 of KD+AugPro-Mix (epoch 2, batch 3); its newest
    # backup is from step 6, so step 7 is trained again. Teacher and FT
    # student finished before: the resumed command loads them.
    common.start_and_kill("tests.reliability.cli_resume_worker", "--marker", marker,
                          "--phase", "kd+augpro-mix", "--step", 7, "--", *command, marker=marker)
    assert not (killed_dir / "student").exists()
    latest = checkpointing.latest_backup(killed_dir / ".augpro-work" / "kd+augpro-mix" / "backup")
    assert (latest["epoch"], latest["batch"], latest["iterations"]) == (1, 2, 6)

    resumed = common.start("tests.reliability.cli_resume_worker", "--", *command)
    assert main(["run", "--output-dir", str(reference_dir), *ARGS]) == 0  # uninterrupted
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    assert "Resuming the interrupted `augpro-keras run`" in output
    assert "Teacher: trained before the interruption; loaded" in output
    assert "FT student: trained before the interruption; loaded" in output
    assert ("Resuming KD+AugPro-Mix from its backup: epoch 2, after batch 2 "
            "(optimizer step 6)") in output

    for name in ("student", "teacher"):
        difference = common.max_difference(_weights(killed_dir / name),
                                           _weights(reference_dir / name))
        assert difference <= TOLERANCE, name
    rows = [json.loads((d / "results.json").read_text())["rows"] for d in (killed_dir, reference_dir)]
    for resumed_row, reference_row in zip(*rows):
        assert resumed_row["name"] == reference_row["name"]
        np.testing.assert_allclose(list(resumed_row["metrics"].values()),
                                   list(reference_row["metrics"].values()), atol=1e-6)
        assert resumed_row["details"]["best_epoch"] == reference_row["details"]["best_epoch"]
        # Every epoch's logs, those from before the kill included (`EpochLog`).
        resumed, reference = (r["details"]["history"] for r in (resumed_row, reference_row))
        assert set(resumed) == set(reference) and resumed["epochs"] == reference["epochs"]
        for key, values in reference.items():
            np.testing.assert_allclose(resumed[key], values, atol=1e-6, err_msg=key)
    assert resumed_row["name"] == "KD+AugPro-Mix" and resumed["epochs"] == [1, 2]
    assert _litter(killed_dir) == [] and _litter(reference_dir) == []
