"""Benchmark: where a training step's time goes, op type by op type, per policy.

Profiles `--steps` training steps of our Distiller per mode (default `kd`)
under every policy of `--policies` (default `float32 mixed_bfloat16`) with
the TensorFlow profiler, sums the durations of the TensorFlow op events of
those steps by op type, and splits the types into matmul-like ones (the
work a bfloat16 policy hands to oneDNN's bfloat16 kernels: MatMul, Einsum,
BatchMatMul, convolutions, and their oneDNN/fused variants) and the rest
(layer norm, softmax, gelu, dropout's random numbers, casts, gathers,
Adam's elementwise update, ...). Prints one JSON object: per policy and
mode the median step ms (wall and CPU), the op ms per step of every type,
the matmul-like share and the non-matmul ms per step; then, for every
policy after the first, the Amdahl ceiling of its speed-up over the first:

    first policy's step / (policy's step - policy's matmul-like time)

the speed-up that even infinitely fast matmuls under that policy would give,
by op time (op ms per step of the profiled steps) and by CPU time (the
unprofiled CPU ms of a step, of which the matmul-like share of the op time
is taken off), next to the measured speed-up.

How it measures:

- The models, batch and Distillers are step_time.py's (`build_pair`,
  `batch`, `build_runs`; the teacher runs with dropout, as there).
- First `--steps` unprofiled steps per run, the runs taking turns step by
  step (step_time.py's `time_runs`): the step times of the report, wall
  and CPU (`time.process_time`, all threads).
- Then each run once more for `--steps` steps in one `fit` under
  `tf.profiler.experimental`: its host plane's op events (names
  `op_name:OpType`) that fall within the steps' windows (the `fit` loop's
  step-function events) are summed by type. Op events are not nested, but
  the executor runs independent ops at once on its threads, so the op time
  of a step can exceed its wall time; `op_time_over_profiled_wall` and
  `op_time_over_profiled_cpu` say how much of the profiled steps' wall and
  CPU time the op events cover. The profiler's own cost shows as the gap
  between the profiled and the unprofiled step times.
- XLA variants are refused: XLA fuses a step into clusters whose events do
  not carry TensorFlow op types.

Model pairs (`--pair`): as step_time.py (`minilm`, `enct5`, `tiny`).

Usage:
    python benchmarks/step_profile.py --pair minilm --batch 16 --length 64 --steps 6
    python benchmarks/step_profile.py --pair tiny --batch 4 --length 8 --steps 2
    python benchmarks/step_profile.py --markdown docs/benchmarks/step_profile_minilm.json
"""

import argparse
import bisect
import glob
import json
import os
import re
import statistics
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The script's own folder is on `sys.path` when it runs, so its siblings import.
import machine_info  # noqa: E402
from step_time import MODES  # noqa: E402
from step_time import POLICIES  # noqa: E402
from step_time import StepTimer  # noqa: E402
from step_time import batch  # noqa: E402
from step_time import build_runs  # noqa: E402
from step_time import parse_variant  # noqa: E402
from step_time import time_runs  # noqa: E402

# A TensorFlow op event of the host plane: `op_name:OpType` (op names hold no
# blanks; the executor's own events, `ExecutorState::Process`, `EagerLocalExecute:
# ...`, do not match).
OP_EVENT = re.compile(r"^([^\s:]+):(\w+)$")
# Op types whose work is a matrix product (oneDNN's `_Mkl...` and fused variants
# included; a fused matmul carries its fused bias or activation along).
MATMUL_LIKE = re.compile(r"MatMul|Matmul|Einsum|Conv\d|Conv2D|Conv3D|DepthwiseConv")
# The `fit` loop's step function on the Python thread: one event per step.
STEP_EVENT = re.compile(r"^\w*step_on_iterator$")


def is_matmul_like(op_type):
    return bool(MATMUL_LIKE.search(op_type))


