"""What `Distiller.fit` adds to Keras's loop: resume, guard order, empty data.

- **Resume.** With a `callbacks.DistillationBackup` among the callbacks,
  `resuming` restores the newest backup (the backup's `_prepare` skips the
  batches of earlier epochs and sets `model._steps_to_skip`), and the train
  function from `skipping_train_function` reads and drops the batches of
  the resumed epoch that were already trained, restoring the running metric
  values of that epoch (`model._pending_metric_values`, set by the backup's
  `on_train_begin`) on the first of them.
- **Callback order.** `arrange_callbacks` puts `NonFiniteLossGuard`s first,
  so that no later callback saves a NaN state, then `RequireBatches`.
- **Empty data.** `check_not_empty` refuses a dataset of known length 0
  before training; `RequireBatches` raises at the end of an epoch that
  trained on no batch, before any other callback runs.

The model needs `steps_per_execution`, `_steps_to_skip`,
`_pending_metric_values` and `_step_logs(labeled)` (the logs of a step,
with or without the metrics on labels).
"""

import contextlib

import keras
import tensorflow as tf

from augpro_keras import callbacks as callbacks_lib
from augpro_keras import checkpointing
from augpro_keras.replicas import first_replica_value

EMPTY_DATA = (
    "The training data is empty: it gave no batch{where}. Check the input files and the "
    "batch size (with `drop_remainder=True`, a dataset with fewer examples than the batch "
    "size has no batch at all)."
)


# === fit's arguments ===
def check_not_empty(x):
    """Refuses a `tf.data.Dataset` whose length is known to be 0."""
    if isinstance(x, tf.data.Dataset) and int(x.cardinality()) == 0:
        raise ValueError(EMPTY_DATA.format(where=""))


def arrange_callbacks(callbacks):
    """`(callbacks, backup)`: guards first, then `RequireBatches`, then the others.

    `backup` is the `DistillationBackup` among them (at most one) or `None`.
    Callbacks that are not a list (a `CallbackList`) stay as they are.
    """
    if callbacks is not None and not isinstance(callbacks, (list, tuple)):
        return callbacks, None
    callbacks = list(callbacks or [])
    guards = [c for c in callbacks if isinstance(c, callbacks_lib.NonFiniteLossGuard)]
    backups = [c for c in callbacks if isinstance(c, callbacks_lib.DistillationBackup)]
    if len(backups) > 1:
        raise ValueError(f"Give fit() at most one DistillationBackup; received {len(backups)}.")
    others = [c for c in callbacks if not isinstance(c, callbacks_lib.NonFiniteLossGuard)]
    return guards + [RequireBatches()] + others, (backups[0] if backups else None)


@contextlib.contextmanager
def resuming(model, backup, arguments):
    """The context of one `fit` call with an optional `DistillationBackup`.

    Prepares the resume (`arguments["x"]` and `arguments["initial_epoch"]`
    are replaced by the backup's), adds the last finite backup to a
    `NonFiniteLossError`, and clears the resume state at the end.

    Example (in `Distiller.fit`):
    ```python
    with resume.resuming(self, backup, arguments):
        return super().fit(**arguments)
    ```
    """
    model._steps_to_skip = 0
    model._pending_metric_values = None
    try:
        if backup is not None:
            arguments["x"], arguments["initial_epoch"] = backup._prepare(
                model, arguments["x"], arguments["initial_epoch"], arguments["steps_per_epoch"]
            )
        yield
    except callbacks_lib.NonFiniteLossError as error:
        latest = backup.latest() if backup is not None else None
        if latest is None:
            raise
        raise callbacks_lib.NonFiniteLossError(
            f"{error} The last finite state is the backup {latest['path']} (epoch "
            f"{latest['epoch'] + 1}, after batch {latest['batch']}, optimizer step "
            f"{latest['iterations']}); fit() with the same DistillationBackup resumes "
            "from it."
        ) from None
    finally:
        model._steps_to_skip = 0
        model._pending_metric_values = None
        if backup is not None:
            backup._finish()


class RequireBatches(keras.callbacks.Callback):
    """Raises at the end of an epoch that trained on no batch (empty data)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._seen = False

    def on_train_batch_end(self, batch, logs=None):
        self._seen = True

    def on_epoch_end(self, epoch, logs=None):
        if not self._seen:
            raise ValueError(EMPTY_DATA.format(where=f" in epoch {epoch + 1}"))


# === Skipping the batches trained before a resume ===
def skipping_train_function(model, train_function):
    """`train_function` that first skips `model._steps_to_skip` batches.

    Wrapping twice gives the same function back.
    """
    if getattr(train_function, "_skips_trained_batches", False):
        return train_function

    def function(iterator):
        if model._steps_to_skip > 0:
            return skip_trained_batches(model, iterator)
        return train_function(iterator)

    function._skips_trained_batches = True
    return function


def skip_trained_batches(model, iterator):
    """Reads and drops `steps_per_execution` batches; returns the restored logs."""
    labeled = False
    for _ in range(model.steps_per_execution):
        optional = iterator.get_next_as_optional()
        if not bool(optional.has_value()):
            raise StopIteration
        data = keras.tree.map_structure(
            lambda v: first_replica_value(model.distribute_strategy, v), optional.get_value()
        )
        labeled = keras.utils.unpack_x_y_sample_weight(data)[1] is not None
        model._steps_to_skip -= 1
        if model._pending_metric_values is not None:
            restore_epoch_metrics(model, data)
    return model._step_logs(labeled)


def restore_epoch_metrics(model, data):
    """Restores the epoch's running metric values, building metrics on labels first."""
    compile_metrics = getattr(model, "_compile_metrics", None)
    if compile_metrics is not None and not compile_metrics.built:
        if keras.utils.unpack_x_y_sample_weight(data)[1] is not None:
            with model.distribute_strategy.scope():
                model._symbolic_build(data_batch=data)
    checkpointing.restore_metric_values(model, model._pending_metric_values)
    model._pending_metric_values = None
