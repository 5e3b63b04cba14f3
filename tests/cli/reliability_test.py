"""Command line promises: NaN stops a run, finished runs are protected, the best *distilled* student."""

import json
import os
import shutil

import pytest

from augpro_keras.cli.main import main
from tests.cli.conftest import TINY

TINY_ARGS = [arg for override in TINY for arg in ("--set", override)]
QUICK = ["--set", "student.finetune=false", "--set", "tensorboard.enabled=false"]


def _snapshot(root):
    found = {}
    for folder, names, files in os.walk(root):
        names[:] = [n for n in names if n != ".augpro-work"]  # The resumable state may change.
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                found[os.path.relpath(os.path.join(folder, name), root)] = f.read()
    return found


@pytest.fixture
def finished(tiny_run, tmp_path):
    """A copy of the tiny run's folder: a finished `run`."""
    folder = tmp_path / "finished"
    shutil.copytree(tiny_run[0], folder)
    return folder


def test_fine_tuned_student_is_a_reference_never_the_best(tiny_run):
    _, results, printed = tiny_run
    roles = {row["name"]: row["role"] for row in results["rows"]}
    assert roles == {"Teacher": "teacher", "FT student": "reference",
                     "KD+AugPro-Mix+AugPro-FGSM": "student"}
    assert results["best_student"] == "KD+AugPro-Mix+AugPro-FGSM"
    best = next(row for row in results["rows"] if row["name"] == results["best_student"])
    assert best["details"]["file"] == "student"
    assert "FT student: fine-tuned on the labels alone, a reference row" in printed
    assert ("* best student by accuracy among the distilled students: student and "
            "student_saved_model/") in printed


def test_non_finite_loss_stops_with_a_clear_error_and_saves_nothing(tiny_run, finished, capsys):
    before = _snapshot(finished)
    with pytest.raises(SystemExit) as exit_info:
        main(["distill", "--teacher", tiny_run[0], "--output-dir", str(finished), "--overwrite",
              *TINY_ARGS, *QUICK, "--set", "distill.learning_rate=1.0e+38"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "augpro-keras distill: error: KD: Training stopped: " in err  # the first run
    assert "non-finite values at epoch 1, batch 2 (optimizer step 2)" in err
    assert f"Nothing was saved: the files in {finished} are unchanged." in err
    assert _snapshot(finished) == before


def test_a_finished_run_is_refused_and_overwrite_keeps_rows_not_run_again(finished, capsys):
    old = json.loads((finished / "results.json").read_text())
    command = ["distill", "--teacher", str(finished), "--output-dir", str(finished),
               "--augmentations", "", *TINY_ARGS, *QUICK]
    before = _snapshot(finished)
    with pytest.raises(SystemExit) as exit_info:
        main(command)
    assert exit_info.value.code == 2
    assert f"{finished} holds a finished run (student, results.json)" in capsys.readouterr().err
    assert _snapshot(finished) == before

    assert main(command + ["--overwrite"]) == 0
    results = json.loads((finished / "results.json").read_text())
    rows = {row["name"]: row for row in results["rows"]}
    assert set(rows) == {"Teacher", "KD", "FT student", "KD+AugPro-Mix+AugPro-FGSM"}
    for name in ("FT student", "KD+AugPro-Mix+AugPro-FGSM"):
        kept = next(row for row in old["rows"] if row["name"] == name)
        assert rows[name]["metrics"] == kept["metrics"] and rows[name]["details"]["kept"]
    best = rows[results["best_student"]]
    assert best["details"]["file"] == "student"
    assert [r["name"] for r in results["rows"] if r["details"].get("file") == "student"] \
        == [best["name"]]
    after = _snapshot(finished)
    student_files = [name for name in before if name.startswith("student" + os.sep)]
    assert student_files
    student_unchanged = all(after.get(name) == before[name] for name in student_files)
    assert student_unchanged == (best["name"] == "KD+AugPro-Mix+AugPro-FGSM")
    assert not (finished / ".augpro-work").exists()
