"""Training one model: fine-tuning on labels, or distilling with augmentations.

Each function trains with `model.fit` (Keras progress bars) at the learning
rate of its config section (`learning_rate`, `learning_rate_schedule`,
`warmup_steps`: `schedules.learning_rate`), picks the epoch with the best
validation metric (`ValidationMetrics` restores its weights), writes
TensorBoard logs (the learning rate of every epoch included), and returns
the model and its results row `(name, metrics, details)`.

Example:
```python
teacher, row = finetune(session, teacher, "Teacher", session.data.train)
student, row = distill(session, teacher, factory.new(), run)
```
"""

import functools
import os
import sys
import time

import keras
import numpy as np

from augpro_keras import checkpointing
from augpro_keras.callbacks import DistillationBackup
from augpro_keras.callbacks import NonFiniteLossError
from augpro_keras.callbacks import NonFiniteLossGuard
from augpro_keras.callbacks import TokenChangeRateMonitor
from augpro_keras.cli import callbacks as callbacks_lib
from augpro_keras.cli import config as config_lib
from augpro_keras.cli import inputs
from augpro_keras.cli import schedules
from augpro_keras.cli.modeling import compile_classifier
from augpro_keras.cli.modeling import jit_compile_setting


def evaluate(session, model):
    """The task's metrics of a model on the validation set."""
    validation = session.validation_set()
    return session.metric_fn(validation.predict(model), validation.labels)


def _tensorboard(session, name):
    log_dir = session.log_dir(name)
    if log_dir is None:
        return []
    update_freq = session.config["tensorboard"]["update_freq"]
    return [keras.callbacks.TensorBoard(log_dir=log_dir, update_freq=update_freq,
                                        write_graph=False, profile_batch=0)]


class TrainingError(RuntimeError):
    """Training stopped (NaN or Inf); the message names the model, epoch and step."""


def progress_verbosity(verbose, stream=None):
    """Keras's `verbose`: progress bars (1) become one line per epoch (2) off a terminal."""
    stream = sys.stdout if stream is None else stream
    if verbose == 1 and not (hasattr(stream, "isatty") and stream.isatty()):
        return 2
    return verbose


def epoch_steps(dataset, examples, config, section):
    """Optimizer steps of one epoch: `<section>.steps_per_epoch`, else one pass over `dataset`.

    The pass is the dataset's length when tf.data knows it, else the whole
    batches of `examples` (training batches drop the remainder).
    """
    steps = config[section]["steps_per_epoch"]
    if steps is not None:
        return steps
    known = int(dataset.cardinality())
    if known >= 0:
        return known
    return examples.num_examples // config["data"]["batch_size"]


def run_learning_rate(config, section, steps):
    """The optimizer's learning rate (a float or a schedule) for `steps` steps per epoch."""
    try:
        return schedules.learning_rate(config[section], steps)
    except ValueError as error:
        raise config_lib.ConfigError([f"{section}.{error}"]) from None


def _fit(session, model, dataset, section, callbacks, name):
    """`fit` with a NaN/Inf guard and a backup in the work folder, resuming from it."""
    config = session.config
    steps = config[section]["steps_per_epoch"]
    if steps is not None:
        dataset = dataset.repeat()
    session.out(f"\n== {name} ==")
    callbacks = [NonFiniteLossGuard(), TokenChangeRateMonitor()] + callbacks
    fit, epoch_log = model.fit, None
    if session.work is not None:
        backup = DistillationBackup(session.work.backup_folder(name),
                                    save_every_steps=config["runtime"]["backup_every_steps"])
        latest = backup.latest()
        if latest is not None:
            session.out(f"Resuming {name} from its backup: epoch {latest['epoch'] + 1}, after "
                        f"batch {latest['batch']} (optimizer step {latest['iterations']}).")
        epoch_log = callbacks_lib.EpochLog(os.path.join(session.work.phase(name), "history.json"),
                                           resume=latest is not None)
        callbacks.append(epoch_log)  # after the validation metrics: it keeps them too
        fit = functools.partial(backup.fit, model)
    start = time.time()
    try:
        # The dataset shuffles itself; `shuffle=False` only silences Keras's warning.
        history = fit(dataset, epochs=config[section]["epochs"], steps_per_epoch=steps,
                      callbacks=callbacks, verbose=progress_verbosity(config["runtime"]["verbose"]),
                      shuffle=False)
    except NonFiniteLossError as error:
        raise TrainingError(f"{name}: {error}") from None
    return time.time() - start, _history(history, epoch_log)


def _history(history, epoch_log=None):
    """The per-epoch logs of `fit` (losses, diagnostics, validation metrics) for a results row.

    `epochs` numbers the epochs from 1. A run with a backup reads them from its
    `EpochLog`, which also holds the epochs trained before a resume, so a
    resumed run reports every epoch, as an uninterrupted run does.
    """
    if epoch_log is None:
        records = [{"epoch": e, **{k: float(values[i]) for k, values in history.history.items()}}
                   for i, e in enumerate(history.epoch)]
    else:
        records = epoch_log.epochs
    keys = [k for k in dict.fromkeys(k for r in records for k in r) if k != "epoch"]
    return {"epochs": [r["epoch"] + 1 for r in records],
            **{k: [r.get(k) for r in records] for k in keys}}


def _validation_callback(session, name):
    state_file = None
    if session.work is not None:
        state_file = os.path.join(session.work.phase(name), "best.npz")
    return callbacks_lib.ValidationMetrics(session.validation_set(), session.metric_fn,
                                           session.monitor, state_file=state_file)


