"""benchmarks/glue_report.py on made-up entries: summaries, paired comparisons, Markdown.

The smoke tests (smoke_test.py) train a few rows at a tiny size; these check
every row and comparison of the report without training.
"""

import copy
import statistics

import pytest

from tests.benchmarks.scripts import load

glue_report = load("glue_report")
glue_distill = load("glue_distill")

STEP_ROW = glue_report.AUGPRO_FGSM_STEP_ROW.format(2.5)


def _entry(accuracy, wall, augmentation=None):
    train = {"loss": [0.9, 0.7], "distillation_loss": [0.5, 0.4]}
    if augmentation:
        train.update({f"{augmentation}_loss": [0.6, 0.2],
                      f"{augmentation}_token_change_rate": [0.2, 0.4],
                      f"{augmentation}_teacher_confidence": [0.8, 0.9],
                      f"{augmentation}_teacher_label_flip_rate": [0.1, 0.3]})
    return {"metrics": {"accuracy": accuracy, "f1": accuracy / 2}, "wall_seconds": wall,
            "train_seconds": wall - 1,
            "history": {"train": train, "validation": {"accuracy": [accuracy - 0.1, accuracy]}}}


def _setting(rows):
    """A setting of `rows` (`{row: {seed: accuracy}}`) with every field the Markdown reads."""
    return {
        "metrics": ["accuracy", "f1"],
        "data": {"labeled_train_examples": 100, "distill_examples": 900, "distill_labeled": False,
                 "validation_examples": 50, "sequence_length": 48, "truncated_dev_fraction": 0.02,
                 "batch_size": 32},
        "recipe": {"finetune": {"epochs": 3, "steps_per_epoch": 32},
                   "distill": {"epochs": 8, "steps_per_epoch": 25}},
        "teacher": {"metrics": {"accuracy": 0.9, "f1": 0.45}, "wall_seconds": 12.0},
        "entries": {row: {str(seed): _entry(value, 10.0 + seed, _augmentation(row))
                          for seed, value in seeds.items()} for row, seeds in rows.items()},
    }


def _augmentation(row):
    return {"KD+AugPro-Mix": "augpro_mix", "KD+AugPro-FGSM": "augpro_fgsm",
            "KD+KNN": "knn"}.get(row)


#: Two seeds of every row; KD+KNN has seed 1 only (paired over the seeds both rows have).
ACCURACIES = {
    "FT student": {0: 0.70, 1: 0.72},
    "KD": {0: 0.75, 1: 0.74},
    "KD+KNN": {1: 0.73},
    "KD+MixUp": {0: 0.76, 1: 0.73},
    "KD+AugPro-Mix": {0: 0.78, 1: 0.75},
    "KD+AugPro-Mix (end)": {0: 0.77, 1: 0.75},
    "KD+FGSM": {0: 0.75, 1: 0.75},
    "KD+AugPro-FGSM": {0: 0.74, 1: 0.76},
    "KD+AugPro-Mix+AugPro-FGSM": {0: 0.79, 1: 0.74},
    STEP_ROW: {0: 0.72, 1: 0.77},
}


