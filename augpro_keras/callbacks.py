"""Callbacks for reliable distillation: resumable backups and a NaN/Inf guard.

- `DistillationBackup` backs up the whole training state every N steps and
  at epoch ends; a `Distiller.fit` call with the same callback resumes from
  the newest backup, mid-epoch included, and ends with the same student as
  a run that was never interrupted.
- `NonFiniteLossGuard` stops training with a `NonFiniteLossError` as soon as
  a logged loss is NaN or infinite, before any later callback (backup,
  checkpoint) sees the broken state.
- `TokenChangeRateMonitor` warns when a token-producing augmentation's
  `<name>_token_change_rate` stays near 0 over an epoch (the augmented batch
  is then almost the clean one).

Example:
```python
backup = augpro_keras.callbacks.DistillationBackup("runs/sst2/backup", save_every_steps=200)
guard = augpro_keras.callbacks.NonFiniteLossGuard()
distiller.fit(train_ds, epochs=3, callbacks=[guard, backup])
# Killed? Run the same script again: fit() restores the newest backup, skips
# the batches already trained and carries on.
```
"""

import math
import os
import shutil
import warnings

import keras
import numpy as np
import tensorflow as tf

from augpro_keras import checkpointing


def _keras_iterators_before(epochs_done, cardinality_known):
    """How many iterators Keras's `fit` makes from a dataset before epoch `epochs_done`.

    Mirrors `keras.src.trainers.epoch_iterator.EpochIterator` without
    `steps_per_epoch`: an iterator at the start of every epoch and, when the
    dataset's cardinality is known, one more at its end (which the next
    epoch does not use). The resume tests check this against Keras.
    """
    return 2 * epochs_done if cardinality_known else epochs_done


def _skipping_train_function(model, train_function):
    """`train_function` that first reads and drops the batches trained before a resume.

    For models other than a `Distiller` (which does this itself): while
    `model._steps_to_skip > 0`, each call reads `steps_per_execution`
    batches, restores the saved running metric values once, and returns the
    metrics' current values as the step's logs.
    """
    from augpro_keras import checkpointing as checkpoints
    from augpro_keras.replicas import first_replica_value

    def function(iterator):
        if getattr(model, "_steps_to_skip", 0) <= 0:
            return train_function(iterator)
        for _ in range(int(getattr(model, "steps_per_execution", 1) or 1)):
            optional = iterator.get_next_as_optional()
            if not bool(optional.has_value()):
                raise StopIteration
            data = optional.get_value()
            model._steps_to_skip -= 1
        compile_metrics = getattr(model, "_compile_metrics", None)
        if compile_metrics is not None and not compile_metrics.built:
            # Metrics on labels are built by the first trained batch; build them here.
            data = keras.tree.map_structure(
                lambda v: first_replica_value(model.distribute_strategy, v), data)
            with model.distribute_strategy.scope():
                model._symbolic_build(data_batch=data)
        pending = getattr(model, "_pending_metric_values", None)
        if pending is not None:
            checkpoints.restore_metric_values(model, pending)
            model._pending_metric_values = None
        return model.get_metrics_result()

    return function


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


