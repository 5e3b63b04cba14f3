"""Each benchmark script runs at a tiny size and prints its JSON report."""

import json
import shutil
import subprocess
import sys

import pytest

from tests.benchmarks.scripts import BENCHMARKS
from tests.reliability import common


def run(script, *args):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def markdown(script, report, tmp_path):
    """The script's Markdown tables of a saved report."""
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--markdown", str(path)],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def test_projection_benchmark(tmp_path):
    report = run("projection.py", "--queries", "32", "--hidden", "16", "--vocabularies", "300", "--repeats", "2", "--chunk-size", "64")
    result = report["results"]["300"]
    for method in ("matmul", "naive", "projection"):
        assert result[method]["median_seconds"] > 0
        assert result[method]["gflops_per_second"] > 0
    assert "projection_flop_rate_vs_matmul" in result["ratios"]
    assert "projection_memory_vs_full_matrix" in result["ratios"]
    assert "skipped" in result["faiss"] or result["faiss"]["median_seconds"] > 0
    assert result["projection"]["peak_extra_memory_bytes"] >= 0
    for method in ("matmul_bf16", "projection_bf16", "projection_bf16_inexact"):
        assert result[method]["median_seconds"] > 0
        assert result[method]["peak_extra_memory_bytes"] >= 0
    for ratio in ("projection_bf16_speedup_vs_projection", "projection_bf16_flop_rate_vs_matmul_bf16",
                  "projection_bf16_inexact_speedup_vs_projection", "matmul_bf16_speedup_vs_matmul"):
        assert result["ratios"][ratio] > 0
    answers = result["answers"]
    assert answers["exact_bf16_equals_float32"] is True
    assert 0 <= answers["float32_search_rate"] <= answers["candidate_search_rate"] <= 1
    assert 0 <= answers["inexact_bf16_answer_change_rate"] <= 1
    assert report["memory_measured"] is True
    table = markdown("projection.py", report, tmp_path)
    assert "| 300 | projection |" in table and "| 300 | projection_bf16 |" in table
    assert "not measured" not in table
    assert "| 300 | True |" in table


def test_projection_benchmark_on_the_minilm_table(tmp_path):
    # Memory is measured by test_projection_benchmark; here the answers on the real table.
    report = run("projection.py", "--table", "minilm", "--queries", "64", "--repeats", "1",
                 "--chunk-size", "8192", "--no-memory")
    assert report["table"] == "minilm" and report["hidden"] == 384
    assert report["memory_measured"] is False
    result = report["results"]["30522"]
    assert all("peak_extra_memory_bytes" not in result[m] for m in ("matmul", "projection"))
    assert "projection_memory_vs_full_matrix" not in result["ratios"]
    table = markdown("projection.py", report, tmp_path)
    assert "| 30522 | projection | " in table and "| not measured |" in table
    answers = result["answers"]
    assert answers["exact_bf16_equals_float32"] is True
    assert answers["candidate_search_rate"] < 0.5


def test_step_time_benchmark(tmp_path):
    report = run("step_time.py", "--pair", "tiny", "--batch", "4", "--length", "8", "--steps", "1", "--modes", "kd", "augpro_mix", "mixup")
    assert set(report["results"]) == {"kd", "augpro_mix", "mixup"}
    assert report["results"]["augpro_mix"]["projection_share_of_flops"] > 0
    assert report["results"]["kd"]["projection_share_of_flops"] == 0
    assert {"augpro_mix/mixup", "augpro_mix/kd", "mixup/kd"} <= set(report["ratios"])
    assert all(r["step_gflop"] > 0 for r in report["results"].values())
    assert all(len(r["ms"]) == 1 for r in report["results"].values())
    speed = report["projection_vs_matmul"]
    assert speed["shape"] == {"queries": 32, "hidden": 32, "vocabulary": 500}
    assert speed["projection_flop_rate_vs_matmul"] > 0
    table = markdown("step_time.py", report, tmp_path)
    assert "| augpro_mix |" in table and "| augpro_mix/mixup |" in table


