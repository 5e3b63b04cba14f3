"""Keras callbacks of the command line tool: validation metrics and TensorBoard text.

- `ValidationMetrics` computes the task's metrics (accuracy, F1, Pearson,
  ...) on the validation set after every epoch, adds them to the epoch's
  logs as `val_<metric>` (so `keras.callbacks.TensorBoard`, placed after it,
  writes them as scalars), and keeps the weights of the best epoch.
- `EpochLog` keeps every finished epoch's logs in a JSON file, so that a
  run resumed from its backup still reports the epochs trained before.
- `ProjectedSentences` writes sample augmented sentences (original, then
  augmented, each with the teacher's label) as `tf.summary.text` every N
  training steps, using `Distiller.augment` on a fixed sample batch.

Example:
```python
callbacks = [
    ValidationMetrics(ValidationSet(dev, n, labels), metric_fn, monitor="accuracy"),
    ProjectedSentences(x, y, tokenizer, "logs/kd/text", every_n_steps=50),
    keras.callbacks.TensorBoard("logs/kd"),
]
distiller.fit(train, epochs=3, callbacks=callbacks)
```
"""

import json
import math
import os

import keras
import numpy as np
import tensorflow as tf

from augpro_keras.cli import export
from augpro_keras.cli import samples as samples_lib


def _target(model):
    """The model being trained: a Distiller's student, else the model itself."""
    return getattr(model, "student", model)


