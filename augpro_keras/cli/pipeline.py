"""The commands: `finetune`, `distill`, `evaluate`, `augment` and `run`.

Each takes a validated config (see `augpro_keras.cli.config`) and writes
into `config["output_dir"]`:

| command    | writes                                                          |
|------------|-----------------------------------------------------------------|
| `finetune` | `teacher/` (a keras-hub preset folder), `teacher_results.json`  |
| `distill`  | `student/` (a keras-hub preset folder), `student_saved_model/`  |
|            | (raw strings in), `results.json`, `config.json`, `samples.tsv`  |
| `run`      | everything `finetune` and `distill` write                        |
| `augment`  | `augmented.tsv` (or the given file)                             |
| all        | TensorBoard logs under `logs/<time>/<model>/`                   |

Files appear only when a command succeeds (`export.StagedOutputs`). Every
check that needs no training comes first (`_preflight`): a folder that holds
a finished run is refused unless `overwrite`, and bad files raise
`inputs.InputError`. While training, `<output_dir>/.augpro-work/`
(`session.WorkFolder`) keeps backups and finished models, so the same
command run again after a crash resumes; a finished command removes it.
`student.keras` is the best *distilled* student; the FT student is a
reference row.

Example:
```python
from augpro_keras.cli import config as config_lib, pipeline
config = config_lib.load_config(None, overrides=["distill.epochs=1"])
summary = pipeline.run(config)
summary["best_student"]  # e.g. "KD+AugPro-Mix"
```
"""

import contextlib
import json
import math
import os
import shutil
import time
import zipfile

import keras
import numpy as np

from augpro_keras.cli import export
from augpro_keras.cli import inputs
from augpro_keras.cli import samples as samples_lib
from augpro_keras.cli import training
from augpro_keras.cli.inputs import InputError
from augpro_keras.cli.modeling import StudentFactory
from augpro_keras.cli.modeling import build_teacher
from augpro_keras.cli.modeling import check_vocabulary
from augpro_keras.cli.modeling import preprocessor_of
from augpro_keras.cli.results import ResultsTable
from augpro_keras.cli.session import WorkFolder
from augpro_keras.cli.session import command_session
from augpro_keras.cli.training import TrainingError
from augpro_keras.models.serving import export_text_classifier

TEACHER_FILE = "teacher.keras"
TOKENIZER_FILE = "tokenizer.json"
STUDENT_FILE = "student.keras"
# keras-hub models are written as keras-hub preset folders (task,
# preprocessor and tokenizer), which `keras_hub.models.TextClassifier.from_preset`
# loads without this package.
TEACHER_PRESET = "teacher"
STUDENT_PRESET = "student"
SAVED_MODEL_DIR = "student_saved_model"
# The files of a finished command: another command into the folder refuses
# to replace them without `overwrite`.
FINISHED_FILES = {
    "run": (TEACHER_FILE, STUDENT_FILE, TEACHER_PRESET, STUDENT_PRESET, "results.json"),
    "finetune": (TEACHER_FILE, TEACHER_PRESET, "teacher_results.json"),
    "distill": (STUDENT_FILE, STUDENT_PRESET, "results.json"),
}


def is_keras_hub(model):
    """Whether `model` is a keras-hub task (saved as a preset folder)."""
    import keras_hub

    return isinstance(model, keras_hub.models.TextClassifier)