def _non_finite_logs(logs):
    """`{name: value}` of the logs that are not finite numbers."""
    bad = {}
    for name, value in (logs or {}).items():
        try:
            number = float(np.asarray(value, dtype="float64"))
        except (TypeError, ValueError):
            continue
        if not math.isfinite(number):
            bad[name] = number
    return bad


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops training with a clear error when a logged value becomes NaN or Inf.

    After every batch it checks the logged values (`loss`, the distillation
    and augmentation losses, ...). At the first NaN or infinite value it
    sets `model.stop_training` and raises `NonFiniteLossError`, naming the
    epoch, the batch, the optimizer step and the values. `Distiller.fit`
    places the guard before the other callbacks, so a `DistillationBackup`
    or `keras.callbacks.ModelCheckpoint` never saves the broken state: the
    last backup keeps the last finite state, and the error says where it is.
    (A `DistillationBackup` also refuses to save a non-finite state on its
    own.)

    Args:
        monitor: `None` (default) to check every logged value, or a list of
            log names to check.

    Example:
    ```python
    distiller.fit(train_ds, callbacks=[NonFiniteLossGuard(), backup])
    ```
    """

    def __init__(self, monitor=None):
        super().__init__()
        self.monitor = None if monitor is None else list(monitor)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        if self.monitor is not None:
            logs = {k: v for k, v in logs.items() if k in self.monitor}
        bad = _non_finite_logs(logs)
        if not bad:
            return
        self.model.stop_training = True
        step = None
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            step = int(np.asarray(optimizer.iterations.numpy()))
        values = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
        raise NonFiniteLossError(
            f"Training stopped: non-finite values at epoch {self._epoch + 1}, batch {batch + 1}"
            f" (optimizer step {step}): {values}. The weights after this step are not "
            "usable. Common causes: a learning rate that is too large, a teacher whose "
            "logits are NaN or infinite, or float16 overflow; lower the learning rate, "
            "check the teacher on a batch, or use mixed_bfloat16 instead of mixed_float16."
        )


class DistillationBackup(keras.callbacks.Callback):
    """Backs up a distillation every N steps so that a killed run resumes exactly.

    Give the callback to `Distiller.fit`. It writes the training state to
    `directory` every `save_every_steps` optimizer steps and at the end of
    every epoch: the student's variables, the optimizer's variables
    (including its step counter, from which the Distiller draws its random
    partners and signs), the states of the dropout seed generators of
    student and teacher, and the running metric values of the epoch. Each
    backup is written to a temporary folder and renamed into place, so a
    process killed at any moment leaves the previous backup intact.

    When `Distiller.fit` starts with this callback and `directory` holds a
    backup, it restores it, starts at the saved epoch, skips the batches of
    that epoch that were already trained (they are read from the dataset and
    dropped, not trained on) and carries on. With the same script, data and
    seed the resumed run ends with the same student weights as a run that
    was never interrupted. Requirements for that:

    - the training data is a `tf.data.Dataset` built the same way (shuffles
      with a fixed `seed`; the Distiller re-creates the iterators that the
      earlier epochs used so that a reshuffling dataset yields the same
      order again);
    - the same `epochs`, `steps_per_epoch` and `steps_per_execution`;
      with `steps_per_epoch`, the dataset must be infinite (`.repeat()`):
      batches then flow on across epochs, and the resumed run skips all that
      were used;
    - the same teacher weights (checked) and a student built the same way.

    The teacher's weights are not saved (they never change); rebuild the
    teacher as before. Under a multi-worker strategy only the chief writes;
    `directory` must then be on a file system that every worker can read.

    A backup is never written from a state whose logged values or student
    weights are NaN or infinite (see also `NonFiniteLossGuard`).

    Args:
        directory: folder of the backups (created when needed). Use one
            folder per run.
        save_every_steps: `None` (epoch ends only) or a positive number of
            optimizer steps between backups. With `steps_per_execution`,
            backups happen at the first execution boundary at or after each
            multiple.
        save_at_epoch_end: also back up at the end of every epoch.
        keep: how many of the newest backups to keep (>= 1).
        delete_on_completion: remove the backups when `fit` completes (so
            that running the script again trains from scratch). Default
            `False`: a completed run's backup restores the final state.

    Example:
    ```python
    backup = DistillationBackup("runs/rte/backup", save_every_steps=100)
    distiller.fit(train_ds, epochs=3, callbacks=[NonFiniteLossGuard(), backup])

    # To inspect a backup without training:
    backup.restore(distiller)  # student, optimizer and step are restored
    ```
    """

    def __init__(
        self,
        directory,
        save_every_steps=None,
        save_at_epoch_end=True,
        keep=1,
        delete_on_completion=False,
    ):
        super().__init__()
        if not directory:
            raise ValueError("`directory` must name a folder for the backups.")
        if save_every_steps is not None and (
            isinstance(save_every_steps, bool)
            or not isinstance(save_every_steps, int)
            or save_every_steps < 1
        ):
            raise ValueError(
                "`save_every_steps` must be None (epoch ends only) or a positive integer. "
                f"Received: save_every_steps={save_every_steps!r}"
            )
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"`keep` must be a positive integer. Received: keep={keep!r}")
        self.directory = os.fspath(directory)
        self.save_every_steps = save_every_steps
        self.save_at_epoch_end = bool(save_at_epoch_end)
        self.keep = keep
        self.delete_on_completion = bool(delete_on_completion)
        self._run = None
        self._fingerprint = None

    # --- public ---------------------------------------------------------------
    def latest(self):
        """The newest backup's metadata (`epoch`, `batch`, `iterations`, `path`, ...), or `None`."""
        return checkpointing.latest_backup(self.directory)

    def restore(self, model):
        """Restores the newest backup into `model` now; returns its metadata.

        The student's variables, the optimizer (built if needed) and the
        seed-generator states come back; use it to inspect or export the
        student of an interrupted run. (`Distiller.fit` restores by itself.)
        """
        latest = self.latest()
        if latest is None:
            raise FileNotFoundError(f"No backup found in {self.directory}.")
        return checkpointing.restore_backup(model, latest["path"])

    def fit(self, model, x, callbacks=(), **kwargs):
        """Trains a Keras model that is not a `Distiller` with this backup.

        The same as `Distiller.fit` with this callback, for any compiled
        `keras.Model` (e.g. a classifier fine-tuned on labels): it resumes
        from the newest backup in `directory` (mid-epoch included), runs
        `NonFiniteLossGuard`s before the other callbacks, and otherwise
        calls `model.fit(x, callbacks=..., **kwargs)`. A `Distiller` can
        be passed too; it is then trained with its own `fit`.

        Example:
        ```python
        classifier.compile(optimizer="adam", loss=..., metrics=["accuracy"])
        backup = DistillationBackup("runs/teacher/backup", save_every_steps=100)
        backup.fit(classifier, train_ds.repeat(), epochs=3, steps_per_epoch=50)
        ```
        """
        callbacks = list(callbacks)
        guards = [c for c in callbacks if isinstance(c, NonFiniteLossGuard)]
        others = [c for c in callbacks if not isinstance(c, NonFiniteLossGuard)]
        if hasattr(model, "_skip_trained_batches"):  # A Distiller resumes by itself.
            return model.fit(x, callbacks=guards + others + [self], **kwargs)
        x, kwargs["initial_epoch"] = self._prepare(
            model, x, kwargs.get("initial_epoch", 0), kwargs.get("steps_per_epoch")
        )
        model.make_train_function()
        train_function = model.train_function
        model.train_function = _skipping_train_function(model, train_function)
        try:
            return model.fit(x, callbacks=guards + others + [self], **kwargs)
        finally:
            model.train_function = train_function
            model._steps_to_skip = 0
            model._pending_metric_values = None
            self._finish()

    # --- driven by Distiller.fit (or `fit` above) --------------------------------
    def _prepare(self, model, x, initial_epoch, steps_per_epoch):
        """Called by `Distiller.fit`; returns the `(x, initial_epoch)` to train with."""
        latest = self.latest()
        steps_per_execution = int(getattr(model, "steps_per_execution", 1) or 1)
        run = {
            "first_epoch": int(initial_epoch),
            "steps_per_epoch": steps_per_epoch,
            "steps_per_execution": steps_per_execution,
            "run_batches": 0,
            "epoch": int(initial_epoch),
            "offset": 0,
            "pending": None,
            "epoch_base": 0,
            "last_saved": 0,
        }
        if latest is None:
            self._run = run
            return x, initial_epoch
        for key in ("steps_per_epoch", "steps_per_execution"):
            if latest.get(key) != run[key]:
                raise ValueError(
                    f"The backup {latest['path']} was written with {key}="
                    f"{latest.get(key)!r}; this fit() uses {key}={run[key]!r}. Resume with "
                    "the same settings, or use a new backup directory."
                )
        if not isinstance(x, tf.data.Dataset):
            raise ValueError(
                "Resuming from a DistillationBackup needs the training data as a "
                f"`tf.data.Dataset` (received {type(x).__name__}), so that the batches "
                "already trained can be skipped."
            )
        epoch, batch = int(latest["epoch"]), int(latest["batch"])
        if batch % steps_per_execution:
            raise ValueError(
                f"The backup {latest['path']} stopped after batch {batch} of its epoch, "
                f"which is not a multiple of steps_per_execution={steps_per_execution}."
            )
        run.update(
            first_epoch=int(latest["first_epoch"]),
            run_batches=int(latest["run_batches"]),
            epoch=epoch,
            offset=batch,
            pending=latest,
            last_saved=int(latest["run_batches"]),
        )
        if steps_per_epoch is None:
            # Each epoch iterates the dataset anew, and a reshuffling dataset
            # draws a new order for every iterator made from it. Make the
            # iterators that Keras made before this epoch in the interrupted
            # run, so that this epoch gets its original order.
            known = bool(x.cardinality() >= 0)
            for _ in range(_keras_iterators_before(epoch - run["first_epoch"], known)):
                iter(x)
        else:
            if x.cardinality() != tf.data.INFINITE_CARDINALITY:
                raise ValueError(
                    "Resuming a fit() with `steps_per_epoch` needs an infinite dataset "
                    "(`dataset.repeat()`), whose batches continue across epochs."
                )
            # Batches flow on across epochs: skip those of the earlier epochs;
            # the Distiller skips the trained ones of this epoch.
            x = x.skip(run["run_batches"] - batch)
        model._steps_to_skip = batch
        self._run = run
        return x, epoch

    def _finish(self):
        self._run = None

    # --- callback hooks ---------------------------------------------------------
    def on_train_begin(self, logs=None):
        if self._run is None:
            raise ValueError(
                "DistillationBackup works through `augpro_keras.Distiller.fit`, which "
                "resumes from it; train other models with `backup.fit(model, x, ...)`."
            )
        pending = self._run["pending"]
        if pending is not None:
            checkpointing.restore_backup(self.model, pending["path"])
            if self._run["offset"]:
                self.model._pending_metric_values = checkpointing.metric_values(pending["path"])

    def on_epoch_begin(self, epoch, logs=None):
        run = self._run
        run["epoch"] = epoch
        run["epoch_base"] = run["run_batches"] - run["offset"]

    def on_train_batch_end(self, batch, logs=None):
        run = self._run
        done = batch + 1
        if done <= run["offset"]:
            return  # a batch trained before the interruption, skipped now
        run["run_batches"] = run["epoch_base"] + done
        if self.save_every_steps is None:
            return
        if run["run_batches"] // self.save_every_steps > run["last_saved"] // self.save_every_steps:
            self._save(run["epoch"], done, logs)

    def on_epoch_end(self, epoch, logs=None):
        run = self._run
        run["offset"] = 0
        if self.save_at_epoch_end:
            self._save(epoch + 1, 0, logs)

    def on_train_end(self, logs=None):
        if self.delete_on_completion and not self.model.stop_training:
            for path in checkpointing.list_backups(self.directory):
                shutil.rmtree(path, ignore_errors=True)

    # --- saving -------------------------------------------------------------------
    def _save(self, epoch, batch, logs):
        run = self._run
        bad = _non_finite_logs(logs)
        variables, _ = checkpointing.state_variables(self.model)
        if not bad:
            for variable in variables:
                if variable.trainable and not np.all(np.isfinite(variable.numpy())):
                    bad[variable.path] = "non-finite values"
                    break
        if bad:
            warnings.warn(
                f"DistillationBackup: not saving at epoch {epoch}, batch {batch}: the state "
                f"is not finite ({bad}); the previous backup is kept.",
                stacklevel=2,
            )
            return
        if self._fingerprint is None:
            self._fingerprint = checkpointing.frozen_fingerprint(self.model)
        # Every worker reads the state (a collective under a multi-worker
        # strategy); the chief alone writes it.
        state = checkpointing.collect_state(self.model, self._fingerprint)
        run["last_saved"] = run["run_batches"]
        if not self.model.distribute_strategy.extended.should_checkpoint:
            return
        iterations = int(np.asarray(self.model.optimizer.iterations.numpy()))
        checkpointing.write_state(
            self.directory,
            state,
            {
                "epoch": int(epoch),
                "batch": int(batch),
                "iterations": iterations,
                "run_batches": int(run["run_batches"]),
                "first_epoch": run["first_epoch"],
                "steps_per_epoch": run["steps_per_epoch"],
                "steps_per_execution": run["steps_per_execution"],
            },
            keep=self.keep,
        )