def op_times_per_step(xspace):
    """`[{op_type: picoseconds}]`, one dict per step of the profile `xspace`.

    A step is the window of one step-function event on the host plane's
    Python thread; an op event belongs to the step whose window holds its
    start.
    """
    plane = next((p for p in xspace.planes if p.name == "/host:CPU"), None)
    if plane is None:
        raise RuntimeError(f"The profile has no /host:CPU plane. Planes: {[p.name for p in xspace.planes]}")
    names = {key: meta.name for key, meta in plane.event_metadata.items()}
    windows = []
    for line in plane.lines:
        base = line.timestamp_ns * 1000
        for event in line.events:
            if STEP_EVENT.match(names[event.metadata_id]):
                windows.append((base + event.offset_ps, base + event.offset_ps + event.duration_ps))
    if not windows:
        raise RuntimeError("The profile's host plane has no step-function event (a name matching "
                           f"{STEP_EVENT.pattern}); its lines: {[line.name for line in plane.lines]}")
    windows.sort()
    steps = [{} for _ in windows]
    starts = [start for start, _ in windows]
    for line in plane.lines:
        base = line.timestamp_ns * 1000
        for event in line.events:
            match = OP_EVENT.match(names[event.metadata_id])
            if not match:
                continue
            start = base + event.offset_ps
            index = _window_index(starts, start)
            if index is None or start >= windows[index][1]:
                continue
            op_type = match.group(2)
            steps[index][op_type] = steps[index].get(op_type, 0) + event.duration_ps
    return steps


def _window_index(starts, time_ps):
    """Index of the last window starting at or before `time_ps` (None: before all)."""
    index = bisect.bisect_right(starts, time_ps) - 1
    return index if index >= 0 else None


def profile_steps(model, x, y, steps):
    """Per-step op times (`op_times_per_step`) and wall/CPU seconds of `steps`
    profiled training steps of the compiled `model` (already warmed up)."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as folder:
        tf.profiler.experimental.start(folder)
        try:
            model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer.callback])
        finally:
            tf.profiler.experimental.stop()
        files = glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True)
        if len(files) != 1:
            raise RuntimeError(f"Expected one .xplane.pb file under the profile folder; found {files}")
        xspace = xplane_pb2.XSpace()
        with open(files[0], "rb") as f:
            xspace.ParseFromString(f.read())
    per_step = op_times_per_step(xspace)
    if len(per_step) != steps:
        raise RuntimeError(f"The profile holds {len(per_step)} step-function events for {steps} "
                           "profiled steps")
    return per_step, timer.times, timer.cpu


def summarize(per_step, wall, cpu, timing):
    """The report of one run: unprofiled `timing` (from `time_runs`), the
    profiled steps' wall/CPU seconds and their op picoseconds by type."""
    steps = len(per_step)
    types = sorted({t for step in per_step for t in step})
    ms_by_type = {t: sum(step.get(t, 0) for step in per_step) / steps / 1e9 for t in types}
    ms_by_type = dict(sorted(ms_by_type.items(), key=lambda item: -item[1]))
    op_ms = [sum(step.values()) / 1e9 for step in per_step]
    matmul_ms = [sum(v for t, v in step.items() if is_matmul_like(t)) / 1e9 for step in per_step]
    op_mean = statistics.mean(op_ms)
    matmul_mean = statistics.mean(matmul_ms)
    profiled_wall = 1000 * statistics.median(wall)
    profiled_cpu = 1000 * statistics.median(cpu)
    return {
        "steps": steps,
        "median_ms": timing["median_ms"],
        "median_cpu_ms": timing["median_cpu_ms"],
        "ms": timing["ms"],
        "cpu_ms": timing["cpu_ms"],
        "profiled": {
            "median_ms": profiled_wall,
            "median_cpu_ms": profiled_cpu,
            "ms": [1000 * t for t in wall],
            "cpu_ms": [1000 * t for t in cpu],
            "op_ms": op_ms,
            "matmul_like_ms": matmul_ms,
        },
        "op_ms_per_step": op_mean,
        "matmul_like_ms_per_step": matmul_mean,
        "non_matmul_ms_per_step": op_mean - matmul_mean,
        "matmul_like_share": matmul_mean / op_mean,
        "op_time_over_profiled_wall": op_mean / profiled_wall,
        "op_time_over_profiled_cpu": op_mean / profiled_cpu,
        "matmul_like_types": [t for t in ms_by_type if is_matmul_like(t)],
        "op_ms_per_step_by_type": ms_by_type,
    }


def cpu_ceiling(baseline_cpu_ms, cpu_ms, matmul_like_share):
    """The speed-up over `baseline_cpu_ms` of a step of `cpu_ms` whose matmul-like
    share of the op time took no time at all."""
    return baseline_cpu_ms / (cpu_ms * (1 - matmul_like_share))