def is_preset_dir(path):
    """Whether `path` is a keras-hub preset folder of a task."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, "task.json"))


def _table(session):
    return ResultsTable(session.data.name, session.data.metrics, "validation",
                        session.data.validation.num_examples)


def check_model_file(path, role):
    """Refuses a path that is no `.keras` model file or keras-hub preset folder."""
    if is_preset_dir(path):
        return
    if os.path.isdir(path):
        raise InputError(f"{path} is a folder but no keras-hub preset of a task (it has no "
                         f"task.json); the {role} must be a keras-hub preset folder (e.g. "
                         "teacher/ or student/) or a .keras file written by augpro-keras.")
    if not os.path.isfile(path):
        hint = (" Run `augpro-keras finetune` (or `run`) first, or pass its folder with "
                "--teacher." if role == "teacher" else "")
        raise FileNotFoundError(f"{role.capitalize()} file not found: {path}.{hint}")
    with contextlib.suppress(OSError, zipfile.BadZipFile):
        with zipfile.ZipFile(path) as archive:
            if "config.json" in archive.namelist():
                return
    raise InputError(
        f"{path} is not a Keras model file: a .keras file is a zip archive with a "
        "config.json, written by model.save() (e.g. teacher.keras or student.keras)."
    )


def _load_model(session, path, role):
    import augpro_keras  # noqa: F401  Registers the package's classes for loading.

    check_model_file(path, role)
    try:
        with session.strategy.scope():
            if is_preset_dir(path):
                import keras_hub

                model = keras_hub.models.TextClassifier.from_preset(
                    path, preprocessor=preprocessor_of(session.tokenizer))
            else:
                model = keras.models.load_model(path, compile=False)
    except (ValueError, TypeError, KeyError, OSError) as error:
        raise InputError(f"{path}: cannot be loaded as the {role} ({type(error).__name__}: "
                         f"{error}).") from None
    check_vocabulary(model, session.tokenizer, role)
    if getattr(model, "num_classes", session.data.num_classes) != session.data.num_classes:
        raise InputError(
            f"{path} has {model.num_classes} outputs but {session.data.name} needs "
            f"{session.data.num_classes}; it was trained for another task."
        )
    return model


def _teacher_paths(teacher_dir):
    """`(model, tokenizer)` paths of the teacher in a folder; `tokenizer` is `None` for presets."""
    if is_preset_dir(teacher_dir):
        return teacher_dir, None
    if is_preset_dir(os.path.join(teacher_dir, TEACHER_PRESET)):
        return os.path.join(teacher_dir, TEACHER_PRESET), None
    return os.path.join(teacher_dir, TEACHER_FILE), os.path.join(teacher_dir, TOKENIZER_FILE)


def _model_tokenizer(model_path, tokenizer_path, sequence_length):
    """The tokenizer of a saved model: its preset's preprocessor, or `tokenizer.json`."""
    if is_preset_dir(model_path):
        return inputs.preset_tokenizer(model_path, sequence_length)
    return inputs.load_tokenizer(tokenizer_path)


def _student_path(folder):
    """The saved student in a folder (preset folder or `.keras` file), or `None`."""
    for path in (os.path.join(folder, STUDENT_PRESET), os.path.join(folder, STUDENT_FILE)):
        if os.path.exists(path) and (is_preset_dir(path) or os.path.isfile(path)):
            return path
    return None


def _save_teacher(session, teacher, staged):
    """Stages the teacher: a preset folder (keras-hub) or `.keras` + `tokenizer.json`."""
    if is_keras_hub(teacher):
        teacher.save_to_preset(staged.path(TEACHER_PRESET))
        return TEACHER_PRESET
    export.save_keras(teacher, staged.path(TEACHER_FILE))
    inputs.save_tokenizer(session.tokenizer, staged.path(TOKENIZER_FILE))
    return TEACHER_FILE


# --- checks before any work ----------------------------------------------------------
def check_output_dir(output_dir, command, overwrite):
    """Refuses an output folder that is a file, or that holds a finished run.

    Raises:
        InputError: naming the folder and, for a finished run, `--overwrite`.
    """
    parent = os.path.abspath(output_dir)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise InputError(
            f"output_dir: {output_dir} cannot be a folder: {parent} is a file. Choose "
            "another --output-dir."
        )
    if not os.access(parent, os.W_OK):
        raise InputError(f"output_dir: {parent} is not writable. Choose another --output-dir.")
    found = [name for name in FINISHED_FILES.get(command, ())
             if os.path.exists(os.path.join(output_dir, name))]
    if found and not overwrite:
        raise InputError(
            f"output_dir: {output_dir} holds a finished run ({', '.join(found)}), which "
            f"`augpro-keras {command}` would replace. Pass --overwrite to replace it (the "
            "results of runs that are not run again are kept in results.json), or choose "
            "another --output-dir."
        )


def _check_teacher_dir(teacher_dir, sequence_length):
    teacher_path, tokenizer_path = _teacher_paths(teacher_dir)
    tokenizer = _model_tokenizer(teacher_path, tokenizer_path, sequence_length)
    check_model_file(teacher_path, "teacher")
    return tokenizer


def _preflight(config, command, overwrite):
    """Every check that needs no training: output folder, then the data files.

    Returns the `TaskData` (read before any TensorFlow work), or `None` for
    a TFDS download, which the session loads after the strategy exists.
    """
    check_output_dir(config["output_dir"], command, overwrite)
    if config["teacher"]["checkpoint"]:
        check_model_file(config["teacher"]["checkpoint"], "teacher")
    data = config["data"]
    if data["source"] == "glue" and data["glue_dir"] is None:
        return None
    return inputs.load_task_data(config)