class LowTokenChangeRateWarning(UserWarning):
    """An augmentation changed (almost) no tokens, or (almost) all of them, over an epoch."""


class TokenChangeRateMonitor(keras.callbacks.Callback):
    """Warns when an augmentation's token-change rate stays near 0 over an epoch.

    Every token-producing augmentation of the Distiller (AugPro-Mix,
    AugPro-FGSM, KNN, random tokens) logs `<name>_token_change_rate`, the
    fraction of real positions whose token it changed; the epoch's value is
    the mean over the epoch. When it is below `min_rate`, the augmented
    batch is almost the clean one and the augmentation's loss mostly
    re-distils the clean batch (for example AugPro-FGSM with a step too
    small for the embedding table). At the end of such an epoch the monitor
    issues a `LowTokenChangeRateWarning` (Python `warnings`) naming the log,
    its value, the epoch and what to change. With `max_rate` it also warns
    when the rate is above it (the augmented sentences are then mostly
    noise). Training goes on either way.

    Args:
        min_rate: warn when an epoch's rate is below this value, in [0, 1]
            (default 0.01, i.e. fewer than 1 token in 100 changed).
        max_rate: `None` (default, no upper check) or a value in
            `(min_rate, 1]` above which to warn.
        monitor: `None` (default) to watch every log named
            `*_token_change_rate`, or a list of log names; a listed name
            missing from an epoch's logs is warned about too.

    Attributes:
        alerts: `(epoch, log name, rate)` of every warning issued (`rate`
            is `None` for a missing log).

    Example:
    ```python
    monitor = augpro_keras.callbacks.TokenChangeRateMonitor(min_rate=0.01)
    distiller.fit(train_ds, epochs=3, callbacks=[monitor])
    # LowTokenChangeRateWarning: augpro_fgsm_token_change_rate was 0.0031 in
    # epoch 1, below min_rate=0.01: ...
    ```
    """

    SUFFIX = "_token_change_rate"

    def __init__(self, min_rate=0.01, max_rate=None, monitor=None):
        super().__init__()
        self.min_rate = _rate_argument("min_rate", min_rate)
        if max_rate is not None:
            max_rate = _rate_argument("max_rate", max_rate)
            if max_rate <= self.min_rate:
                raise ValueError(
                    f"`max_rate` must be greater than `min_rate` ({self.min_rate}). "
                    f"Received: max_rate={max_rate!r}"
                )
        self.max_rate = max_rate
        if monitor is not None:
            if isinstance(monitor, str) or not all(isinstance(m, str) for m in monitor):
                raise ValueError(
                    "`monitor` must be None or a list of log names such as "
                    f"['augpro_fgsm_token_change_rate']. Received: monitor={monitor!r}"
                )
            monitor = list(monitor)
        self.monitor = monitor
        self.alerts = []

    def _rates(self, logs):
        if self.monitor is not None:
            return {name: logs.get(name) for name in self.monitor}
        return {
            name: value
            for name, value in logs.items()
            if name.endswith(self.SUFFIX) and not name.startswith("val_")
        }

    def on_epoch_end(self, epoch, logs=None):
        for name, value in sorted(self._rates(logs or {}).items()):
            if value is None:
                self._warn(
                    epoch, name, None,
                    f"{name} is not in the logs of epoch {epoch + 1}; logged: "
                    f"{sorted(logs or {})}. Check the monitored names.",
                )
                continue
            rate = float(np.asarray(value, dtype="float64"))
            if not math.isfinite(rate):
                continue  # NonFiniteLossGuard's business.
            augmentation = name[: -len(self.SUFFIX)] if name.endswith(self.SUFFIX) else name
            if rate < self.min_rate:
                self._warn(
                    epoch, name, rate,
                    f"{name} was {rate:.4g} in epoch {epoch + 1}, below min_rate="
                    f"{self.min_rate:g}: augmentation {augmentation!r} left almost every token "
                    "unchanged, so its loss mostly re-distils the clean batch. Make its step "
                    "larger (AugProFGSM: `relative_epsilon`, a multiple of the embedding "
                    "table's standard deviation, or `epsilon`).",
                )
            elif self.max_rate is not None and rate > self.max_rate:
                self._warn(
                    epoch, name, rate,
                    f"{name} was {rate:.4g} in epoch {epoch + 1}, above max_rate="
                    f"{self.max_rate:g}: augmentation {augmentation!r} replaced most tokens, so "
                    "its sentences are mostly noise. Make its step smaller.",
                )

    def _warn(self, epoch, name, rate, message):
        self.alerts.append((epoch, name, rate))
        warnings.warn(message, LowTokenChangeRateWarning, stacklevel=2)

    def get_config(self):
        return {"min_rate": self.min_rate, "max_rate": self.max_rate, "monitor": self.monitor}


def _rate_argument(name, value):
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0.0 <= value <= 1.0
    ):
        raise ValueError(f"`{name}` must be a number in [0, 1]. Received: {name}={value!r}")
    return float(value)