def reseed_dropout(models, seed):
    """Restarts the dropout random streams of `models` from `seed`.

    Every run of a command shares the teacher, whose dropout generators
    advance at every step; without this, a run's result would depend on the
    runs before it, and two rows of one seed would not see the same teacher
    noise. The generators get distinct seeds drawn from `seed`.
    """
    rng = np.random.default_rng(seed)
    for model in models:
        for state in checkpointing.seed_state_variables(model):
            start = int(rng.integers(2**31 - 1))
            state.assign(np.array([start, 0], dtype=state.dtype))


def finetune(session, model, name, examples, section="finetune"):
    """Fine-tunes a classifier on labeled examples.

    Args:
        session: the command's `Session`.
        model: the classifier.
        name: its row name ("Teacher", "FT student").
        examples: labeled `TextDataset`.
        section: the config section with `epochs`, `steps_per_epoch` and the
            learning rate keys: "finetune" for the teacher, "distill" for
            the FT student (every student trains on the same schedule).
    """
    config = session.config
    reseed_dropout([model], config["seed"])
    dataset = inputs.train_dataset(examples, session.tokenizer, config)
    steps = epoch_steps(dataset, examples, config, section)
    with session.strategy.scope():
        compile_classifier(model, config, session.data, run_learning_rate(config, section, steps))
    validation = _validation_callback(session, name)
    seconds, history = _fit(session, model, dataset, section,
                            [validation] + _tensorboard(session, name), name)
    session.out(f"{name}: best epoch {validation.best_epoch}: {metrics_text(validation.best)}")
    return model, validation.best, {"best_epoch": validation.best_epoch,
                                    "train_seconds": round(seconds, 1), "history": history}


def make_distiller(session, teacher, student, augmentation_entries, teacher_dropout=None,
                   steps_per_epoch=None):
    """A compiled `Distiller` with the config's settings (call inside the scope).

    Args:
        session: the command's `Session`.
        teacher, student: the models.
        augmentation_entries: the run's augmentations (config entries).
        teacher_dropout: `None` (the config's), or a value to use instead.
        steps_per_epoch: the optimizer steps of one training epoch, for the
            `distill` learning rate schedule; `None` for a Distiller that
            only augments (sample sentences) and never trains: its optimizer
            gets the plain `distill.learning_rate`.
    """
    from augpro_keras import Distiller

    config, spec = session.config, session.config["distill"]
    # The `distill` keys that are Distiller arguments pass by name.
    settings = config_lib.distiller_arguments(config)
    if teacher_dropout is not None:
        settings["teacher_dropout"] = teacher_dropout
    distiller = Distiller(
        teacher,
        student,
        augmentations=config_lib.build_augmentations(augmentation_entries),
        task="regression" if session.data.is_regression else "classification",
        seed=config["seed"],
        **settings,
    )
    rate = spec["learning_rate"]
    if steps_per_epoch is not None:
        rate = run_learning_rate(config, "distill", steps_per_epoch)
    distiller.compile(
        optimizer=keras.optimizers.Adam(rate),
        metrics=[] if session.data.is_regression else ["accuracy"],
        jit_compile=jit_compile_setting(config),
        steps_per_execution=config["runtime"]["steps_per_execution"],
    )
    return distiller


def sample_batch(session, split="validation", count=None):
    """Packed inputs (numpy) and labels of the first `count` examples of a split."""
    examples = session.data.validation if split == "validation" else session.data.train
    count = min(count or session.config["tensorboard"]["num_text_samples"], examples.num_examples)
    subset = examples.select(range(count))
    x = inputs.pack(subset, session.tokenizer, session.config["data"]["sequence_length"])
    y = None if subset.labels is None else np.asarray(subset.labels)
    if y is not None:
        y = y.astype("float32" if session.data.is_regression else "int32")
    return x, y


def distill(session, teacher, student, run):
    """Distils `teacher` into `student` with the run's augmentations."""
    config = session.config
    reseed_dropout([teacher, student], config["seed"])
    labeled = session.data.distill.has_labels
    dataset = inputs.train_dataset(session.data.distill, session.tokenizer, config, labeled)
    steps = epoch_steps(dataset, session.data.distill, config, "distill")
    with session.strategy.scope():
        distiller = make_distiller(session, teacher, student, run["augmentations"],
                                   steps_per_epoch=steps)
    validation = _validation_callback(session, run["name"])
    callbacks = [validation]
    log_dir = session.log_dir(run["name"])
    if log_dir is not None and any(a.produces_tokens for a in distiller.augmentation_list):
        x, y = sample_batch(session)
        callbacks.append(callbacks_lib.ProjectedSentences(
            x, y if labeled else None, session.tokenizer, f"{log_dir}/text",
            config["tensorboard"]["text_every_n_steps"], session.data.label_names,
            session.data.is_regression,
        ))
    callbacks += _tensorboard(session, run["name"])
    seconds, history = _fit(session, distiller, dataset, "distill", callbacks, run["name"])
    session.out(f"{run['name']}: best epoch {validation.best_epoch}: "
                f"{metrics_text(validation.best)}")
    return student, validation.best, {
        "best_epoch": validation.best_epoch,
        "train_seconds": round(seconds, 1),
        "augmentations": run["augmentations"],
        "history": history,
    }


def metrics_text(values):
    return ", ".join(f"{k} {100 * v:.2f}" for k, v in values.items())
