"""Knowledge distillation with AugPro and the paper's baselines."""

import contextlib
import inspect
import random
import re

import keras
import tensorflow as tf
from keras import ops

from augpro_keras import augmentations as augmentations_lib
from augpro_keras import callbacks as callbacks_lib
from augpro_keras import checkpointing
from augpro_keras import input_checks
from augpro_keras import losses
from augpro_keras import text_inputs
from augpro_keras.api_export import export
from augpro_keras.layers.embedding_projection import EmbeddingProjection
from augpro_keras.models.protocol import as_distillable
from augpro_keras.models.protocol import check_shared_vocabulary
from augpro_keras.models.protocol import unpack_inputs
from augpro_keras.replicas import first_replica_build_arguments
from augpro_keras.replicas import first_replica_value

_FIT_SIGNATURE = inspect.signature(keras.Model.fit)
_EMPTY_DATA = (
    "The training data is empty: it gave no batch{where}. Check the input files and the "
    "batch size (with `drop_remainder=True`, a dataset with fewer examples than the batch "
    "size has no batch at all)."
)
_TOKEN_MESSAGE = "Token ids must be in"
_LABEL_MESSAGE = "Labels must be class ids in"

def _check_number(name, value, low=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise ValueError(f"`{name}` must be a number >= {low}. Received: {name}={value!r}")
    return float(value)


@export
class Distiller(keras.Model):
    """Distils a teacher into a student with AugPro (or a baseline) augmentation.

    Every training step computes the knowledge-distillation loss of the real
    batch (Eq. 4 of the paper) and, for each augmentation, builds one
    augmented batch from it and adds its loss `L_Aug`:

    `L = w_s * CE(g(x), y) + w_d * d(g(x), f(x)) + sum_a weight_a * L_a`

    Without labels (a dataset of inputs only, the paper's Table 2 setting)
    the CE terms are left out. `d` is the KL divergence of the
    temperature-softened distributions times `T^2`, or the MSE of the logits.
    Only the student trains; the teacher's weights never change.

    The step is correct under any `tf.distribute` strategy: per-example
    losses are divided by the global batch size so that the gradients summed
    across replicas equal those of one device with the same global batch,
    and logged values are unscaled means. `compile(jit_compile=True)` runs
    the per-replica losses and gradients under XLA (the optimizer update
    stays outside), which also works under `MirroredStrategy`; on TPU the
    whole step is compiled by `TPUStrategy` in any case. Batches need static
    shapes (fixed sequence length, `drop_remainder=True`).

    Randomness (partners, lam, random signs, replaced positions) is drawn
    statelessly from `seed`, the step number and the replica, so a run is
    reproducible. With `mix_group_size`, MixUp partners are drawn within
    groups of that many consecutive rows, seeded by the group's global
    number, so the same global batch gives the same mixes on any number of
    replicas (the per-replica batch must be a multiple of the group size).

    Reliability (see `docs/reliability.md`): `fit` resumes a killed run
    exactly from an `augpro_keras.callbacks.DistillationBackup`, runs
    `NonFiniteLossGuard`s before other callbacks, and raises a `ValueError`
    for empty data, token ids outside the vocabulary and labels outside the
    classes before the weights change (`validate_dataset` does the same
    checks in the input pipeline, for TPUs). Saved with `save()`, a
    Distiller comes back from `keras.models.load_model` with its teacher,
    student, augmentations and compile state.

    Args:
        teacher: a `DistillableClassifier` (fine-tuned); frozen here.
        student: a `DistillableClassifier` with the same vocabulary.
        augmentations: list of augmentations: instances from
            `augpro_keras.augmentations`, names ("mixup", "augpro_mix",
            "tmix", "fgsm", "augpro_fgsm", "knn", "random_tokens") or config
            dicts. Empty (default) for plain KD.
        distillation_loss: "kl" (default) or "mse".
        temperature: temperature of "kl" (> 0).
        student_loss_weight: weight `w_s` of the student's loss on labels
            (CE, or squared error for regression). The paper's Eq. 4 uses 1.
        distillation_loss_weight: weight `w_d` of `d`. The paper uses 1.
        task: "classification" or "regression" (one output; use "mse").
        teacher_dropout: run the teacher with dropout (the paper: on).
        similarity: similarity of the projections ("cosine", "dot", "l2").
        projection_chunk_size: vocabulary rows per chunk in projections
            (`None`: the whole table at once).
        mix_group_size: `None` or the size of the row groups within which
            MixUp partners are drawn.
        seed: int seed of the augmentations' random draws.
        **kwargs: standard `keras.Model` arguments.

    Example:
    ```python
    distiller = augpro_keras.Distiller(
        teacher, student, augmentations=["augpro_mix", "augpro_fgsm"])
    distiller.compile(optimizer=keras.optimizers.Adam(1e-4), metrics=["accuracy"])
    distiller.fit(train_ds, validation_data=dev_ds, epochs=3)
    student = distiller.student
    ```

    References:
        - [Wang et al., 2023, "Augmentation with Projection: Towards an
          Effective and Efficient Data Augmentation Paradigm for
          Distillation"](https://arxiv.org/abs/2210.11768)
        - [Hinton et al., 2015, "Distilling the Knowledge in a Neural
          Network"](https://arxiv.org/abs/1503.02531)
    """

    def __init__(
        self,
        teacher,
        student,
        augmentations=(),
        distillation_loss="kl",
        temperature=1.0,
        student_loss_weight=1.0,
        distillation_loss_weight=1.0,
        task="classification",
        teacher_dropout=True,
        similarity="cosine",
        projection_chunk_size=None,
        mix_group_size=None,
        seed=None,
        name="distiller",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        teacher_view = as_distillable(teacher, "teacher")
        student_view = as_distillable(student, "student")
        check_shared_vocabulary(teacher, student, teacher_view, student_view)
        teacher_classes = getattr(teacher_view, "num_classes", None)
        student_classes = getattr(student_view, "num_classes", None)
        if teacher_classes is not None and student_classes is not None and teacher_classes != student_classes:
            raise ValueError(
                f"Teacher and student must have the same number of outputs: the teacher has "
                f"{teacher_classes}, the student has {student_classes}."
            )
        self.num_classes = student_classes
        self.distillation_loss = losses.validate_distance(distillation_loss)
        self.temperature = _check_number("temperature", temperature)
        if self.temperature == 0:
            raise ValueError("`temperature` must be > 0. Received: temperature=0")
        self.student_loss_weight = _check_number("student_loss_weight", student_loss_weight)
        self.distillation_loss_weight = _check_number(
            "distillation_loss_weight", distillation_loss_weight
        )
        self.task = losses.validate_task(task)
        if self.task == "regression" and self.distillation_loss != "mse":
            raise ValueError(
                "A regression task has one output; distil it with distillation_loss='mse' "
                f"(received {distillation_loss!r})."
            )
        if not isinstance(teacher_dropout, bool):
            raise ValueError(f"`teacher_dropout` must be True or False. Received: {teacher_dropout!r}")
        self.teacher_dropout = teacher_dropout
        if mix_group_size is not None and (
            isinstance(mix_group_size, bool) or not isinstance(mix_group_size, int) or mix_group_size < 1
        ):
            raise ValueError(
                f"`mix_group_size` must be None or a positive integer. Received: {mix_group_size!r}"
            )
        self.mix_group_size = mix_group_size
        self.seed = random.randrange(2**31) if seed is None else int(seed)

        self.teacher = teacher
        # Setting `trainable` does not reach the sublayers when the flag is
        # already False (a teacher rebuilt by `from_config`): set it twice.
        self.teacher.trainable = True
        self.teacher.trainable = False
        self.student = student
        # The models through the protocol (keras-hub tasks wrapped in an
        # adapter that runs their layers); the step computes with these.
        self.teacher_view = teacher_view
        self.student_view = student_view
        self.augmentation_list = [augmentations_lib.get(a) for a in augmentations]
        names = [a.name for a in self.augmentation_list]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"Augmentation names must be unique; {duplicates} appear more than once. "
                "Give each instance its own `name=`."
            )
        for augmentation in self.augmentation_list:
            augmentation.validate(teacher_view, student_view)

        self.special_token_ids = tuple(
            sorted(set(teacher_view.special_token_ids) | set(student_view.special_token_ids))
        )
        self.pad_token_id = student_view.pad_token_id
        self.similarity = similarity
        self.projection_chunk_size = projection_chunk_size
        self.projection = EmbeddingProjection(
            similarity=similarity,
            chunk_size=projection_chunk_size,
            excluded_token_ids=self.special_token_ids,
            pad_token_id=self.pad_token_id,
            name="projection",
        )
        self.settings = augmentations_lib.DistillationSettings(
            projection=self.projection,
            special_token_ids=self.special_token_ids,
            pad_token_id=self.pad_token_id,
            similarity=similarity,
            distillation_loss=self.distillation_loss,
            temperature=self.temperature,
            student_loss_weight=self.student_loss_weight,
            distillation_loss_weight=self.distillation_loss_weight,
            task=self.task,
            teacher_dropout=self.teacher_dropout,
            mix_group_size=self.mix_group_size,
            seed=self.seed,
        )

        tracker_names = ["loss", "student_loss", "distillation_loss"]
        for augmentation in self.augmentation_list:
            tracker_names.append(f"{augmentation.name}_loss")
            if augmentation.produces_tokens:
                tracker_names.append(f"{augmentation.name}_token_change_rate")
        self.trackers = {n: keras.metrics.Mean(name=n) for n in tracker_names}
        self.xla_step = False
        self._step_function = self._loss_and_gradients
        # Set by `DistillationBackup` when a run resumes mid-epoch.
        self._steps_to_skip = 0
        self._pending_metric_values = None
        # Teacher and student arrive built and the projection has no weights,
        # so the Distiller is built (saving and `load_model` rely on it). Not
        # `self.build()`: Keras's build wrapper would lock the state, and the
        # compiled metrics are still added later.
        self.projection.built = True
        self.built = True

    # --- Keras API ----------------------------------------------------------
    def build(self, input_shape=None):
        self.projection.built = True
        self.built = True

    def call(self, inputs, training=False):
        """Runs the student."""
        return self.student_view(inputs, training=training)

    def compile(self, optimizer="adam", metrics=None, jit_compile="auto", **kwargs):
        """Configures training. Same arguments as `keras.Model.compile`, except:

        - no `loss`: the Distiller computes its own losses;
        - `jit_compile`: True compiles the per-replica losses and gradients
          with XLA (under any strategy); "auto" does so when a GPU is
          visible, as Keras does.
        """
        if kwargs.get("loss") is not None:
            raise ValueError(
                "The Distiller computes its own losses (student loss, distillation loss and "
                "augmentation losses); do not pass `loss` to compile()."
            )
        kwargs.pop("loss", None)
        if jit_compile == "auto":
            jit_compile = bool(tf.config.list_physical_devices("GPU"))
        self.xla_step = bool(jit_compile) and not kwargs.get("run_eagerly", False)
        self._step_function = (
            tf.function(self._loss_and_gradients, jit_compile=True)
            if self.xla_step
            else self._loss_and_gradients
        )
        super().compile(optimizer=optimizer, metrics=metrics, jit_compile=False, **kwargs)
        self._distiller_jit_compile = jit_compile

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:
            config = dict(config)
            config.pop("loss", None)
            config.pop("loss_weights", None)
            config["jit_compile"] = self._distiller_jit_compile
        return config

    def compile_from_config(self, config):
        """Compiles a Distiller loaded by `keras.models.load_model` as it was saved."""
        config = keras.saving.deserialize_keras_object(config)
        config.pop("loss", None)
        config.pop("loss_weights", None)
        self.compile(**config)
        if self.optimizer is not None:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

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

    @property
    def metrics(self):
        # Keras adds its own (unused here) "loss" tracker; ours replaces it.
        # Compiled metrics stay unbuilt when no batch had labels.
        own = list(self.trackers.values())
        return own + [
            m for m in super().metrics if m.name not in self.trackers and getattr(m, "built", True)
        ]

    # --- training -----------------------------------------------------------
    def fit(self, *args, **kwargs):
        """Trains the student; same arguments as `keras.Model.fit`.

        On top of Keras's `fit`:

        - with an `augpro_keras.callbacks.DistillationBackup` among the
          callbacks, a run resumes from the newest backup in its directory
          (mid-epoch included) and ends as an uninterrupted run would;
        - `NonFiniteLossGuard` callbacks run before the others, so nothing
          saves a NaN state;
        - empty training data, token ids outside the vocabulary and labels
          outside the classes raise a `ValueError` that names the problem,
          before any weight changes or any callback saves;
        - a dataset of raw strings (or string pairs), with or without labels,
          is tokenized in the input pipeline by a model's preprocessor
          (`preprocess`), as keras-hub's `TextClassifier.fit` does.
        """
        arguments = _FIT_SIGNATURE.bind(self, *args, **kwargs)
        arguments.apply_defaults()
        arguments = dict(arguments.arguments)
        del arguments["self"]
        arguments["x"] = self.preprocess(arguments["x"])
        arguments["validation_data"] = self.preprocess(arguments["validation_data"])
        x = arguments["x"]
        if isinstance(x, tf.data.Dataset) and int(x.cardinality()) == 0:
            raise ValueError(_EMPTY_DATA.format(where=""))
        callbacks = arguments["callbacks"]
        backup = None
        if callbacks is None or isinstance(callbacks, (list, tuple)):
            callbacks = list(callbacks or [])
            guards = [c for c in callbacks if isinstance(c, callbacks_lib.NonFiniteLossGuard)]
            backups = [c for c in callbacks if isinstance(c, callbacks_lib.DistillationBackup)]
            if len(backups) > 1:
                raise ValueError(
                    f"Give fit() at most one DistillationBackup; received {len(backups)}."
                )
            backup = backups[0] if backups else None
            others = [c for c in callbacks if not isinstance(c, callbacks_lib.NonFiniteLossGuard)]
            arguments["callbacks"] = guards + [_RequireBatches()] + others
        self._steps_to_skip = 0
        self._pending_metric_values = None
        try:
            if backup is not None:
                arguments["x"], arguments["initial_epoch"] = backup._prepare(
                    self, x, arguments["initial_epoch"], arguments["steps_per_epoch"]
                )
            with self._input_errors_as_value_errors():
                return super().fit(**arguments)
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
            self._steps_to_skip = 0
            self._pending_metric_values = None
            if backup is not None:
                backup._finish()

    def evaluate(self, *args, **kwargs):
        """Evaluates the student; same arguments as `keras.Model.evaluate`.

        Token ids outside the vocabulary and labels outside the classes raise
        a `ValueError` that names them.
        """
        if args:
            args = (self.preprocess(args[0]),) + args[1:]
        elif "x" in kwargs:
            kwargs["x"] = self.preprocess(kwargs["x"])
        with self._input_errors_as_value_errors():
            return super().evaluate(*args, **kwargs)

    def predict(self, x, *args, **kwargs):
        """The student's logits; same arguments as `keras.Model.predict`.

        Datasets of raw strings are tokenized as in `fit`.
        """
        return super().predict(self.preprocess(x), *args, **kwargs)

    def preprocess(self, data):
        """`data` tokenized in the input pipeline when it is a dataset of strings.

        The student's preprocessor is used when it gives every input that
        the two models take, else the teacher's (a DistilBERT student gives
        no segment ids, which a BERT teacher reads for sentence pairs). Other
        data is returned as it is.
        """
        if not text_inputs.holds_text(data):
            return data
        needed = set()
        for view in (self.teacher_view, self.student_view):
            needed |= set(getattr(view, "input_names", ("token_ids", "padding_mask")))
        preprocessor = text_inputs.choose_preprocessor(
            [("student", self.student), ("teacher", self.teacher)], needed
        )
        return text_inputs.preprocess(data, preprocessor)

    def make_train_function(self, force=False):
        super().make_train_function(force=force)
        train_function = self.train_function
        if getattr(train_function, "_skips_trained_batches", False):
            return train_function

        def function(iterator):
            if self._steps_to_skip > 0:
                return self._skip_trained_batches(iterator)
            return train_function(iterator)

        function._skips_trained_batches = True
        self.train_function = function
        return function

    def _skip_trained_batches(self, iterator):
        """Reads and drops batches trained before a resume; returns the restored logs."""
        labeled = False
        for _ in range(self.steps_per_execution):
            optional = iterator.get_next_as_optional()
            if not bool(optional.has_value()):
                raise StopIteration
            data = keras.tree.map_structure(
                lambda v: first_replica_value(self.distribute_strategy, v), optional.get_value()
            )
            labeled = keras.utils.unpack_x_y_sample_weight(data)[1] is not None
            self._steps_to_skip -= 1
            if self._pending_metric_values is not None:
                self._restore_epoch_metrics(data)
        return self._step_logs(labeled)

    def _restore_epoch_metrics(self, data):
        compile_metrics = getattr(self, "_compile_metrics", None)
        if compile_metrics is not None and not compile_metrics.built:
            x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
            if y is not None:
                with self.distribute_strategy.scope():
                    self._symbolic_build(data_batch=data)
        checkpointing.restore_metric_values(self, self._pending_metric_values)
        self._pending_metric_values = None

    def _step_logs(self, labeled):
        if labeled:
            return self.get_metrics_result()
        # Without labels there is no student loss and no accuracy to report.
        return {
            name: tracker.result()
            for name, tracker in self.trackers.items()
            if name != "student_loss"
        }

    def _input_checks(self, x, y, in_pipeline=False):
        """Assertions that token ids and labels are in range (none inside TPU programs).

        They run outside the XLA-compiled part of the step, before the
        weights change. TPU programs cannot check; use `validate_dataset`.
        """
        if not in_pipeline and isinstance(
            tf.distribute.get_strategy(), (tf.distribute.TPUStrategy, tf.distribute.experimental.TPUStrategy)
        ):
            return []
        token_ids, _, _ = unpack_inputs(x)
        ids = tf.cast(token_ids, "int64")
        lowest, highest = tf.reduce_min(ids), tf.reduce_max(ids)
        size = self.student_view.vocabulary_size
        checks = [
            tf.debugging.Assert(
                tf.logical_and(lowest >= 0, highest < size),
                [
                    f"{_TOKEN_MESSAGE} [0, {size - 1}] (the vocabulary has {size} tokens); "
                    "this batch holds ids from",
                    lowest,
                    "to",
                    highest,
                ],
            )
        ]
        if y is not None and self.task == "classification" and self.num_classes:
            labels = tf.cast(y, "int64")
            lowest, highest = tf.reduce_min(labels), tf.reduce_max(labels)
            checks.append(
                tf.debugging.Assert(
                    tf.logical_and(lowest >= 0, highest < self.num_classes),
                    [
                        f"{_LABEL_MESSAGE} [0, {self.num_classes - 1}] (the models have "
                        f"{self.num_classes} classes); this batch holds labels from",
                        lowest,
                        "to",
                        highest,
                    ],
                )
            )
        checks += input_checks.label_checks(y, self.task, self.num_classes)
        return [c for c in checks if c is not None]

    @contextlib.contextmanager
    def _input_errors_as_value_errors(self):
        """Re-raises a failed input check as the `ValueError` of `_input_error`."""
        try:
            yield
        except tf.errors.InvalidArgumentError as error:
            replacement = self._input_error(error) or input_checks.as_value_error(error)
            if replacement is None:
                raise
            raise replacement from None

    def _input_error(self, error):
        """A `ValueError` for a failed input check, or `None` for other errors."""
        message = str(getattr(error, "message", error))
        for marker, what in ((_TOKEN_MESSAGE, "token ids"), (_LABEL_MESSAGE, "labels")):
            # Graph mode prints the assertion's data as `[text] [0] [to] [60]`,
            # eager mode one item per line; read the numbers in order.
            index = message.find(marker)
            if index < 0:
                continue
            top = re.match(r"\s*\[0, (-?\d+)\]", message[index + len(marker):])
            numbers = re.findall(r"-?\d+", message[message.find(" from", index) + 5:])[:2]
            if top is None or len(numbers) < 2:
                continue
            top, lowest, highest = int(top.group(1)), int(numbers[0]), int(numbers[1])
            if what == "token ids":
                return ValueError(
                    f"Token ids must be in [0, {top}]: the teacher's and the student's "
                    f"vocabulary has {top + 1} tokens, but a batch holds ids from {lowest} "
                    f"to {highest} (largest id {highest}). Tokenize the data with the "
                    "models' tokenizer."
                )
            return ValueError(
                f"Labels must be class ids in [0, {top}] (the models have {top + 1} classes), "
                f"but a batch holds labels from {lowest} to {highest}. Check the label "
                "column and the models' `num_classes`."
            )
        return None

    def validate_dataset(self, dataset):
        """Returns `dataset` with every batch checked in the input pipeline.

        `fit` and `evaluate` check token ids (in `[0, vocabulary_size)`) and
        class labels (in `[0, num_classes)`) in the training step, outside
        its XLA-compiled part. On TPU the whole step is one XLA program,
        which cannot check; map the checks into the input pipeline instead,
        which runs on the host. A failed check raises `ValueError` from
        `fit` (`tf.errors.InvalidArgumentError` when iterating directly).

        Example:
        ```python
        train_ds = distiller.validate_dataset(train_ds)
        distiller.fit(train_ds, epochs=3)
        ```
        """

        def check(*element):
            data = element[0] if len(element) == 1 else element
            x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
            with tf.control_dependencies(self._input_checks(x, y, in_pipeline=True)):
                return keras.tree.map_structure(_identity, data)

        return dataset.map(check)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError("The Distiller does not support sample weights.")
        context = tf.distribute.get_replica_context()
        replica_id = context.replica_id_in_sync_group if context is not None else 0
        # Everything downstream reads the inputs through these identities, so
        # nothing runs on ids or labels that failed the checks.
        with tf.control_dependencies(self._input_checks(x, y)):
            x, y = keras.tree.map_structure(_identity, (x, y))
            step = tf.identity(self.optimizer.iterations.value)
        gradients, logs, student_logits = self._step_function(x, y, step, replica_id)
        self.optimizer.apply_gradients(zip(gradients, self.student.trainable_variables))
        for name, (value, weight) in logs.items():
            self.trackers[name].update_state(value, sample_weight=weight)
        if y is not None:
            self.compute_metrics(x, y, student_logits)
        return self._for_reduction(self._step_logs(y is not None))

    def _loss_and_gradients(self, x, y, step, replica_id):
        """Per-replica losses and the gradients of their scaled sum."""
        with tf.GradientTape() as tape:
            total, logs, student_logits, _ = self.step_losses(x, y, step, replica_id)
            # As Keras's own train_step: a `LossScaleOptimizer` (mixed_float16)
            # needs the scaled loss; its `apply_gradients` unscales them and
            # skips the step when they are not finite.
            total = self.optimizer.scale_loss(total)
        gradients = tape.gradient(total, self.student.trainable_variables)
        return gradients, logs, student_logits

    def step_losses(self, x, y, step, replica_id=0):
        """The losses of one step on one replica.

        Returns `(scaled_total, logs, student_logits, outputs)`: the total loss
        divided by the global batch size (differentiate it), a dict of
        `name: (value, weight)` for the trackers, the student's clean
        logits, and each augmentation's `AugmentationOutput` by name. Call it
        under a `tf.GradientTape` to get gradients.
        """
        token_ids, padding_mask, segment_ids = unpack_inputs(x, self.pad_token_id)
        padding_mask = ops.cast(padding_mask, "bool")
        batch_size = token_ids.shape[0]
        if batch_size is None:
            raise ValueError(
                "The Distiller needs batches of a static size: batch the dataset with "
                "`drop_remainder=True` and a fixed sequence length. Under "
                "MultiWorkerMirroredStrategy, tf.distribute hides the batch size of finite "
                "datasets (it allows a last partial batch): repeat the dataset and pass "
                "`steps_per_epoch` to fit()."
            )
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        groups_per_replica = batch_size // (self.mix_group_size or batch_size)

        teacher_logits = ops.stop_gradient(
            self.teacher_view(
                {"token_ids": token_ids, "padding_mask": padding_mask, "segment_ids": segment_ids}
                if segment_ids is not None
                else {"token_ids": token_ids, "padding_mask": padding_mask},
                training=self.teacher_dropout,
            )
        )
        student_embeddings = self.student_view.embed_tokens(token_ids)
        needs_gradient = any(a.needs_clean_gradient for a in self.augmentation_list)
        with tf.GradientTape(watch_accessed_variables=False) as embedding_tape:
            embedding_tape.watch(student_embeddings)
            student_logits = self.student_view.call_from_embeddings(
                student_embeddings, padding_mask, segment_ids, training=True
            )
            distillation = self.distillation_loss_weight * losses.distillation_distance(
                student_logits, teacher_logits, self.distillation_loss, self.temperature
            )
            per_example = distillation
            student_part = None
            if y is not None:
                student_part = self.student_loss_weight * losses.student_loss(
                    student_logits, y, self.task
                )
                per_example = per_example + student_part
            clean_sum = ops.sum(per_example)
        clean_gradient = None
        if needs_gradient:
            clean_gradient = ops.stop_gradient(embedding_tape.gradient(clean_sum, student_embeddings))

        context = augmentations_lib.StepContext(
            teacher=self.teacher_view,
            student=self.student_view,
            settings=self.settings,
            token_ids=token_ids,
            padding_mask=padding_mask,
            segment_ids=segment_ids,
            labels=y,
            teacher_logits=teacher_logits,
            student_embeddings=student_embeddings,
            clean_gradient=clean_gradient,
            step_seed=tf.random.experimental.stateless_fold_in(
                tf.constant([self.seed, 0], dtype="int64"), ops.cast(step, "int64")
            ),
            group_offset=ops.cast(replica_id, "int32") * groups_per_replica,
        )
        logs = {"distillation_loss": (ops.mean(distillation), 1.0)}
        if student_part is not None:
            logs["student_loss"] = (ops.mean(student_part), 1.0)
        outputs = {}
        for index, augmentation in enumerate(self.augmentation_list):
            output = augmentation.compute(context.for_purpose(index + 1))
            outputs[augmentation.name] = output
            per_example = per_example + augmentation.weight * output.loss
            logs[f"{augmentation.name}_loss"] = (ops.mean(output.loss), 1.0)
            if output.token_ids is not None:
                mask = ops.cast(output.padding_mask, "float32")
                changed = ops.cast(output.token_ids != ops.cast(token_ids, "int32"), "float32")
                real = ops.sum(mask)
                logs[f"{augmentation.name}_token_change_rate"] = (
                    ops.sum(changed * mask) / ops.maximum(real, 1.0),
                    real,
                )
        logs["loss"] = (ops.mean(per_example), 1.0)
        scaled_total = ops.sum(per_example) / float(batch_size * replicas)
        return scaled_total, logs, student_logits, outputs

    def project(self, embeddings, embedding_matrix, padding_mask):
        """The Distiller's `EmbeddingProjection` (special tokens excluded)."""
        return self.projection(embeddings, embedding_matrix, padding_mask)

    def augment(self, x, y=None, step=0):
        """Eagerly builds the augmented batches of `x` (for inspection).

        Returns a dict `name: AugmentationOutput`; token-producing
        augmentations carry `token_ids`, to detokenize and read.
        """
        x, y = keras.tree.map_structure(_as_tensor, (x, y))
        with tf.GradientTape():
            _, _, _, outputs = self.step_losses(x, y, ops.convert_to_tensor(step))
        return outputs

    # --- evaluation -----------------------------------------------------------
    def test_step(self, data):
        """Evaluates the student alone; the teacher is not run."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError("The Distiller does not support sample weights.")
        with tf.control_dependencies(self._input_checks(x, y)):
            x, y = keras.tree.map_structure(_identity, (x, y))
        student_logits = self.student_view(x, training=False)
        logs = {}
        if y is not None:
            loss = ops.mean(losses.student_loss(student_logits, y, self.task))
            for name in ("loss", "student_loss"):
                self.trackers[name].update_state(loss)
                logs[name] = self.trackers[name].result()
            self.compute_metrics(x, y, student_logits)
            for name, value in super().get_metrics_result().items():
                if name not in self.trackers:
                    logs[name] = value
        return self._for_reduction(logs)

    def _for_reduction(self, logs):
        """Logs as `[1]` tensors under a multi-worker strategy.

        Keras 3 reduces the logged values of a multi-worker step with
        `strategy.reduce("MEAN", value, axis=0)`, which fails on scalars
        (tensorflow/tensorflow#72388); `[1]` tensors reduce to the scalar mean.
        """
        strategy = self.distribute_strategy
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
            strategy.extended._in_multi_worker_mode()
        ):
            return {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    # --- serialization --------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "teacher": keras.saving.serialize_keras_object(self.teacher),
                "student": keras.saving.serialize_keras_object(self.student),
                "augmentations": [keras.saving.serialize_keras_object(a) for a in self.augmentation_list],
                "distillation_loss": self.distillation_loss,
                "temperature": self.temperature,
                "student_loss_weight": self.student_loss_weight,
                "distillation_loss_weight": self.distillation_loss_weight,
                "task": self.task,
                "teacher_dropout": self.teacher_dropout,
                "similarity": self.similarity,
                "projection_chunk_size": self.projection_chunk_size,
                "mix_group_size": self.mix_group_size,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["teacher"] = keras.saving.deserialize_keras_object(config["teacher"])
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        config["augmentations"] = [keras.saving.deserialize_keras_object(a) for a in config["augmentations"]]
        return cls(**config)


def _as_tensor(value):
    return None if value is None else ops.convert_to_tensor(value)


def _identity(value):
    return None if value is None else tf.identity(value)


class _RequireBatches(keras.callbacks.Callback):
    """Raises at the end of an epoch that trained on no batch (empty data)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._seen = False

    def on_train_batch_end(self, batch, logs=None):
        self._seen = True

    def on_epoch_end(self, epoch, logs=None):
        if not self._seen:
            raise ValueError(_EMPTY_DATA.format(where=f" in epoch {epoch + 1}"))