class ValidationMetrics(keras.callbacks.Callback):
    """Task metrics on the validation set after every epoch; restores the best epoch.

    Args:
        validation: the `ValidationSet` (batches, number of real examples,
            labels), shared by the command's models so that it is tokenized
            once.
        metric_fn: `metric_fn(predictions, labels) -> {name: value}`.
        monitor: the metric that picks the best epoch (higher is better).
        restore_best: set the best epoch's weights at the end of training.
        state_file: `None`, or a `.npz` file that keeps the best epoch (its
            metrics and weights) so that a resumed run knows the epochs
            trained before the interruption; written through a rename, read
            at the start of training when it exists.

    Attributes:
        best: the best epoch's metrics, `best_epoch` its number (from 1).
    """

    def __init__(self, validation, metric_fn, monitor, restore_best=True, state_file=None):
        super().__init__()
        self.validation = validation
        self.metric_fn = metric_fn
        self.monitor = monitor
        self.restore_best = restore_best
        self.state_file = state_file
        self.best = None
        self.best_epoch = None
        self._best_weights = None

    def evaluate(self):
        """The metrics of the current weights."""
        return self.metric_fn(self.validation.predict(_target(self.model)), self.validation.labels)

    def on_train_begin(self, logs=None):
        if self.state_file is None or not os.path.isfile(self.state_file):
            return
        with np.load(self.state_file) as saved:
            header = json.loads(str(saved["header"]))
            count = int(header["num_weights"])
            self._best_weights = [saved[f"weight_{i}"] for i in range(count)]
        self.best, self.best_epoch = header["metrics"], header["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        values = self.evaluate()
        if logs is not None:
            logs.update({f"val_{name}": value for name, value in values.items()})
        score = values[self.monitor]
        best = None if self.best is None else self.best[self.monitor]
        if best is None or (math.isfinite(score) and (not math.isfinite(best) or score > best)):
            self.best, self.best_epoch = values, epoch + 1
            if self.restore_best:
                self._best_weights = _target(self.model).get_weights()
            self._write_state()

    def _write_state(self):
        if self.state_file is None or self._best_weights is None:
            return
        header = {"metrics": {k: float(v) for k, v in self.best.items()},
                  "epoch": self.best_epoch, "num_weights": len(self._best_weights)}
        arrays = {f"weight_{i}": w for i, w in enumerate(self._best_weights)}
        temporary = f"{self.state_file}.tmp-{os.getpid()}.npz"
        with open(temporary, "wb") as f:
            np.savez(f, header=np.asarray(json.dumps(header)), **arrays)
        os.replace(temporary, self.state_file)

    def on_train_end(self, logs=None):
        if self.restore_best and self._best_weights is not None:
            _target(self.model).set_weights(self._best_weights)


class EpochLog(keras.callbacks.Callback):
    """Keeps each finished epoch's logs in a JSON file, for a run that resumes.

    `fit` resumed from a `DistillationBackup` starts at the backup's epoch, so
    its `History` holds the epochs trained after the resume only. This
    callback writes every epoch's logs (validation metrics included, when it
    comes after `ValidationMetrics`) to `path` as the epoch ends, before the
    backup of that epoch, so `epochs` holds every epoch of the run, those
    trained before the resume included. Keras's own `BackupAndRestore` keeps
    no logs, and `CSVLogger` appends without knowing which epochs a resume
    trains again.

    Args:
        path: the JSON file (a list of `{"epoch": <0-based>, <log>: value}`).
        resume: keep the epochs already in `path` (a resumed run); `False`
            starts the file over.

    Example:
    ```python
    log = EpochLog("work/teacher/history.json", resume=backup.latest() is not None)
    backup.fit(model, data, epochs=5, callbacks=[validation, log])
    log.epochs  # the logs of epochs 0 to 4, before and after the resume
    ```
    """

    def __init__(self, path, resume=False):
        super().__init__()
        self.path = path
        self.epochs = []
        if resume and os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                self.epochs = json.load(f)
        elif os.path.exists(path):
            os.remove(path)

    def on_epoch_end(self, epoch, logs=None):
        # An epoch trained again after a resume replaces its earlier record.
        self.epochs = [e for e in self.epochs if e["epoch"] < epoch] + [
            {"epoch": int(epoch), **{k: float(v) for k, v in (logs or {}).items()}}]
        export.write_json(self.epochs, self.path)


class ProjectedSentences(keras.callbacks.Callback):
    """Writes sample augmented sentences to TensorBoard every `every_n_steps` steps.

    One Markdown table per token-producing augmentation, under the tag
    `projected_sentences/<augmentation>`: original sentence and the
    teacher's label, augmented sentence and the teacher's label, share of
    tokens changed. Written at the first step, every `every_n_steps` steps
    and at the end of training. Use it with a `Distiller`.

    Args:
        x: dict of numpy inputs of the sample sentences (a fixed batch).
        y: their labels, or `None`.
        tokenizer: the models' keras-hub preprocessor or tokenizer.
        log_dir: folder of the summary file.
        every_n_steps: steps between two summaries.
        label_names: class names, or `None`.
        is_regression: whether the teacher outputs a score.
    """

    def __init__(self, x, y, tokenizer, log_dir, every_n_steps, label_names=None,
                 is_regression=False):
        super().__init__()
        self.x, self.y = x, y
        self.tokenizer = tokenizer
        self.log_dir = log_dir
        self.every_n_steps = int(every_n_steps)
        self.label_names = label_names
        self.is_regression = is_regression
        self._writer = None
        self._last_step = None

    def _step(self):
        return int(self.model.optimizer.iterations.numpy())

    def write(self, step):
        """Writes the summaries of the current weights at `step`."""
        rows = samples_lib.augmented_samples(
            self.model, self.tokenizer, self.x, self.y, self.label_names,
            self.is_regression, step=step,
        )
        with self._writer.as_default(step=step):
            for name, table in samples_lib.samples_markdown(rows).items():
                tf.summary.text(f"projected_sentences/{name}", table, step=step)
        self._writer.flush()
        self._last_step = step

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(self.log_dir)
        self.write(self._step())

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        if step - self._last_step >= self.every_n_steps:
            self.write(step)

    def on_train_end(self, logs=None):
        if self._writer is None:
            return
        step = self._step()
        if step != self._last_step:
            self.write(step)
        self._writer.close()
