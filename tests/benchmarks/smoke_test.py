"""Each benchmark script runs at a tiny size and prints its JSON report."""

import json
import pathlib
import subprocess
import sys

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"


def run(script, *args):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_projection_benchmark():
    report = run("projection.py", "--queries", "32", "--hidden", "16", "--vocabularies", "300", "--repeats", "2", "--chunk-size", "64")
    result = report["results"]["300"]
    for method in ("matmul", "naive", "projection"):
        assert result[method]["median_seconds"] > 0
        assert result[method]["gflops_per_second"] > 0
    assert "projection_flop_rate_vs_matmul" in result["ratios"]
    assert "projection_memory_vs_full_matrix" in result["ratios"]
    assert "skipped" in result["faiss"] or result["faiss"]["median_seconds"] > 0


def test_step_time_benchmark():
    report = run("step_time.py", "--pair", "tiny", "--batch", "4", "--length", "8", "--steps", "1", "--modes", "kd", "augpro_mix", "mixup")
    assert set(report["results"]) == {"kd", "augpro_mix", "mixup"}
    assert report["results"]["augpro_mix"]["projection_share_of_flops"] > 0
    assert report["results"]["kd"]["projection_share_of_flops"] == 0
    assert {"augpro_mix/mixup", "augpro_mix/kd", "mixup/kd"} <= set(report["ratios"])
    assert all(r["step_gflop"] > 0 for r in report["results"].values())