def test_step_time_benchmark_variants_and_peer(tmp_path):
    report = run("step_time.py", "--pair", "tiny", "--batch", "4", "--length", "8", "--steps", "1",
                 "--modes", "kd", "augpro_mix", "--variants", "float32", "mixed_bfloat16",
                 "float32+xla", "--peer", "--parts", "--temperature", "2")
    assert report["policy"] == "float32" and not report["jit_compile"] and not report["teacher_dropout"]
    variants = report["variants"]
    assert list(variants) == ["float32", "mixed_bfloat16", "float32+xla"]
    for variant in variants.values():
        assert set(variant) == {"kd", "augpro_mix"}
        assert all(row["median_ms"] > 0 and row["speedup_vs_baseline"] > 0 for row in variant.values())
    assert variants["float32"]["kd"]["speedup_vs_baseline"] == 1.0
    assert all(row["median_cpu_ms"] > 0 and row["cpu_speedup_vs_baseline"] > 0
               for variant in variants.values() for row in variant.values())
    assert report["projection_search_dtype"] == {"float32": "float32", "mixed_bfloat16": "bfloat16",
                                                 "float32+xla": "float32"}
    assert {"float32 teacher forward", "float32 teacher forward with dropout",
            "mixed_bfloat16 adam update"} <= set(report["kd_parts"])
    peer = report["peer"]
    assert peer["median_ms"] > 0 and peer["ours_over_keras"] > 0
    assert peer["ours_over_keras_cpu"] > 0 and peer["ours_without_input_checks"]["median_cpu_ms"] > 0
    paired = peer["ours_over_keras_cpu_paired"]
    ratios = [a / b for a, b in zip(report["results"]["kd"]["cpu_ms"], peer["cpu_ms"])]
    assert paired["rounds"] == len(ratios) == 1 and paired["median"] == pytest.approx(ratios[0])
    assert paired["ci95"][0] <= paired["median"] <= paired["ci95"][1]
    assert paired["rounds_faster"] == int(ratios[0] < 1)
    losses = peer["losses"]
    # The KLDivergence instance gives our T^2 KL; the default string loss does not.
    assert losses["keras_kl_divergence_instance"] == pytest.approx(losses["ours_distillation"], rel=1e-5)
    assert losses["keras_default_string_loss"] != pytest.approx(losses["ours_distillation"], rel=1e-2)
    assert losses["keras_total"] == pytest.approx(0.5 * losses["ours_total"], rel=1e-5)
    table = markdown("step_time.py", report, tmp_path)
    assert "| kd | " in table and "mixed_bfloat16 speed-up" in table
    assert "| keras.distillation.Distiller |" in table and "Per-round CPU ratio ours / Keras" in table


def test_step_time_benchmark_refuses_a_bad_variant():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "step_time.py"), "--pair", "tiny",
                           "--variants", "float64"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "A variant is <policy>[+xla] with policy one of float32, mixed_bfloat16" in done.stderr