def ceilings(baseline, other):
    """Amdahl ceilings of `other`'s speed-up over `baseline` (reports of `summarize`)."""
    return {
        "measured_speedup_cpu": baseline["median_cpu_ms"] / other["median_cpu_ms"],
        "measured_speedup_wall": baseline["median_ms"] / other["median_ms"],
        "measured_speedup_op_time": baseline["op_ms_per_step"] / other["op_ms_per_step"],
        "ceiling_op_time": baseline["op_ms_per_step"] / other["non_matmul_ms_per_step"],
        "ceiling_cpu": cpu_ceiling(baseline["median_cpu_ms"], other["median_cpu_ms"],
                                   other["matmul_like_share"]),
        "matmul_like_speedup_op_time": baseline["matmul_like_ms_per_step"]
        / other["matmul_like_ms_per_step"],
        "non_matmul_speedup_op_time": baseline["non_matmul_ms_per_step"] / other["non_matmul_ms_per_step"],
    }


def step_medians(run):
    """Medians over the profiled steps of `run` (a `summarize` report): op ms,
    matmul-like ms, non-matmul ms and matmul-like share, each step on its own.
    On a loaded machine a single step's op time can swing by a factor of 2, and
    a median is less moved by such a step than the means of the report."""
    op, matmul = run["profiled"]["op_ms"], run["profiled"]["matmul_like_ms"]
    return {"op_ms": statistics.median(op), "matmul_like_ms": statistics.median(matmul),
            "non_matmul_ms": statistics.median(o - m for o, m in zip(op, matmul)),
            "matmul_like_share": statistics.median(m / o for o, m in zip(op, matmul))}