def _open_work(config, command, out, **extra):
    """The command's `WorkFolder`; says when it resumes an interrupted command."""
    os.makedirs(config["output_dir"], exist_ok=True)
    for name in os.listdir(config["output_dir"]):
        if name.startswith(".staging-"):  # Left by a killed command.
            shutil.rmtree(os.path.join(config["output_dir"], name), ignore_errors=True)
    work = WorkFolder(config["output_dir"])
    if work.open(command, config, **extra) is not None:
        out(f"Resuming the interrupted `augpro-keras {command}` in {config['output_dir']}: "
            "models it finished are loaded, the one it was training continues from its "
            "last backup.")
    return work


def _work_tokenizer(work):
    # keras-hub runs keep none: their preprocessor is read from the preset again.
    path = work.path(TOKENIZER_FILE)
    return inputs.load_tokenizer(path) if os.path.isfile(path) else None


# --- phases --------------------------------------------------------------------------
def _check_finite(model, name):
    for weight in model.weights:
        if weight.trainable and not np.all(np.isfinite(weight.numpy())):
            raise TrainingError(f"{name}: its weight {weight.path} holds NaN or Inf values; "
                                "it is not saved.")


def _trained(session, name, train):
    """A model trained now, or before an interruption: `(model, row)`.

    `train()` returns `(model, metrics, details, role)`; the result is kept
    in the work folder, so a resumed command loads it instead of training.
    """
    finished = session.work.finished(name)
    if finished is not None:
        path, row = finished
        session.out(f"\n== {name} ==\n{name}: trained before the interruption; loaded "
                    f"({training.metrics_text(row['metrics'])}).")
        return _load_model(session, path, row["role"]), row
    model, metrics, details, role = train()
    _check_finite(model, name)
    row = {"name": name, "metrics": dict(metrics), "role": role, "details": details}
    session.work.finish(name, model, row)
    return model, row


def _finetune_phase(session, table):
    """Fine-tunes (or loads) the teacher; returns it."""
    config = session.config
    checkpoint = config["teacher"]["checkpoint"]
    if checkpoint:
        teacher = _load_model(session, checkpoint, "teacher")
        metrics = training.evaluate(session, teacher)
        session.out(f"Teacher loaded from {checkpoint}: {metrics}")
        table.add("Teacher", metrics, role="teacher", checkpoint=checkpoint)
        return teacher

    def train():
        with session.strategy.scope():
            teacher = build_teacher(config, session.tokenizer, session.data)
        teacher, metrics, details = training.finetune(session, teacher, "Teacher",
                                                      session.data.train)
        file = TEACHER_PRESET if is_keras_hub(teacher) else TEACHER_FILE
        return teacher, metrics, dict(details, file=file), "teacher"

    teacher, row = _trained(session, "Teacher", train)
    table.add(row["name"], row["metrics"], role=row["role"], **row["details"])
    return teacher


def _student_factory(session, teacher):
    """Students that all start from the same weights, also across a resume."""
    factory = StudentFactory(session.config, teacher, session.tokenizer, session.data,
                             session.strategy)
    saved = session.work.load_arrays("student_init.npz")
    if saved is None:
        session.work.save_arrays("student_init.npz", factory.initial_weights)
    else:
        factory.initial_weights = saved
    return factory


def _distill_phase(session, teacher, table):
    """Trains the FT student (a reference) and every distillation run.

    Returns `(best_row, best_model)`: the best *distilled* student.
    """
    config = session.config
    factory = _student_factory(session, teacher)
    best_model, best_score = None, None
    if config["student"]["finetune"]:
        def train_reference():
            student, metrics, details = training.finetune(
                session, factory.new(), "FT student", session.data.train, section="distill")
            return student, metrics, details, "reference"

        _, row = _trained(session, "FT student", train_reference)
        table.add(row["name"], row["metrics"], role="reference", **row["details"])
    for run in config["distill"]["runs"]:
        def train_run(run=run):
            student, metrics, details = training.distill(session, teacher, factory.new(), run)
            return student, metrics, details, "student"

        student, row = _trained(session, run["name"], train_run)
        table.add(row["name"], row["metrics"], role="student", **row["details"])
        score = row["metrics"][session.monitor]
        if math.isfinite(score) and (best_score is None or score > best_score):
            best_model, best_score = student, score
    return best_model


def _previous_results(output_dir, table):
    """Rows of the `results.json` being replaced that this command does not run again."""
    path = os.path.join(output_dir, "results.json")
    try:
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
    except (OSError, ValueError):
        return []
    names = {row.name for row in table.rows}
    kept = []
    for row in previous.get("rows", []):
        if row.get("role") == "teacher" or row.get("name") in names:
            continue
        details = dict(row.get("details") or {}, kept=True)
        if row.get("name") != previous.get("best_student"):
            details.pop("file", None)  # Only the best student's model is saved.
            details.pop("saved_model", None)
        kept.append(table.add(row["name"], row.get("metrics", {}),
                              role=row.get("role", "student"), **details))
    return kept


