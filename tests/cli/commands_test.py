"""The subcommands through `main()`: finetune, distill, evaluate, augment."""

import csv
import json
import os

import pytest

from augpro_keras.cli.main import main
from tests.cli.conftest import TINY

TINY_ARGS = [arg for override in TINY for arg in ("--set", override)]


def test_finetune_writes_the_teacher(tmp_path, capsys):
    assert main(["finetune", "--output-dir", str(tmp_path), *TINY_ARGS]) == 0
    assert (tmp_path / "teacher" / "task.json").is_file()  # a keras-hub preset folder
    assert (tmp_path / "teacher_results.json").is_file()
    out = capsys.readouterr().out
    assert "| Teacher" in out and "Teacher saved to" in out
    results = json.loads((tmp_path / "teacher_results.json").read_text())
    assert results["rows"][0]["name"] == "Teacher"
    assert results["config"]["finetune"]["epochs"] == 1


def test_distill_a_saved_teacher_with_chosen_augmentations(tiny_run, tmp_path, capsys):
    teacher_dir, _, _ = tiny_run
    out_dir = tmp_path / "distilled"
    assert main(["distill", "--teacher", teacher_dir, "--output-dir", str(out_dir),
                 "--augmentations", "augpro_mix", "--set", "student.finetune=false",
                 "--set", "tensorboard.enabled=false", *TINY_ARGS]) == 0
    results = json.loads((out_dir / "results.json").read_text())
    assert [row["name"] for row in results["rows"]] == ["Teacher", "KD+AugPro-Mix"]
    assert results["best_student"] == "KD+AugPro-Mix"
    for name in ("student/task.json", "student_saved_model", "config.json"):
        assert (out_dir / name).exists(), name
    assert "| KD+AugPro-Mix *" in capsys.readouterr().out


def test_evaluate_prints_the_metrics(tiny_run, tmp_path, capsys):
    output_dir, _, _ = tiny_run
    output = tmp_path / "evaluation.json"
    assert main(["evaluate", "--model", os.path.join(output_dir, "teacher"),
                 "--output", str(output), *TINY_ARGS]) == 0
    out = capsys.readouterr().out
    assert "| teacher " in out and "| accuracy | f1" in out
    results = json.loads(output.read_text())
    assert set(results["rows"][0]["metrics"]) == {"accuracy", "f1"}


def test_augment_writes_tsv_and_prints_teacher_labels(tiny_run, tmp_path, capsys):
    output_dir, _, _ = tiny_run
    output = tmp_path / "augmented.tsv"
    assert main(["augment", "--teacher", output_dir, "--augmentations",
                 "augpro_mix,augpro_fgsm,knn", "--num-examples", "4", "--output", str(output),
                 *TINY_ARGS]) == 0
    out = capsys.readouterr().out
    assert "original :" in out and "augmented:" in out
    assert "[augpro_mix]" in out and "[knn]" in out
    assert os.path.join(output_dir, "student") in out  # The run's student plays the student.
    with open(output, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == 12
    assert {row["augmentation"] for row in rows} == {"augpro_mix", "augpro_fgsm", "knn"}
    labels = {row["augmented_teacher_label"].split(" ")[0] for row in rows}
    assert labels <= {"negative", "positive"}


def test_missing_teacher_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["augment", "--teacher", str(tmp_path), *TINY_ARGS])
    assert exit_info.value.code == 2  # A bad option: exit status 2, as argparse's own errors.
    err = capsys.readouterr().err
    assert f"Tokenizer file not found: {tmp_path / 'tokenizer.json'}" in err


# Slow: after this run, MirroredStrategy collectives in the same process
# fail ("Collective ops is aborted by: Shape mismatch in the collective
# instance 100"), which breaks later distributed tests in that process.
@pytest.mark.slow
def test_distill_with_two_replicas(tiny_run, tmp_path):
    """Every model and optimizer is created in the strategy's scope."""
    import tensorflow as tf

    from augpro_keras.cli import pipeline
    from augpro_keras.cli.strategy import StrategyInfo
    from tests.cli.conftest import tiny_config

    teacher_dir, _, _ = tiny_run
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    info = StrategyInfo(strategy, "mirrored", 2, "MirroredStrategy (2 CPUs), 2 replicas")
    printed = []
    config = tiny_config(str(tmp_path), "student.finetune=true", "tensorboard.enabled=false",
                         "distill.runs=[[]]", "finetune.steps_per_epoch=1",
                         "distill.steps_per_epoch=1")
    results = pipeline.distill(config, teacher_dir, out=printed.append, strategy_info=info)
    assert results["num_replicas"] == 2
    assert [r["name"] for r in results["rows"]] == ["Teacher", "FT student", "KD"]
    assert printed[0] == "Strategy: MirroredStrategy (2 CPUs), 2 replicas"
