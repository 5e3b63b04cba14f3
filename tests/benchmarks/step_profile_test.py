"""benchmarks/step_profile.py: the op profile of a KD step at a tiny size, and its parser."""

import json
import subprocess
import sys

import pytest

from tests.benchmarks.scripts import BENCHMARKS
from tests.benchmarks.scripts import load

step_profile = load("step_profile")  # it imports its sibling step_time


def run(*args, check=True):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "step_profile.py"), *args],
                          capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_matmul_like_classification():
    for op_type in ("MatMul", "_MklMatMul", "_FusedMatMul", "_MklFusedMatMul", "_MklNativeFusedMatMul",
                    "BatchMatMulV2", "_MklBatchMatMulV2", "BatchMatMulV3", "Einsum", "_MklEinsum",
                    "Conv2D", "_MklConv2D", "Conv1D", "DepthwiseConv2dNative"):
        assert step_profile.is_matmul_like(op_type), op_type
    for op_type in ("_MklSoftmax", "Cast", "AddV2", "GatherV2", "Mean", "SquaredDifference",
                    "StatelessRandomUniformV2", "BiasAddGrad", "ResourceApplyAdam", "Sum"):
        assert not step_profile.is_matmul_like(op_type), op_type


def test_op_events_are_summed_by_type_within_step_windows():
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    plane = space.planes.add(name="/host:CPU")
    names = ["multi_step_on_iterator", "dense/MatMul:_MklMatMul", "ExecutorState::Process",
             "EagerLocalExecute: __inference_multi_step_on_iterator_1", "gelu/Mul:Mul", "dense/Cast:Cast"]
    for key, name in enumerate(names, start=1):
        plane.event_metadata[key].id = key
        plane.event_metadata[key].name = name
    python = plane.lines.add(name="python", timestamp_ns=1)
    for offset in (0, 100_000):  # two steps: [1000, 51000) and [101000, 151000) ps
        python.events.add(metadata_id=1, offset_ps=offset, duration_ps=50_000)
        python.events.add(metadata_id=4, offset_ps=offset, duration_ps=50_000)
    compute = plane.lines.add(name="tf_Compute/1", timestamp_ns=2)  # 1000 ps after the python line
    for metadata_id, offset, duration in ((2, 0, 10_000), (3, 0, 40_000), (5, 20_000, 3_000),
                                          (2, 100_000, 7_000), (6, 110_000, 1_000),
                                          (5, 60_000, 9_999)):  # between the steps: left out
        compute.events.add(metadata_id=metadata_id, offset_ps=offset, duration_ps=duration)
    steps = step_profile.op_times_per_step(space)
    assert steps == [{"_MklMatMul": 10_000, "Mul": 3_000}, {"_MklMatMul": 7_000, "Cast": 1_000}]

    report = step_profile.summarize(steps, [2e-3, 4e-3], [3e-3, 5e-3],
                                    {"median_ms": 3.0, "median_cpu_ms": 4.0, "ms": [3.0], "cpu_ms": [4.0]})
    assert report["op_ms_per_step"] == pytest.approx((13_000 + 8_000) / 2 / 1e9)
    assert report["matmul_like_ms_per_step"] == pytest.approx(17_000 / 2 / 1e9)
    assert report["matmul_like_share"] == pytest.approx(17 / 21)
    assert report["matmul_like_types"] == ["_MklMatMul"]
    assert report["op_time_over_profiled_wall"] == pytest.approx(report["op_ms_per_step"] / 3.0)


def test_profile_at_the_tiny_size(tmp_path):
    report = json.loads(run("--pair", "tiny", "--batch", "4", "--length", "8", "--steps", "2",
                            "--warmup", "1").stdout)
    assert report["policies"] == ["float32", "mixed_bfloat16"] and report["modes"] == ["kd"]
    assert set(report["runs"]) == {"kd [float32]", "kd [mixed_bfloat16]"}
    for result in report["runs"].values():
        assert result["steps"] == 2 and len(result["ms"]) == 2 and len(result["profiled"]["op_ms"]) == 2
        assert result["median_ms"] > 0 and result["median_cpu_ms"] > 0
        by_type = result["op_ms_per_step_by_type"]
        assert sum(by_type.values()) == pytest.approx(result["op_ms_per_step"])
        assert sum(by_type[t] for t in result["matmul_like_types"]) == pytest.approx(
            result["matmul_like_ms_per_step"])
        assert result["non_matmul_ms_per_step"] == pytest.approx(
            result["op_ms_per_step"] - result["matmul_like_ms_per_step"])
        assert 0 < result["matmul_like_share"] < 1
        assert result["matmul_like_types"] and all(step_profile.is_matmul_like(t)
                                                   for t in result["matmul_like_types"])
        # A step trains: its softmax, casts and the optimizer's variable updates are there too.
        assert any(t.endswith("Softmax") for t in by_type) and "AssignSubVariableOp" in by_type
        assert result["op_time_over_profiled_cpu"] > 0
    assert "Cast" in report["runs"]["kd [mixed_bfloat16]"]["op_ms_per_step_by_type"]
    ceiling = report["ceilings"]["kd"]["mixed_bfloat16"]
    baseline, bf16 = report["runs"]["kd [float32]"], report["runs"]["kd [mixed_bfloat16]"]
    assert ceiling["ceiling_op_time"] == pytest.approx(baseline["op_ms_per_step"]
                                                       / bf16["non_matmul_ms_per_step"])
    assert ceiling["ceiling_cpu"] == pytest.approx(
        baseline["median_cpu_ms"] / (bf16["median_cpu_ms"] * (1 - bf16["matmul_like_share"])))
    # Taking the matmul time off the same op time can only raise the speed-up.
    assert ceiling["ceiling_op_time"] > ceiling["measured_speedup_op_time"] > 0

    path = tmp_path / "report.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    table = run("--markdown", str(path)).stdout
    assert "| kd [float32] |" in table and "| kd | mixed_bfloat16 |" in table
    assert "Softmax | no |" in table
    assert any(f"| {t} | yes |" in table for t in bf16["matmul_like_types"])
    medians = step_profile.step_medians(bf16)
    assert 0 < medians["matmul_like_share"] < 1
    assert medians["non_matmul_ms"] <= max(o - m for o, m in zip(bf16["profiled"]["op_ms"],
                                                                bf16["profiled"]["matmul_like_ms"]))
    assert f"| {medians['matmul_like_share']:.3f} |" in table


def test_refuses_xla_and_unknown_policies():
    for policy in ("float32+xla", "float64"):
        done = run("--pair", "tiny", "--policies", "float32", policy, check=False)
        assert done.returncode == 2 and policy in done.stderr