def render_markdown(report, top=25):
    """Markdown tables of a saved report: per run, the ceilings, then the op types."""
    lines = ["| run | median ms | median CPU ms | profiled median ms | profiled median CPU ms | "
             "op ms per step | op / profiled CPU | matmul-like ms | non-matmul ms | matmul-like share |",
             "| --- " * 10 + "|"]
    for name, run in report["runs"].items():
        lines.append(
            f"| {name} | {run['median_ms']:.0f} | {run['median_cpu_ms']:.0f} | "
            f"{run['profiled']['median_ms']:.0f} | {run['profiled']['median_cpu_ms']:.0f} | "
            f"{run['op_ms_per_step']:.1f} | {run['op_time_over_profiled_cpu']:.2f} | "
            f"{run['matmul_like_ms_per_step']:.1f} | {run['non_matmul_ms_per_step']:.1f} | "
            f"{run['matmul_like_share']:.3f} |")
    lines += ["", "| mode | policy | measured speed-up, CPU | wall | op time | ceiling, op time | "
              "ceiling, CPU | matmul-like speed-up | non-matmul speed-up |",
              "| --- " * 9 + "|"]
    for mode, by_policy in report["ceilings"].items():
        for policy, c in by_policy.items():
            lines.append(
                f"| {mode} | {policy} | {c['measured_speedup_cpu']:.2f} | {c['measured_speedup_wall']:.2f} | "
                f"{c['measured_speedup_op_time']:.2f} | {c['ceiling_op_time']:.2f} | {c['ceiling_cpu']:.2f} | "
                f"{c['matmul_like_speedup_op_time']:.2f} | {c['non_matmul_speedup_op_time']:.2f} |")
    lines.append(f"\nSpeed-ups and ceilings against {report['policies'][0]}; ceiling: "
                 "baseline step / (step - matmul-like time). Op time: means over the profiled steps.")
    lines += ["", "| run | op ms per profiled step | median op ms | median matmul-like ms | "
              "median non-matmul ms | median matmul-like share | ceiling, op time | ceiling, CPU |",
              "| --- " * 8 + "|"]
    for name, run in report["runs"].items():
        medians = step_medians(run)
        baseline = report["runs"][f"{run['mode']} [{report['policies'][0]}]"]
        ceiling_op = step_medians(baseline)["op_ms"] / medians["non_matmul_ms"]
        ceiling_cpu = cpu_ceiling(baseline["median_cpu_ms"], run["median_cpu_ms"],
                                  medians["matmul_like_share"])
        ceiling = "- | - |" if run is baseline else f"{ceiling_op:.2f} | {ceiling_cpu:.2f} |"
        lines.append(f"| {name} | " + ", ".join(f"{ms:.0f}" for ms in run["profiled"]["op_ms"])
                     + f" | {medians['op_ms']:.0f} | {medians['matmul_like_ms']:.0f} | "
                     f"{medians['non_matmul_ms']:.0f} | {medians['matmul_like_share']:.3f} | {ceiling}")
    lines.append("\nThe same from the medians over the profiled steps (each step's own op time, "
                 "matmul-like time and share).")
    names = list(report["runs"])
    for mode in report["modes"]:
        runs = {n: report["runs"][n] for n in names if report["runs"][n]["mode"] == mode}
        totals = {}
        for run in runs.values():
            for t, ms in run["op_ms_per_step_by_type"].items():
                totals[t] = max(totals.get(t, 0), ms)
        ranked = sorted(totals, key=lambda t: -totals[t])
        lines += ["", f"Op ms per step by type, {mode} (top {min(top, len(ranked))} of {len(ranked)}; "
                  "every type in the JSON):", "",
                  "| op type | matmul-like | " + " | ".join(f"{r['policy']} ms" for r in runs.values()) + " |",
                  "| --- " * (2 + len(runs)) + "|"]
        for t in ranked[:top]:
            lines.append(f"| {t} | {'yes' if is_matmul_like(t) else 'no'} | "
                         + " | ".join(f"{r['op_ms_per_step_by_type'].get(t, 0):.1f}" for r in runs.values())
                         + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", choices=("enct5", "minilm", "tiny"), default="minilm")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6, help="timed and profiled steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per run (tracing)")
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=["kd"])
    parser.add_argument("--policies", nargs="+", default=["float32", "mixed_bfloat16"],
                        help=f"policies, of {', '.join(POLICIES)}; the first is the baseline")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--projection-search-dtype", choices=("auto", "float32", "bfloat16"),
                        default="auto", help="auto: bfloat16 under mixed_bfloat16, else float32")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="vocabulary rows per projection chunk (default: the whole table)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=25, help="op types per table of --markdown")
    parser.add_argument("--markdown", metavar="REPORT",
                        help="print the tables of a saved JSON report as Markdown, and exit")
    args = parser.parse_args()
    if args.markdown:
        with open(args.markdown, encoding="utf-8") as f:
            print(render_markdown(json.load(f), args.top))
        return
    for policy in args.policies:
        try:
            _, xla = parse_variant(policy)
        except argparse.ArgumentTypeError as error:
            parser.error(str(error))
        if xla:
            parser.error(f"--policies takes policies without +xla (XLA clusters carry no TensorFlow "
                         f"op types). Received: {policy!r}")
    if len(set(args.policies)) != len(args.policies):
        parser.error(f"--policies repeats a policy. Received: {args.policies}")
    if args.steps < 1 or args.warmup < 1:
        parser.error(f"--steps and --warmup must be at least 1. Received: {args.steps}, {args.warmup}")
    args.peer = False  # build_runs reads it: the teacher runs with dropout, as in step_time.py

    runs, pairs = build_runs(args, args.policies, args.modes)
    x, y = batch(pairs[args.policies[0]][0], args.batch, args.length, args.seed)
    names = {run: f"{run[1]} [{run[0]}]" for run in runs}
    timings = time_runs({names[run]: model for run, model in runs.items()}, x, y, args.warmup, args.steps)
    report_runs = {}
    for run, model in runs.items():
        per_step, wall, cpu = profile_steps(model, x, y, args.steps)
        report_runs[names[run]] = {"policy": run[0], "mode": run[1],
                                   **summarize(per_step, wall, cpu, timings[names[run]])}
    baseline = args.policies[0]
    report = {
        "benchmark": "step_profile",
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": machine_info.describe(),
        "pair": args.pair,
        "batch": args.batch,
        "length": args.length,
        "policies": args.policies,
        "modes": args.modes,
        "matmul_like_pattern": MATMUL_LIKE.pattern,
        "runs": report_runs,
        "ceilings": {
            mode: {policy: ceilings(report_runs[f"{mode} [{baseline}]"], report_runs[f"{mode} [{policy}]"])
                   for policy in args.policies[1:]}
            for mode in args.modes
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