def _stage_results(session, teacher, table, best_model, staged, start):
    """Stages the best distilled student, samples, `results.json` and `config.json`."""
    config = session.config
    _previous_results(config["output_dir"], table)
    best = table.best_student()
    student_file = None
    if best is not None and not best.details.get("kept"):
        for row in table.rows:
            if row.details.get("file") in (STUDENT_FILE, STUDENT_PRESET):
                row.details.pop("file")
                row.details.pop("saved_model", None)
        student_file = _save_student(best_model, staged, config["data"]["sequence_length"])
        best.details.update(file=student_file, saved_model=SAVED_MODEL_DIR)
    elif best is not None:  # An earlier run's student stays the best, in its files.
        student_file = best.details.get("file", STUDENT_FILE)
        best_model = _load_model(session, os.path.join(config["output_dir"], student_file),
                                 "student")
    rows = _sample_rows(session, teacher, best_model, config["augment"]["augmentations"],
                        config["augment"]["num_examples"], config["augment"]["split"])
    export.write_text(samples_lib.samples_tsv(rows), staged.path("samples.tsv"))
    results = table.to_dict()
    results.update(
        strategy=session.info.description,
        num_replicas=session.info.num_replicas,
        wall_seconds=round(time.time() - start, 1),
        outputs={"student": student_file, "saved_model": SAVED_MODEL_DIR,
                 "best_student": None if best is None else best.name},
    )
    export.write_json(results, staged.path("results.json"))
    export.write_json(config, staged.path("config.json"))
    return best, rows


def _save_student(student, staged, sequence_length):
    """Stages the best student and its SavedModel; returns the student's file name.

    keras-hub students: a preset folder and a SavedModel that takes raw
    strings. Others: a `.keras` file and a SavedModel of token ids.
    """
    if is_keras_hub(student):
        student.save_to_preset(staged.path(STUDENT_PRESET))
        export_text_classifier(student, staged.path(SAVED_MODEL_DIR))
        return STUDENT_PRESET
    export.save_keras(student, staged.path(STUDENT_FILE))
    export.export_saved_model(student, staged.path(SAVED_MODEL_DIR), sequence_length)
    return STUDENT_FILE


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
        session.out(f"\nBest distilled student: {best.name} -> "
                    f"{os.path.join(output_dir, best.details.get('file', STUDENT_FILE))} "
                    f"(SavedModel: {os.path.join(output_dir, SAVED_MODEL_DIR)})")
    if session.log_root:
        session.out(f"TensorBoard: tensorboard --logdir {os.path.dirname(session.log_root)}")


# --- commands ------------------------------------------------------------------------
def _keep_tokenizer(session):
    path = session.work.path(TOKENIZER_FILE)
    if not os.path.isfile(path) and preprocessor_of(session.tokenizer) is None:
        inputs.save_tokenizer(session.tokenizer, path)


def run(config, out=print, strategy_info=None, overwrite=False):
    """Fine-tunes the teacher, distils every run, evaluates, saves the best student.

    Run again after a crash or kill, it resumes: models finished before are
    loaded, the one in training continues from its last backup.

    Args:
        config: a validated config.
        out: print function.
        strategy_info: an already resolved `StrategyInfo` (e.g. a notebook's
            TPU connection); `None` resolves `runtime.strategy`.
        overwrite: replace the results of a finished run in the output
            folder (rows of runs that are not run again are kept); without
            it such a folder is refused (`InputError`).

    Returns:
        The results dict (as written to `results.json`).
    """
    start = time.time()
    data = _preflight(config, "run", overwrite)
    work = _open_work(config, "run", out)
    with command_session(config, out, tokenizer=_work_tokenizer(work), data=data,
                         strategy_info=strategy_info, work=work) as session:
        _keep_tokenizer(session)
        table = _table(session)
        teacher = _finetune_phase(session, table)
        best_model = _distill_phase(session, teacher, table)
        with export.StagedOutputs(config["output_dir"]) as staged:
            if not config["teacher"]["checkpoint"]:
                _save_teacher(session, teacher, staged)
            best, rows = _stage_results(session, teacher, table, best_model, staged, start)
        work.remove()
        _report(session, table, rows, config["output_dir"], best)
        out(f"Done in {time.time() - start:.0f} s.")
        return _results(config)


