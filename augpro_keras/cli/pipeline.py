"""The commands: `finetune`, `distill`, `evaluate`, `augment` and `run`.

Each takes a validated config (see `augpro_keras.cli.config`) and writes
into `config["output_dir"]`:

| command    | writes                                                          |
|------------|-----------------------------------------------------------------|
| `finetune` | `teacher.keras`, `tokenizer.json`, `teacher_results.json`       |
| `distill`  | `student.keras`, `student_saved_model/`, `results.json`,        |
|            | `config.json`, `samples.tsv`                                    |
| `run`      | everything `finetune` and `distill` write                        |
| `augment`  | `augmented.tsv` (or the given file)                             |
| all        | TensorBoard logs under `logs/<time>/<model>/`                   |

Files appear only when a command succeeds (`export.StagedOutputs`).

Example:
```python
from augpro_keras.cli import config as config_lib, pipeline
config = config_lib.load_config(None, overrides=["distill.epochs=1"])
summary = pipeline.run(config)
summary["best_student"]  # e.g. "KD+AugPro-Mix"
```
"""

import os
import time

import keras
import numpy as np

from augpro_keras.cli import export
from augpro_keras.cli import inputs
from augpro_keras.cli import samples as samples_lib
from augpro_keras.cli import training
from augpro_keras.cli.modeling import StudentFactory
from augpro_keras.cli.modeling import build_teacher
from augpro_keras.cli.modeling import check_vocabulary
from augpro_keras.cli.results import ResultsTable
from augpro_keras.cli.session import command_session

TEACHER_FILE = "teacher.keras"
TOKENIZER_FILE = "tokenizer.json"
STUDENT_FILE = "student.keras"
SAVED_MODEL_DIR = "student_saved_model"


def _table(session):
    return ResultsTable(session.data.name, session.data.metrics, "validation",
                        session.data.validation.num_examples)


def _load_model(session, path, role):
    import augpro_keras  # noqa: F401  Registers the package's classes for loading.

    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{role.capitalize()} model not found: {path}. Run `augpro-keras finetune` (or "
            "`run`) first, or pass its folder with --teacher."
        )
    with session.strategy.scope():
        model = keras.models.load_model(path)
    check_vocabulary(model, session.tokenizer, role)
    if getattr(model, "num_classes", session.data.num_classes) != session.data.num_classes:
        raise ValueError(
            f"{path} has {model.num_classes} outputs but {session.data.name} needs "
            f"{session.data.num_classes}; it was trained for another task."
        )
    return model


def _teacher_paths(teacher_dir):
    return os.path.join(teacher_dir, TEACHER_FILE), os.path.join(teacher_dir, TOKENIZER_FILE)


# --- phases --------------------------------------------------------------------------
def _finetune_phase(session, table, out):
    """Fine-tunes (or loads) the teacher; stages it with the tokenizer."""
    config = session.config
    checkpoint = config["teacher"]["checkpoint"]
    if checkpoint:
        teacher = _load_model(session, checkpoint, "teacher")
        metrics = training.evaluate(session, teacher)
        session.out(f"Teacher loaded from {checkpoint}: {metrics}")
        table.add("Teacher", metrics, role="teacher", checkpoint=checkpoint)
        return teacher
    with session.strategy.scope():
        teacher = build_teacher(config, session.tokenizer, session.data)
    teacher, metrics, details = training.finetune(session, teacher, "Teacher", session.data.train)
    table.add("Teacher", metrics, role="teacher", **details)
    export.save_keras(teacher, out.path(TEACHER_FILE))
    inputs.save_tokenizer(session.tokenizer, out.path(TOKENIZER_FILE))
    return teacher


def _distill_phase(session, teacher, table, out, start):
    """Trains the FT student and every distillation run; stages the best student."""
    config = session.config
    factory = StudentFactory(config, teacher, session.tokenizer, session.data, session.strategy)
    best_model, best_score = None, None

    def keep(model, row):
        nonlocal best_model, best_score
        score = row.metrics[session.monitor]
        if best_score is None or (not np.isnan(score) and (np.isnan(best_score) or score > best_score)):
            best_model, best_score = model, score

    if config["student"]["finetune"]:
        student, metrics, details = training.finetune(
            session, factory.new(), "FT student", session.data.train, section="distill"
        )
        keep(student, table.add("FT student", metrics, **details))
    for run in config["distill"]["runs"]:
        student, metrics, details = training.distill(session, teacher, factory.new(), run)
        keep(student, table.add(run["name"], metrics, **details))
    best = table.best_student()
    export.save_keras(best_model, out.path(STUDENT_FILE))
    export.export_saved_model(best_model, out.path(SAVED_MODEL_DIR),
                              config["data"]["sequence_length"])
    rows = _sample_rows(session, teacher, best_model, config["augment"]["augmentations"],
                        config["augment"]["num_examples"], config["augment"]["split"])
    export.write_text(samples_lib.samples_tsv(rows), out.path("samples.tsv"))
    results = table.to_dict()
    results.update(
        strategy=session.info.description,
        num_replicas=session.info.num_replicas,
        wall_seconds=round(time.time() - start, 1),
        outputs={"student": STUDENT_FILE, "saved_model": SAVED_MODEL_DIR},
    )
    export.write_json(results, out.path("results.json"))
    export.write_json(config, out.path("config.json"))
    return best, rows


def _sample_rows(session, teacher, student, entries, count, split):
    x, y = training.sample_batch(session, split, count)
    with session.strategy.scope():
        distiller = training.make_distiller(session, teacher, student, entries,
                                            teacher_dropout=False)
    return samples_lib.augmented_samples(
        distiller, session.tokenizer, x, y, session.data.label_names, session.data.is_regression
    )


