"""A Keras model that computes its own losses and prepares its data.

In the spirit of keras-hub's `PipelineModel` (the base of its tasks): the
subclass's `preprocess(data)` runs in the input pipeline, and the loop stays
Keras's. The compile config has no `loss`, and the subclass's loss trackers
replace Keras's. On top of it, for long training runs: resume from a
`DistillationBackup` (see `augpro_keras.resume`), guards before other
callbacks, an error for empty data, failed input checks as `ValueError`s
(see `augpro_keras.input_checks`), and first-replica builds under a strategy
(see `augpro_keras.replicas`).
"""

import inspect

import keras
import tensorflow as tf

from augpro_keras import input_checks
from augpro_keras import resume
from augpro_keras.replicas import first_replica_build_arguments

_FIT_SIGNATURE = inspect.signature(keras.Model.fit)


class PipelineModel(keras.Model):
    """Base class: `fit` / `evaluate` / `predict` with preprocessing and resume.

    Subclasses implement `preprocess(data)` (return `data` unchanged when
    there is nothing to do), `_step_logs(labeled)` (the logs of a
    training step, with or without the metrics on labels) and, to check
    batches, `_input_checks(x, y, in_pipeline)`; their steps read batches
    through `_checked_batch(data)`. They set in
    `__init__`: `trackers` (a dict of `keras.metrics.Mean` by log name),
    `_steps_to_skip = 0` and `_pending_metric_values = None`; `compile`
    sets `_own_jit_compile` (the `jit_compile` that the config saves).

    Example:
    ```python
    class Classifier(PipelineModel):
        def preprocess(self, data):
            return data.map(tokenize) if holds_text(data) else data

        def _step_logs(self, labeled):
            return self.get_metrics_result()
    ```
    """

    # === fit, evaluate, predict ===
    def fit(self, *args, **kwargs):
        """Trains; same arguments as `keras.Model.fit`.

        On top of Keras's `fit`:

        - with an `augpro_keras.callbacks.DistillationBackup` among the
          callbacks, a run resumes from the newest backup in its directory
          (mid-epoch included) and ends as an uninterrupted run would;
        - `NonFiniteLossGuard` callbacks run before the others, so nothing
          saves a NaN state;
        - empty training data and failed input checks (token ids outside the
          vocabulary, labels outside the classes) raise a `ValueError` that
          names the problem, before any weight changes or any callback saves;
        - `x` and `validation_data` pass through `preprocess` (raw strings
          are tokenized in the input pipeline).
        """
        arguments = _FIT_SIGNATURE.bind(self, *args, **kwargs)
        arguments.apply_defaults()
        arguments = dict(arguments.arguments)
        del arguments["self"]
        arguments["x"] = self.preprocess(arguments["x"])
        arguments["validation_data"] = self.preprocess(arguments["validation_data"])
        resume.check_not_empty(arguments["x"])
        arguments["callbacks"], backup = resume.arrange_callbacks(arguments["callbacks"])
        with resume.resuming(self, backup, arguments), input_checks.value_errors():
            return super().fit(**arguments)

    def evaluate(self, *args, **kwargs):
        """Same arguments as `keras.Model.evaluate`; failed input checks raise `ValueError`."""
        if args:
            args = (self.preprocess(args[0]),) + args[1:]
        elif "x" in kwargs:
            kwargs["x"] = self.preprocess(kwargs["x"])
        with input_checks.value_errors():
            return super().evaluate(*args, **kwargs)

    def predict(self, x, *args, **kwargs):
        """Same arguments as `keras.Model.predict`; `x` passes through `preprocess`."""
        return super().predict(self.preprocess(x), *args, **kwargs)

    def preprocess(self, data):
        raise NotImplementedError(f"{type(self).__name__} must implement `preprocess(data)`.")

    # === Input checks ===
    def _input_checks(self, x, y, in_pipeline=False):
        """The checks of a batch: a list of assertion ops (`input_checks.batch_checks`)."""
        return []

    def validate_dataset(self, dataset):
        """Returns `dataset` with every batch checked in the input pipeline.

        `fit` and `evaluate` check token ids and class labels in the step,
        outside its XLA-compiled part; a TPU program cannot check, so map the
        checks into the input pipeline, which runs on the host. A failed check
        raises `ValueError` from `fit` (`InvalidArgumentError` when iterating).

        Example: `model.fit(model.validate_dataset(train_ds), epochs=3)`
        """
        return input_checks.checked_dataset(dataset, lambda x, y: self._input_checks(x, y, True))

    def _checked_batch(self, data):
        """`(x, y)` read through the input checks: nothing runs on a batch that fails them."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError(f"The {type(self).__name__} does not support sample weights.")
        with tf.control_dependencies(self._input_checks(x, y)):
            return keras.tree.map_structure(input_checks.identity, (x, y))

    # === Keras hooks ===
    @property
    def metrics(self):
        # Keras adds its own (unused here) "loss" tracker; ours replaces it.
        # Compiled metrics stay unbuilt when no batch had labels.
        own = list(self.trackers.values())
        return own + [m for m in super().metrics if m.name not in self.trackers and getattr(m, "built", True)]

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:
            config = {k: v for k, v in config.items() if k not in ("loss", "loss_weights")}
            config["jit_compile"] = self._own_jit_compile
        return config

    def compile_from_config(self, config):
        """Compiles a model loaded by `keras.models.load_model` as it was saved."""
        config = keras.saving.deserialize_keras_object(config)
        config.pop("loss", None)
        config.pop("loss_weights", None)
        self.compile(**config)
        if self.optimizer is not None:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    def make_train_function(self, force=False):
        super().make_train_function(force=force)
        self.train_function = resume.skipping_train_function(self, self.train_function)
        return self.train_function

    def _skip_trained_batches(self, iterator):
        # `DistillationBackup.fit` trains models with this method by their own `fit`.
        return resume.skip_trained_batches(self, iterator)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        iterator, data_batch = first_replica_build_arguments(self, iterator, data_batch)
        if data_batch is not None and keras.utils.unpack_x_y_sample_weight(data_batch)[1] is None:
            # Unlabeled batches build the models only: metrics on labels stay
            # unbuilt, as they do without an explicit strategy.
            metrics, self._compile_metrics = self._compile_metrics, None
            try:
                return super()._maybe_symbolic_build(data_batch=data_batch)
            finally:
                self._compile_metrics = metrics
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
