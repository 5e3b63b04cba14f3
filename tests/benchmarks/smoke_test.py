"""Each benchmark script runs at a tiny size and prints its JSON report."""

import json
import pathlib
import subprocess
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"


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
    table = markdown("projection.py", report, tmp_path)
    assert "| 300 | projection |" in table and "| 300 | projection_bf16 |" in table
    assert "| 300 | True |" in table


def test_projection_benchmark_on_the_minilm_table():
    report = run("projection.py", "--table", "minilm", "--queries", "64", "--repeats", "1",
                 "--chunk-size", "8192")
    assert report["table"] == "minilm" and report["hidden"] == 384
    answers = report["results"]["30522"]["answers"]
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
                 "float32+xla", "--peer", "--temperature", "2")
    assert report["policy"] == "float32" and not report["jit_compile"] and not report["teacher_dropout"]
    variants = report["variants"]
    assert list(variants) == ["float32", "mixed_bfloat16", "float32+xla"]
    for variant in variants.values():
        assert set(variant) == {"kd", "augpro_mix"}
        assert all(row["median_ms"] > 0 and row["speedup_vs_baseline"] > 0 for row in variant.values())
    assert variants["float32"]["kd"]["speedup_vs_baseline"] == 1.0
    peer = report["peer"]
    assert peer["median_ms"] > 0 and peer["ours_over_keras"] > 0
    losses = peer["losses"]
    # The KLDivergence instance gives our T^2 KL; the default string loss does not.
    assert losses["keras_kl_divergence_instance"] == pytest.approx(losses["ours_distillation"], rel=1e-5)
    assert losses["keras_default_string_loss"] != pytest.approx(losses["ours_distillation"], rel=1e-2)
    assert losses["keras_total"] == pytest.approx(0.5 * losses["ours_total"], rel=1e-5)
    table = markdown("step_time.py", report, tmp_path)
    assert "| kd | " in table and "mixed_bfloat16 speed-up" in table
    assert "| keras.distillation.Distiller |" in table


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


def test_glue_distill_benchmark(tmp_path):
    glue_dir = write_sst2(tmp_path / "glue")
    output = tmp_path / "saved.json"
    report = run(
        "glue_distill.py", "--glue-dir", str(glue_dir), "--size", "tiny", "--settings", "sst2_unlabeled",
        "--seeds", "0", "1", "--work-dir", str(tmp_path / "runs"), "--output", str(output),
    )
    assert json.loads(output.read_text()) == report
    setting = report["settings"]["sst2_unlabeled"]
    assert setting["labeled_train_examples"] == 16 and setting["distill_examples"] == 144
    assert not setting["distill_labeled"]
    assert 0 <= setting["teacher"]["metrics"]["accuracy"] <= 1
    assert list(setting["rows"]) == ["FT student", "KD", "KD+MixUp", "KD+AugPro-Mix", "KD+FGSM",
                                     "KD+AugPro-FGSM", "KD+AugPro-Mix+AugPro-FGSM"]
    assert 0 <= setting["truncated_dev_fraction"] <= 1
    table = markdown("glue_distill.py", report, tmp_path)
    assert "| KD+AugPro-Mix |" in table and "KD+AugPro-Mix − KD+MixUp" in table
    for row in setting["rows"].values():
        accuracy = row["accuracy"]
        assert len(accuracy["values"]) == 2 and row["seeds"] == [0, 1]
        assert accuracy["mean"] == pytest.approx(sum(accuracy["values"]) / 2)
        assert accuracy["std"] >= 0


def test_glue_distill_benchmark_selected_rows_and_fgsm_step(tmp_path):
    glue_dir = write_sst2(tmp_path / "glue")
    report = run(
        "glue_distill.py", "--glue-dir", str(glue_dir), "--size", "tiny", "--settings", "sst2_1k",
        "--seeds", "3", "--rows", "KD+FGSM", "KD", "--fgsm-relative-epsilon", "0.02",
        "--work-dir", str(tmp_path / "runs"),
    )
    assert report["augmentations"] == {
        "KD": [], "KD+FGSM": [{"type": "fgsm", "relative_epsilon": 0.02}]}
    setting = report["settings"]["sst2_1k"]
    assert list(setting["rows"]) == ["KD", "KD+FGSM"]  # table order
    assert setting["rows"]["KD+FGSM"]["seeds"] == [3]