def test_rows_and_every_comparison_are_recomputed_from_the_entries():
    setting = glue_report.summarize_setting(_setting(ACCURACIES))
    assert list(setting["rows"]) == list(ACCURACIES)
    for row, seeds in ACCURACIES.items():
        summary = setting["rows"][row]
        values = list(seeds.values())
        assert summary["seeds"] == list(seeds)
        assert summary["accuracy"]["values"] == values
        assert summary["accuracy"]["mean"] == pytest.approx(sum(values) / len(values))
        assert summary["accuracy"]["std"] >= 0
        assert summary["f1"]["mean"] == pytest.approx(summary["accuracy"]["mean"] / 2)
        walls = [10.0 + seed for seed in seeds]
        assert summary["wall_seconds"]["per_seed"] == walls
        assert summary["wall_seconds"]["median"] == pytest.approx(statistics.median(walls))
    # The augmentations' logs are averaged over epochs, then over seeds; base losses are not.
    diagnostics = setting["rows"]["KD+AugPro-FGSM"]["diagnostics"]
    assert set(diagnostics) == {"augpro_fgsm_loss", "augpro_fgsm_token_change_rate",
                                "augpro_fgsm_teacher_confidence",
                                "augpro_fgsm_teacher_label_flip_rate"}
    assert diagnostics["augpro_fgsm_token_change_rate"]["values"] == pytest.approx([0.3, 0.3])
    assert setting["rows"]["KD"]["diagnostics"] == {}

    # Every main comparison, the step row against AugPro-FGSM and KD, in this order.
    expected = list(glue_report.COMPARISONS) + [(STEP_ROW, "KD+AugPro-FGSM"), (STEP_ROW, "KD")]
    assert [(c["a"], c["b"]) for c in setting["comparisons"]] == expected
    for c in setting["comparisons"]:
        seeds = [s for s in ACCURACIES[c["a"]] if s in ACCURACIES[c["b"]]]
        differences = [ACCURACIES[c["a"]][s] - ACCURACIES[c["b"]][s] for s in seeds]
        assert c["seeds"] == seeds and c["n"] == len(seeds) and c["metric"] == "accuracy"
        assert c["differences"] == pytest.approx(differences)
        assert c["mean"] == pytest.approx(sum(differences) / len(differences))
        assert c["wins"] + c["ties"] + c["losses"] == len(seeds)
        assert c["wins"] == sum(d > 1e-12 for d in differences)
        if len(seeds) > 1:
            assert c["ci95"][0] <= c["mean"] <= c["ci95"][1]
        else:
            assert c["ci95"] is None  # KD+KNN: one shared seed gives no interval

    table = "\n".join(glue_report.render_setting("made_up", setting))
    assert "| KD+AugPro-Mix | 2 |" in table and "| Teacher | | 90.00 | 45.00 |" in table
    assert "| KD+AugPro-Mix − KD+MixUp | 2 | +2.00, +2.00 | +2.00 | [+2.00, +2.00] | 2/0/0 |" in table
    assert "| KD+KNN − KD | 1 | -1.00 | -1.00 |  | 0/0/1 |" in table
    assert f"| {STEP_ROW} − KD+AugPro-FGSM |" in table
    assert "augpro_fgsm 30.0%" in table  # the token change rate column
    assert "teacher label flips" in table
    assert "- KD (2 seeds): 64.50, 74.50" in table  # the dev curve: mean over seeds per epoch
    assert "- KD+AugPro-Mix, `augpro_mix_loss`: 0.6, 0.2" in table


def test_a_setting_against_its_reference_is_paired_by_row_and_seed():
    full = _setting({"KD": {0: 0.75, 1: 0.74}, "KD+AugPro-Mix": {0: 0.78, 1: 0.75}})
    precision = _setting({"KD": {0: 0.76, 1: 0.74}, "KD+AugPro-Mix": {0: 0.77}})
    precision.update(reference="sst2_1k", runtime={"mixed_precision": "mixed_bfloat16"})
    precision["teacher"]["from_setting"] = "sst2_1k"
    report = {"settings": {"sst2_1k": full, "sst2_1k_bf16": precision}}
    glue_report.summarize(report)
    compared = {c["row"]: c for c in precision["reference_comparisons"]}
    assert compared["KD"]["seeds"] == [0, 1]
    assert compared["KD"]["differences"] == pytest.approx([0.01, 0.0])
    assert compared["KD+AugPro-Mix"]["seeds"] == [0]  # the seeds both settings have
    assert compared["KD+AugPro-Mix"]["differences"] == pytest.approx([-0.01])
    assert "reference_comparisons" not in full
    table = glue_report.render_markdown(report)
    assert "Against `sst2_1k`" in table and "mixed_precision `mixed_bfloat16`" in table
    assert "Teacher (`sst2_1k`'s)" in table and "| KD | 2 | +1.00, +0.00 |" in table


def test_summaries_are_recomputed_even_without_a_new_entry():
    """A report saved by an older version (fewer comparisons) gets this version's."""
    report = {"settings": {"sst2_1k": _setting({"KD": {0: 0.7}, "KD+MixUp": {0: 0.8}})}}
    glue_report.summarize(report)
    stale = copy.deepcopy(report)
    stale["settings"]["sst2_1k"]["comparisons"] = []
    glue_report.summarize(stale)
    assert stale == report


def test_default_rows_of_each_setting():
    def rows(setting, **overrides):
        args = glue_distill.argparse.Namespace(**{"fgsm_relative_epsilon": 0.01, "rows": None,
                                                  "augpro_fgsm_steps": [], **overrides})
        return [name for name, _ in glue_distill.selected_runs(args, setting)]

    main = ["FT student", "KD", "KD+MixUp", "KD+AugPro-Mix", "KD+FGSM", "KD+AugPro-FGSM",
            "KD+AugPro-Mix+AugPro-FGSM"]
    assert rows("sst2_unlabeled") == rows("sst2_500") == rows("sst2_2k") == main
    assert rows("sst2_1k") == glue_distill.ROWS  # KNN and the "end" placement run here
    assert rows("rte") == main[:4] + ["KD+AugPro-Mix (end)"] + main[4:]
    assert rows("sst2_1k_bf16") == ["KD", "KD+AugPro-Mix", "KD+AugPro-FGSM"]
    # --rows keeps the table order; --augpro-fgsm-steps adds one row per step.
    assert rows("sst2_1k", rows=["KD+FGSM", "KD"], augpro_fgsm_steps=[2.5]) == [
        "KD", "KD+FGSM", STEP_ROW]