def finetune(config, out=print, strategy_info=None, overwrite=False):
    """Fine-tunes the teacher only; writes `teacher.keras` and `tokenizer.json`."""
    start = time.time()
    data = _preflight(config, "finetune", overwrite)
    work = _open_work(config, "finetune", out)
    with command_session(config, out, tokenizer=_work_tokenizer(work), data=data,
                         strategy_info=strategy_info, work=work) as session:
        _keep_tokenizer(session)
        table = _table(session)
        teacher = _finetune_phase(session, table)
        with export.StagedOutputs(config["output_dir"]) as staged:
            teacher_file = None
            if not config["teacher"]["checkpoint"]:
                teacher_file = _save_teacher(session, teacher, staged)
            results = table.to_dict()
            results.update(config=config, strategy=session.info.description,
                           wall_seconds=round(time.time() - start, 1))
            export.write_json(results, staged.path("teacher_results.json"))
        work.remove()
        out("\n" + table.format(mark_best=False))
        if teacher_file:
            out(f"Teacher saved to {os.path.join(config['output_dir'], teacher_file)}")
        return results


def distill(config, teacher_dir=None, out=print, strategy_info=None, overwrite=False):
    """Distils a saved teacher (`teacher_dir`, default the output folder)."""
    start = time.time()
    teacher_dir = teacher_dir or config["output_dir"]
    teacher_path, _ = _teacher_paths(teacher_dir)
    data = _preflight(config, "distill", overwrite)
    tokenizer = _check_teacher_dir(teacher_dir, config["data"]["sequence_length"])
    work = _open_work(config, "distill", out, teacher=os.path.abspath(teacher_path))
    with command_session(config, out, tokenizer=tokenizer, data=data,
                         strategy_info=strategy_info, work=work) as session:
        table = _table(session)
        teacher = _load_model(session, teacher_path, "teacher")
        table.add("Teacher", training.evaluate(session, teacher), role="teacher",
                  checkpoint=teacher_path)
        best_model = _distill_phase(session, teacher, table)
        with export.StagedOutputs(config["output_dir"]) as staged:
            if (os.path.abspath(teacher_dir) != os.path.abspath(config["output_dir"])
                    and preprocessor_of(tokenizer) is None):
                inputs.save_tokenizer(tokenizer, staged.path(TOKENIZER_FILE))
            best, rows = _stage_results(session, teacher, table, best_model, staged, start)
        work.remove()
        _report(session, table, rows, config["output_dir"], best)
        return _results(config)


def evaluate(config, model_path, tokenizer_path=None, output=None, out=print):
    """Evaluates a saved model on the config's validation set and prints the table."""
    tokenizer_path = tokenizer_path or os.path.join(os.path.dirname(model_path) or ".",
                                                    TOKENIZER_FILE)
    check_model_file(model_path, "model")
    tokenizer = _model_tokenizer(model_path, tokenizer_path, config["data"]["sequence_length"])
    if output:
        check_output_dir(os.path.dirname(os.path.abspath(output)), "evaluate", True)
    data = _preflight(config, "evaluate", True)
    with command_session(dict(config, tensorboard=dict(config["tensorboard"], enabled=False)),
                         out, tokenizer=tokenizer, data=data) as session:
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
    teacher_path, _ = _teacher_paths(teacher_dir)
    tokenizer = _check_teacher_dir(teacher_dir, config["data"]["sequence_length"])
    if student_path is None:
        student_path = _student_path(teacher_dir)
    if student_path is not None:
        check_model_file(student_path, "student")
    output = output or os.path.join(config["output_dir"], "augmented.tsv")
    check_output_dir(os.path.dirname(os.path.abspath(output)), "augment", True)
    data = _preflight(config, "augment", True)
    spec = config["augment"]
    with command_session(dict(config, tensorboard=dict(config["tensorboard"], enabled=False)),
                         out, tokenizer=tokenizer, data=data) as session:
        teacher = _load_model(session, teacher_path, "teacher")
        student = _load_model(session, student_path or teacher_path, "student")
        out(f"Student for AugPro-FGSM: {student_path or 'a copy of the teacher'}")
        rows = _sample_rows(session, teacher, student, spec["augmentations"],
                            spec["num_examples"], spec["split"])
        export.write_text(samples_lib.samples_tsv(rows), output)
        out("\n" + samples_lib.format_samples(rows))
        out(f"\nWrote {len(rows)} rows to {output}")
        return rows


def _results(config):
    import json

    with open(os.path.join(config["output_dir"], "results.json"), encoding="utf-8") as f:
        return json.load(f)


__all__ = ["run", "finetune", "distill", "evaluate", "augment"]