def write_sst2(folder, train_rows=160, dev_rows=32):
    """A small SST-2 folder in the GLUE layout."""
    words = {0: ["dull", "boring", "bad", "weak", "tedious"], 1: ["fine", "great", "good", "warm", "witty"]}
    sst2 = folder / "SST-2"
    sst2.mkdir(parents=True)
    for name, rows in (("train.tsv", train_rows), ("dev.tsv", dev_rows)):
        lines = ["sentence\tlabel"]
        for i in range(rows):
            label = i % 2
            lines.append(f"a {words[label][i % 5]} and {words[label][(i // 5) % 5]} film\t{label}")
        (sst2 / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def command_of(glue_dir, tmp_path, *args, output="saved.json"):
    """The command line of glue_distill.py at the tiny size."""
    command = [sys.executable, str(BENCHMARKS / "glue_distill.py"), "--glue-dir", str(glue_dir),
               "--size", "tiny", "--work-dir", str(tmp_path / "runs"), *args]
    return command + ["--output", str(tmp_path / output)] if output else command


def run_glue(glue_dir, tmp_path, *args, output="saved.json"):
    """glue_distill.py at the tiny size; returns (printed report, stderr)."""
    done = subprocess.run(command_of(glue_dir, tmp_path, *args, output=output),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout), done.stderr


def kill_after_step(step, phase, command, marker):
    """Runs `command` (a script's) until the model of work folder `phase` has made
    `step` optimizer steps, then kills it with SIGKILL."""
    common.start_and_kill("tests.reliability.cli_resume_worker", "--marker", marker, "--phase",
                          phase, "--step", step, "--", *command[1:], marker=marker)


def test_glue_distill_benchmark(tmp_path):
    """A few rows end to end; glue_report_test.py checks every row and comparison of a report."""
    glue_dir = write_sst2(tmp_path / "glue")
    rows = ["KD+AugPro-Mix", "KD", "KD+MixUp"]
    report, _ = run_glue(glue_dir, tmp_path, "--settings", "sst2_unlabeled", "--seeds", "0", "1",
                         "--rows", *rows)
    assert json.loads((tmp_path / "saved.json").read_text()) == report
    setting = report["settings"]["sst2_unlabeled"]
    data = setting["data"]
    assert data["labeled_train_examples"] == 16 and data["distill_examples"] == 144
    assert not data["distill_labeled"]
    assert 0 <= setting["teacher"]["metrics"]["accuracy"] <= 1
    assert list(setting["rows"]) == ["KD", "KD+MixUp", "KD+AugPro-Mix"]  # table order
    assert 0 <= data["truncated_dev_fraction"] <= 1
    table = markdown("glue_distill.py", report, tmp_path)
    assert "| KD+AugPro-Mix |" in table and "KD+AugPro-Mix − KD+MixUp" in table
    for row in setting["rows"].values():
        accuracy = row["accuracy"]
        assert len(accuracy["values"]) == 2 and row["seeds"] == [0, 1]
        assert accuracy["mean"] == pytest.approx(sum(accuracy["values"]) / 2)
        assert accuracy["std"] >= 0
        assert len(row["wall_seconds"]["per_seed"]) == 2 and row["wall_seconds"]["median"] > 0
    # Every main comparison of these rows is paired over both seeds, with an interval and a sign count.
    pairs = {(c["a"], c["b"]): c for c in setting["comparisons"]}
    assert set(pairs) == {("KD+AugPro-Mix", "KD+MixUp"), ("KD+MixUp", "KD"), ("KD+AugPro-Mix", "KD")}
    for c in pairs.values():
        assert c["n"] == 2 and c["seeds"] == [0, 1]
        assert c["wins"] + c["ties"] + c["losses"] == 2
        assert c["ci95"][0] <= c["mean"] <= c["ci95"][1]
        a = setting["rows"][c["a"]]["accuracy"]["values"]
        b = setting["rows"][c["b"]]["accuracy"]["values"]
        assert c["differences"] == pytest.approx([x - y for x, y in zip(a, b)])
    # Per-epoch logs of every entry: losses, diagnostics and the dev curve.
    entry = setting["entries"]["KD+AugPro-Mix"]["0"]
    assert len(entry["history"]["validation"]["accuracy"]) == 2  # 2 epochs
    train = entry["history"]["train"]
    assert len(train["augpro_mix_loss"]) == 2
    for name in ("augpro_mix_token_change_rate", "augpro_mix_teacher_confidence",
                 "augpro_mix_teacher_label_flip_rate"):
        assert all(0 <= v <= 1 for v in train[name]), name
    assert all(0.5 <= v <= 1 for v in train["augpro_mix_teacher_confidence"])
    assert "mixup_teacher_confidence" in setting["entries"]["KD+MixUp"]["1"]["history"]["train"]
    assert {"augpro_mix_loss", "augpro_mix_token_change_rate",
            "augpro_mix_teacher_label_flip_rate"} <= set(setting["rows"]["KD+AugPro-Mix"]["diagnostics"])
    assert "teacher label flips" in table and "augpro_mix " in table
    # The dev curve per row: the mean over seeds of each epoch's score.
    kd_curves = [setting["entries"]["KD"][s]["history"]["validation"]["accuracy"] for s in ("0", "1")]
    mean_curve = ", ".join(f"{100 * (a + b) / 2:.2f}" for a, b in zip(*kd_curves))
    assert f"- KD (2 seeds): {mean_curve}" in table
    for key in ("commit", "load_before", "load_after", "wall_seconds", "machine"):
        assert key in entry, key
    assert len(entry["load_before"]) == 3
    assert report["invocations"][0]["machine"]["cpus"] >= 1
    assert entry["machine"] == report["invocations"][0]["machine"]  # with its CPU model and ISA
    assert isinstance(entry["machine"]["isa"], list)


def test_glue_distill_benchmark_resumes(tmp_path):
    """A second run with the same output skips finished entries and completes the missing ones."""
    glue_dir = write_sst2(tmp_path / "glue")
    rows = ["--rows", "KD", "KD+AugPro-Mix", "--settings", "sst2_1k"]
    # Killed during its teacher, after step 3 of 4 (epoch 2; the newest backup is epoch
    # 1's end), the same command continues the teacher from that backup.
    kill_after_step(3, "teacher", command_of(glue_dir, tmp_path, *rows, "--seeds", "0"),
                    tmp_path / "teacher_marker")
    assert not (tmp_path / "runs" / "sst2_1k" / "teacher.weights.h5").exists()
    first, log = run_glue(glue_dir, tmp_path, *rows, "--seeds", "0")
    assert "Resuming Teacher from its backup: epoch 2" in log
    # Both epochs' curve (the first from before the kill), as an uninterrupted run has:
    # the refit below, from scratch, retraces it.
    history = first["settings"]["sst2_1k"]["teacher"]["history"]
    assert history["epochs"] == [1, 2] and len(history["val_accuracy"]) == 2
    assert not (tmp_path / "runs" / "sst2_1k" / ".augpro-work").exists()  # dropped once done
    # Killed during KD+AugPro-Mix's seed 1, after step 3 of 4 (its newest backup is
    # epoch 1's end), the same command continues that entry from its backup.
    kill_after_step(3, "kd+augpro-mix", command_of(glue_dir, tmp_path, *rows, "--seeds", "0", "1"),
                    tmp_path / "student_marker")
    second, log = run_glue(glue_dir, tmp_path, *rows, "--seeds", "0", "1")
    assert "KD / seed 0: done, skipped" in log and "KD+AugPro-Mix / seed 0: done, skipped" in log
    assert "KD / seed 1: done, skipped" in log  # finished before the kill
    assert "Resuming KD+AugPro-Mix from its backup: epoch 2" in log
    assert "Teacher: reloading" in log
    assert not (tmp_path / "runs" / "sst2_1k" / "work" / "seed_1" / "kd+augpro-mix").exists()
    # The resumed entry is the one an uninterrupted run makes: the same metrics and
    # per-epoch logs (the first epoch's from before the kill).
    resumed = second["settings"]["sst2_1k"]["entries"]["KD+AugPro-Mix"]["1"]
    without = json.loads(json.dumps(second))
    del without["settings"]["sst2_1k"]["entries"]["KD+AugPro-Mix"]["1"]
    (tmp_path / "fresh.json").write_text(json.dumps(without))
    fresh, _ = run_glue(glue_dir, tmp_path, *rows, "--seeds", "1", output="fresh.json")
    uninterrupted = fresh["settings"]["sst2_1k"]["entries"]["KD+AugPro-Mix"]["1"]
    assert resumed["resumed"] is True and uninterrupted["resumed"] is False
    assert len(resumed["history"]["validation"]["accuracy"]) == 2
    for key in ("metrics", "best_epoch", "history", "augmentations", "distill"):
        assert resumed[key] == uninterrupted[key], key
    assert second["settings"]["sst2_1k"]["rows"]["KD+AugPro-Mix"]["wall_seconds"][
        "resumed_seeds"] == [1]
    assert "(1 resumed)" in markdown("glue_distill.py", second, tmp_path)
    before, after = first["settings"]["sst2_1k"], second["settings"]["sst2_1k"]
    assert after["teacher"] == before["teacher"]
    for row in ("KD", "KD+AugPro-Mix"):
        assert after["entries"][row]["0"] == before["entries"][row]["0"]  # not rerun
        assert set(after["entries"][row]) == {"0", "1"}
        assert after["rows"][row]["seeds"] == [0, 1]
    assert len(second["invocations"]) == 3  # the killed run's included
    assert [c["n"] for c in after["comparisons"]] == [2]
    # Summaries are recomputed from the entries, even where no entry is added (a report
    # saved by an older version, with fewer comparisons, gets this version's).
    stale = json.loads(json.dumps(second))
    stale["settings"]["sst2_1k"]["comparisons"] = []
    (tmp_path / "saved.json").write_text(json.dumps(stale))
    # Without the work folder (another machine), the teacher is fine-tuned again and
    # kept because its curve retraces the recorded one.
    shutil.rmtree(tmp_path / "runs")
    third, log = run_glue(glue_dir, tmp_path, *rows, "--seeds", "0", "1")
    assert "KD+AugPro-Mix / seed 1: done, skipped" in log
    assert "its curve matches the recorded one" in log
    assert third["settings"]["sst2_1k"]["comparisons"] == after["comparisons"]
    refits = third["settings"]["sst2_1k"]["teacher"].pop("refits")
    assert len(refits) == 1 and refits[0]["max_difference"] <= 1e-4
    assert third["settings"]["sst2_1k"]["teacher"] == before["teacher"]
    # A recorded curve the new teacher does not retrace: refused, the report untouched.
    changed = json.loads((tmp_path / "saved.json").read_text())
    changed["settings"]["sst2_1k"]["teacher"]["history"]["loss"][0] += 0.01
    (tmp_path / "saved.json").write_text(json.dumps(changed))
    shutil.rmtree(tmp_path / "runs")
    done = subprocess.run(command_of(glue_dir, tmp_path, *rows, "--seeds", "0", "1"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "did not reproduce the recorded one" in done.stderr
    assert json.loads((tmp_path / "saved.json").read_text()) == changed
    assert not (tmp_path / "runs" / "sst2_1k" / "teacher.weights.h5").exists()
    (tmp_path / "saved.json").write_text(json.dumps(second))
    # Another recipe or another augmentation would not be comparable: refused, the report untouched.
    base = command_of(glue_dir, tmp_path, "--settings", "sst2_1k", "--seeds", "0")
    command = base + ["--rows", "KD", "KD+AugPro-Mix"]
    changed = json.loads((tmp_path / "saved.json").read_text())
    changed["settings"]["sst2_1k"]["recipe"]["distill"]["learning_rate"] = 0.5
    (tmp_path / "saved.json").write_text(json.dumps(changed))
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "was made with another student recipe for sst2_1k" in done.stderr
    assert json.loads((tmp_path / "saved.json").read_text()) == changed
    (tmp_path / "saved.json").write_text(json.dumps(second))
    # New rows of a finished seed run, each with its own augmentations (the FGSM step
    # included); KD, done, is skipped.
    done = subprocess.run(base + ["--rows", "KD+FGSM", "KD+KNN", "FT student", "KD",
                                  "--fgsm-relative-epsilon", "0.02"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "KD / seed 0: done, skipped" in done.stderr
    setting = json.loads(done.stdout)["settings"]["sst2_1k"]
    assert setting["entries"]["KD+FGSM"]["0"]["augmentations"] == [
        {"type": "fgsm", "relative_epsilon": 0.02}]
    assert setting["entries"]["KD"]["0"]["augmentations"] == []
    assert setting["entries"]["KD+KNN"]["0"]["augmentations"] == ["knn"]
    assert setting["entries"]["FT student"]["0"]["augmentations"] is None
    assert set(setting["rows"]) == {"FT student", "KD", "KD+KNN", "KD+AugPro-Mix", "KD+FGSM"}
    assert setting["rows"]["KD+FGSM"]["seeds"] == [0]
    # KNN's diagnostics are logged per epoch and summarized per row.
    train = setting["entries"]["KD+KNN"]["0"]["history"]["train"]
    for name in ("knn_token_change_rate", "knn_teacher_confidence", "knn_teacher_label_flip_rate"):
        assert len(train[name]) == 2 and all(0 <= v <= 1 for v in train[name]), name
    assert 0 < train["knn_token_change_rate"][0]
    assert {"knn_loss", "knn_token_change_rate"} <= set(setting["rows"]["KD+KNN"]["diagnostics"])
    assert {(c["a"], c["b"]) for c in setting["comparisons"]} >= {
        ("KD+FGSM", "KD"), ("KD+KNN", "KD"), ("KD+AugPro-Mix", "KD+KNN")}
    done = subprocess.run(base + ["--rows", "KD+FGSM"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "another augmentations for sst2_1k / KD+FGSM" in done.stderr


def test_glue_distill_precision_setting_and_augpro_fgsm_steps(tmp_path):
    """sst2_1k_bf16 reuses sst2_1k's teacher under mixed_bfloat16 and is paired with
    its float32 entries; --augpro-fgsm-steps adds compared AugPro-FGSM rows."""
    glue_dir = write_sst2(tmp_path / "glue")
    alone = [sys.executable, str(BENCHMARKS / "glue_distill.py"), "--glue-dir", str(glue_dir),
             "--size", "tiny", "--work-dir", str(tmp_path / "runs"), "--output",
             str(tmp_path / "saved.json"), "--settings", "sst2_1k_bf16", "--seeds", "0"]
    done = subprocess.run(alone, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "Run --settings sst2_1k first" in done.stderr
    report, log = run_glue(glue_dir, tmp_path, "--settings", "sst2_1k", "sst2_1k_bf16",
                           "--seeds", "0", "--rows", "KD", "KD+AugPro-FGSM",
                           "--augpro-fgsm-steps", "2.5")
    assert "Teacher: reloading sst2_1k's teacher" in log
    step_row = "KD+AugPro-FGSM (2.5 std)"
    full, precision = report["settings"]["sst2_1k"], report["settings"]["sst2_1k_bf16"]
    assert list(full["rows"]) == list(precision["rows"]) == ["KD", "KD+AugPro-FGSM", step_row]
    assert full["runtime"] == {} and precision["runtime"] == {"mixed_precision": "mixed_bfloat16"}
    assert precision["reference"] == "sst2_1k"
    assert precision["teacher"]["from_setting"] == "sst2_1k"
    assert 0 <= precision["teacher"]["metrics"]["accuracy"] <= 1
    assert full["entries"][step_row]["0"]["augmentations"] == [
        {"type": "augpro_fgsm", "relative_epsilon": 2.5}]
    pairs = {(c["a"], c["b"]) for c in full["comparisons"]}
    assert {(step_row, "KD+AugPro-FGSM"), (step_row, "KD"), ("KD+AugPro-FGSM", "KD")} <= pairs
    # AugPro-FGSM's diagnostics, logged per epoch and summarized per row.
    diagnostics = full["rows"]["KD+AugPro-FGSM"]["diagnostics"]
    assert {"augpro_fgsm_loss", "augpro_fgsm_token_change_rate",
            "augpro_fgsm_teacher_label_flip_rate"} <= set(diagnostics)
    # Each bfloat16 entry is paired with the float32 entry of the same row and seed
    # (glue_report_test.py pairs several seeds).
    compared = {c["row"]: c for c in precision["reference_comparisons"]}
    assert set(compared) == {"KD", "KD+AugPro-FGSM", step_row}
    for row, c in compared.items():
        assert c["seeds"] == [0]
        assert c["differences"] == pytest.approx(
            [precision["entries"][row]["0"]["metrics"]["accuracy"]
             - full["entries"][row]["0"]["metrics"]["accuracy"]])
    assert "reference_comparisons" not in full or not full["reference_comparisons"]
    table = markdown("glue_distill.py", report, tmp_path)
    assert "Against `sst2_1k`" in table and "mixed_precision `mixed_bfloat16`" in table
    assert "Teacher (`sst2_1k`'s)" in table and f"| {step_row} − KD+AugPro-FGSM |" in table
    # Without --rows the precision setting runs its own rows only.
    again, log = run_glue(glue_dir, tmp_path, "--settings", "sst2_1k_bf16", "--seeds", "0",
                          output="saved.json")
    assert "sst2_1k_bf16 / KD / seed 0: done, skipped" in log
    assert "sst2_1k_bf16 / KD+AugPro-Mix / seed 0" in log and "KD+MixUp" not in log
    refused = subprocess.run(alone[:-4] + ["--augpro-fgsm-steps", "3"], capture_output=True,
                             text=True, timeout=300)
    assert refused.returncode != 0 and "differ from KD+AugPro-FGSM's own (3)" in refused.stderr


def test_glue_distill_sweep(tmp_path):
    glue_dir = write_sst2(tmp_path / "glue")
    # Without --output: the report is printed only.
    report, _ = run_glue(glue_dir, tmp_path, "--sweep", "--seeds", "0",
                         "--sweep-learning-rates", "0.001", "0.003", "--sweep-steps", "100",
                         output=None)
    assert not (tmp_path / "saved.json").exists()
    sweep = report["sweep"]
    assert sweep["setting"] == "sst2_1k" and sweep["metric"] == "accuracy"
    assert [(p["learning_rate"], p["steps"]) for p in sweep["points"]] == [(0.001, 100), (0.003, 100)]
    for point in sweep["points"]:
        run = point["entries"]["0"]
        assert run["distill"]["learning_rate"] == point["learning_rate"]
        assert len(run["history"]["validation"]["accuracy"]) == 2  # 100 steps // 50 at tiny size
    assert "entries" not in report["settings"]["sst2_1k"] or not report["settings"]["sst2_1k"]["entries"]
    table = markdown("glue_distill.py", report, tmp_path)
    assert "### KD sweep" in table and "| 0.003 | 100 | 0 |" in table