def _report(session, table, rows, output_dir, best):
    session.out("\n" + table.format())
    if rows:
        session.out("\nSample augmented sentences (validation):\n" + samples_lib.format_samples(rows))
    if best is not None:
        session.out(f"\nBest student: {best.name} -> {os.path.join(output_dir, STUDENT_FILE)} "
                    f"(SavedModel: {os.path.join(output_dir, SAVED_MODEL_DIR)})")
    if session.log_root:
        session.out(f"TensorBoard: tensorboard --logdir {os.path.dirname(session.log_root)}")


# --- commands ------------------------------------------------------------------------
def run(config, out=print, strategy_info=None):
    """Fine-tunes the teacher, distils every run, evaluates, saves the best student.

    Args:
        config: a validated config.
        out: print function.
        strategy_info: an already resolved `StrategyInfo` (e.g. a notebook's
            TPU connection); `None` resolves `runtime.strategy`.

    Returns:
        The results dict (as written to `results.json`).
    """
    start = time.time()
    with command_session(config, out, strategy_info=strategy_info) as session:
        table = _table(session)
        with export.StagedOutputs(config["output_dir"]) as staged:
            teacher = _finetune_phase(session, table, staged)
            best, rows = _distill_phase(session, teacher, table, staged, start)
        _report(session, table, rows, config["output_dir"], best)
        out(f"Done in {time.time() - start:.0f} s.")
        return _results(config)


def finetune(config, out=print, strategy_info=None):
    """Fine-tunes the teacher only; writes `teacher.keras` and `tokenizer.json`."""
    start = time.time()
    with command_session(config, out, strategy_info=strategy_info) as session:
        table = _table(session)
        with export.StagedOutputs(config["output_dir"]) as staged:
            _finetune_phase(session, table, staged)
            results = table.to_dict()
            results.update(config=config, strategy=session.info.description,
                           wall_seconds=round(time.time() - start, 1))
            export.write_json(results, staged.path("teacher_results.json"))
        out("\n" + table.format(mark_best=False))
        out(f"Teacher saved to {os.path.join(config['output_dir'], TEACHER_FILE)}")
        return results


def distill(config, teacher_dir=None, out=print, strategy_info=None):
    """Distils a saved teacher (`teacher_dir`, default the output folder)."""
    start = time.time()
    teacher_path, tokenizer_path = _teacher_paths(teacher_dir or config["output_dir"])
    tokenizer = inputs.load_tokenizer(tokenizer_path)
    with command_session(config, out, tokenizer=tokenizer,
                         strategy_info=strategy_info) as session:
        table = _table(session)
        teacher = _load_model(session, teacher_path, "teacher")
        table.add("Teacher", training.evaluate(session, teacher), role="teacher",
                  checkpoint=teacher_path)
        with export.StagedOutputs(config["output_dir"]) as staged:
            if os.path.abspath(os.path.dirname(teacher_path)) != os.path.abspath(config["output_dir"]):
                inputs.save_tokenizer(tokenizer, staged.path(TOKENIZER_FILE))
            best, rows = _distill_phase(session, teacher, table, staged, start)
        _report(session, table, rows, config["output_dir"], best)
        return _results(config)


def evaluate(config, model_path, tokenizer_path=None, output=None, out=print):
    """Evaluates a saved model on the config's validation set and prints the table."""
    tokenizer_path = tokenizer_path or os.path.join(os.path.dirname(model_path) or ".",
                                                    TOKENIZER_FILE)
    tokenizer = inputs.load_tokenizer(tokenizer_path)
    with command_session(dict(config, tensorboard=dict(config["tensorboard"], enabled=False)),
                         out, tokenizer=tokenizer) as session:
        model = _load_model(session, model_path, "model")
        table = _table(session)
        table.add(os.path.basename(model_path), training.evaluate(session, model))
        out("\n" + table.format(mark_best=False))
        results = table.to_dict()
        results["model"] = model_path
        if output:
            export.write_json(results, output)
            out(f"Results written to {output}")
        return results


def augment(config, teacher_dir=None, student_path=None, output=None, out=print):
    """Writes and prints augmented sentences with the teacher's label of each.

    AugPro-Mix projects onto the teacher's vocabulary table. AugPro-FGSM
    perturbs the student's embeddings along the gradient of its loss: with
    no student (`student_path` and no `student.keras` beside the teacher)
    a copy of the teacher plays the student.
    """
    teacher_dir = teacher_dir or config["output_dir"]
    teacher_path, tokenizer_path = _teacher_paths(teacher_dir)
    tokenizer = inputs.load_tokenizer(tokenizer_path)
    if student_path is None and os.path.isfile(os.path.join(teacher_dir, STUDENT_FILE)):
        student_path = os.path.join(teacher_dir, STUDENT_FILE)
    spec = config["augment"]
    with command_session(dict(config, tensorboard=dict(config["tensorboard"], enabled=False)),
                         out, tokenizer=tokenizer) as session:
        teacher = _load_model(session, teacher_path, "teacher")
        student = _load_model(session, student_path or teacher_path, "student")
        out(f"Student for AugPro-FGSM: {student_path or 'a copy of the teacher'}")
        rows = _sample_rows(session, teacher, student, spec["augmentations"],
                            spec["num_examples"], spec["split"])
        output = output or os.path.join(config["output_dir"], "augmented.tsv")
        export.write_text(samples_lib.samples_tsv(rows), output)
        out("\n" + samples_lib.format_samples(rows))
        out(f"\nWrote {len(rows)} rows to {output}")
        return rows


def _results(config):
    import json

    with open(os.path.join(config["output_dir"], "results.json"), encoding="utf-8") as f:
        return json.load(f)


__all__ = ["run", "finetune", "distill", "evaluate", "augment"]
