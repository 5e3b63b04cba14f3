"""Knowledge distillation with AugPro and the paper's baselines.

The `Distiller` computes the losses of a step; the loop is Keras's (see
docs/architecture.md for the modules around it).
"""

import keras
import tensorflow as tf
from keras import ops

from augpro_keras import augmentations as augmentations_lib
from augpro_keras import input_checks
from augpro_keras import losses
from augpro_keras import settings as settings_lib
from augpro_keras import text_inputs
from augpro_keras.api_export import export
from augpro_keras.models.protocol import as_distillable
from augpro_keras.models.protocol import check_shared_vocabulary
from augpro_keras.models.protocol import unpack_inputs
from augpro_keras.pipeline_model import PipelineModel
from augpro_keras.replicas import for_reduction

@export
class Distiller(settings_lib.SettingAttributes, PipelineModel):
    """Distils a teacher into a student with AugPro (or a baseline) augmentation.

    Every training step computes the knowledge-distillation loss of the real
    batch (Eq. 4 of the paper) and, for each augmentation, builds one
    augmented batch from it and adds its loss `L_Aug`:

    `L = w_s * CE(g(x), y) + w_d * d(g(x), f(x)) + sum_a weight_a * L_a`

    Without labels (the paper's Table 2) the CE terms are left out. `d` is
    the KL divergence of the temperature-softened distributions times `T^2`,
    or the MSE of the logits. Only the student trains.

    Per-example losses are divided by the global batch size, so the step is
    the same under any `tf.distribute` strategy; logs are unscaled means.
    `compile(jit_compile=True)` runs the per-replica losses and gradients
    under XLA, the optimizer update outside (`TPUStrategy` compiles the
    whole step). Batches need static shapes. Random draws are stateless,
    from `seed`, the step and the replica (or, with `mix_group_size`, the
    global number of the group of rows). `fit` resumes from a
    `DistillationBackup`, tokenizes raw strings and refuses bad batches
    (see `PipelineModel`, `validate_dataset`, `docs/reliability.md`).

    Args:
        teacher: a `DistillableClassifier` or keras-hub `TextClassifier`
            (fine-tuned); frozen here.
        student: the same kinds of model, with the same vocabulary.
        augmentations: instances from `augpro_keras.augmentations`, names
            ("mixup", "augpro_mix", "tmix", "fgsm", "augpro_fgsm", "knn",
            "random_tokens") or config dicts. Empty (default): plain KD.
        distillation_loss: "kl" (default) or "mse".
        temperature: temperature of "kl" (> 0).
        student_loss_weight: weight `w_s` of the loss on labels (CE, or
            squared error for regression). The paper's Eq. 4 uses 1.
        distillation_loss_weight: weight `w_d` of `d`. The paper uses 1.
        task: "classification" or "regression" (one output; use "mse").
        teacher_dropout: run the teacher with dropout (the paper: on).
        similarity: similarity of the projections ("cosine", "dot", "l2").
        projection_chunk_size: vocabulary rows per chunk in projections.
        projection_search_dtype: "float32" or "bfloat16" (faster on TPUs and
            AMX CPUs) for the projections' similarity search.
        projection_exact: with "bfloat16", return exactly the float32 answer
            (candidates re-scored in float32 within an error bound).
        mix_group_size: `None` or the size of the MixUp partner groups.
        seed: int seed of the random draws (`None`: a random one).
        special_token_ids, pad_token_id: for keras-hub tasks, the ids that
            projections never produce and the padding id; `None` reads them
            from the tasks' tokenizers.
        **kwargs: standard `keras.Model` arguments.

    The settings read (and, for the loss settings, replace) the frozen
    `settings` (`augpro_keras.augmentations.DistillationSettings`).

    Call arguments:
        inputs: a dict of `token_ids`, `padding_mask` (and `segment_ids`), as
            the student takes them: calling the Distiller runs the student.
        training: whether the student runs with dropout.

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

    def __init__(self, teacher, student, augmentations=(), distillation_loss="kl", temperature=1.0,
                 student_loss_weight=1.0, distillation_loss_weight=1.0, task="classification",
                 teacher_dropout=True, similarity="cosine", projection_chunk_size=None,
                 projection_search_dtype="float32", projection_exact=True, mix_group_size=None,
                 seed=None, special_token_ids=None, pad_token_id=None, name="distiller",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        # === Models ===
        # The step computes through the protocol (keras-hub tasks arrive in an adapter).
        self.teacher_view = as_distillable(teacher, "teacher", special_token_ids, pad_token_id)
        self.student_view = as_distillable(student, "student", special_token_ids, pad_token_id)
        check_shared_vocabulary(teacher, student, self.teacher_view, self.student_view)
        self.num_classes = settings_lib.output_count(self.teacher_view, self.student_view)
        self.teacher = teacher
        # Setting `trainable` does not reach the sublayers when the flag is
        # already False (a teacher rebuilt by `from_config`): set it twice.
        self.teacher.trainable = True
        self.teacher.trainable = False
        self.student = student

        # === Settings and augmentations ===
        self.settings = settings_lib.validated_settings(
            self.teacher_view, self.student_view, distillation_loss=distillation_loss,
            temperature=temperature, student_loss_weight=student_loss_weight,
            distillation_loss_weight=distillation_loss_weight, task=task,
            teacher_dropout=teacher_dropout, similarity=similarity,
            projection_chunk_size=projection_chunk_size,
            projection_search_dtype=projection_search_dtype, projection_exact=projection_exact,
            mix_group_size=mix_group_size, seed=seed,
        )
        self.projection = self.settings.projection
        self.augmentation_list = settings_lib.augmentation_list(
            augmentations, self.teacher_view, self.student_view
        )

        # === Step state ===
        names = ["loss", "student_loss", "distillation_loss"]
        names += [n for a in self.augmentation_list for n in a.log_names()]
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.xla_step = False
        self._step_function = self._loss_and_gradients
        self._steps_to_skip = 0  # Set by `DistillationBackup` on a mid-epoch resume.
        self._pending_metric_values = None
        # Teacher and student arrive built and the projection has no weights.
        # Not `self.build()`: Keras's build wrapper would lock the state.
        self.projection.built = True
        self.built = True

    # === Keras API ===
    def build(self, input_shape=None):
        self.projection.built = True
        self.built = True

    def call(self, inputs, training=False):
        """Runs the student."""
        return self.student_view(inputs, training=training)

    def compile(self, optimizer="adam", metrics=None, jit_compile="auto", **kwargs):
        """As `keras.Model.compile`, without `loss` (the Distiller computes its own).

        `jit_compile=True` compiles the per-replica losses and gradients with
        XLA (under any strategy); "auto" does so when a GPU is visible.
        """
        if kwargs.pop("loss", None) is not None:
            raise ValueError(
                "The Distiller computes its own losses (student loss, distillation loss and "
                "augmentation losses); do not pass `loss` to compile()."
            )
        if jit_compile == "auto":
            jit_compile = bool(tf.config.list_physical_devices("GPU"))
        self.xla_step = bool(jit_compile) and not kwargs.get("run_eagerly", False)
        self._step_function = self._loss_and_gradients
        if self.xla_step:
            self._step_function = tf.function(self._loss_and_gradients, jit_compile=True)
        super().compile(optimizer=optimizer, metrics=metrics, jit_compile=False, **kwargs)
        self._own_jit_compile = jit_compile  # Saved by `get_compile_config`.

    # === Data ===
    def preprocess(self, data):
        """`data` tokenized in the input pipeline when it is a dataset of strings.

        With the student's preprocessor when it gives every input that the
        two models take, else the teacher's (`text_inputs.preprocessor_for`).
        Other data is returned as it is.
        """
        if not text_inputs.holds_text(data):
            return data
        return text_inputs.preprocess(data, text_inputs.preprocessor_for(
            self.teacher, self.student, self.teacher_view, self.student_view))

    def _input_checks(self, x, y, in_pipeline=False):
        """`input_checks.batch_checks` of a batch (none in TPU programs: `validate_dataset`)."""
        if not in_pipeline and input_checks.in_tpu_program():
            return []
        token_ids, _, _ = unpack_inputs(x)
        return input_checks.batch_checks(
            token_ids, y, self.student_view.vocabulary_size, self.task, self.num_classes
        )

    # === The step ===
    def train_step(self, data):
        x, y = self._checked_batch(data)
        step = tf.identity(self.optimizer.iterations.value)
        context = tf.distribute.get_replica_context()
        replica_id = context.replica_id_in_sync_group if context is not None else 0
        # Under XLA when compiled so (`compile(jit_compile=True)`); the
        # optimizer update stays outside, which every strategy allows.
        gradients, logs, student_logits = self._step_function(x, y, step, replica_id)
        self.optimizer.apply_gradients(zip(gradients, self.student.trainable_variables))
        for name, (value, weight) in logs.items():
            self.trackers[name].update_state(value, sample_weight=weight)
        if y is not None:
            self.compute_metrics(x, y, student_logits)
        return for_reduction(self.distribute_strategy, self._step_logs(y is not None))

    def _loss_and_gradients(self, x, y, step, replica_id):
        """Per-replica losses and the gradients of their scaled sum."""
        with tf.GradientTape() as tape:
            total, logs, student_logits, _ = self.step_losses(x, y, step, replica_id)
            # As Keras's own train_step: a `LossScaleOptimizer` (mixed_float16)
            # needs the scaled loss; its `apply_gradients` unscales them and
            # skips the step when they are not finite.
            total = self.optimizer.scale_loss(total)
        return tape.gradient(total, self.student.trainable_variables), logs, student_logits

    def _step_logs(self, labeled):
        if labeled:
            return self.get_metrics_result()
        # Without labels there is no student loss and no accuracy to report.
        return {n: t.result() for n, t in self.trackers.items() if n != "student_loss"}

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
        batch_size = input_checks.static_batch_size(token_ids)
        inputs = {"token_ids": token_ids, "padding_mask": padding_mask, "segment_ids": segment_ids}
        inputs = {k: v for k, v in inputs.items() if v is not None}
        teacher_logits = ops.stop_gradient(self.teacher_view(inputs, training=self.teacher_dropout))

        # === L_KD on the real batch (Eq. 4) ===
        student_embeddings = self.student_view.embed_tokens(token_ids)
        with tf.GradientTape(watch_accessed_variables=False) as embedding_tape:
            embedding_tape.watch(student_embeddings)
            student_logits = self.student_view.call_from_embeddings(
                student_embeddings, padding_mask, segment_ids, training=True
            )
            distillation = self.distillation_loss_weight * losses.distillation_distance(
                student_logits, teacher_logits, self.distillation_loss, self.temperature
            )
            per_example = distillation
            logs = {"distillation_loss": (ops.mean(distillation), 1.0)}
            if y is not None:
                student_part = self.student_loss_weight * losses.student_loss(student_logits, y, self.task)
                per_example = per_example + student_part
                logs["student_loss"] = (ops.mean(student_part), 1.0)
            clean_sum = ops.sum(per_example)
        clean_gradient = None
        if any(a.needs_clean_gradient for a in self.augmentation_list):
            clean_gradient = ops.stop_gradient(embedding_tape.gradient(clean_sum, student_embeddings))

        # === L_Aug of each augmentation ===
        groups_per_replica = batch_size // (self.mix_group_size or batch_size)
        context = augmentations_lib.StepContext(
            teacher=self.teacher_view, student=self.student_view, settings=self.settings,
            token_ids=token_ids, padding_mask=padding_mask, segment_ids=segment_ids, labels=y,
            teacher_logits=teacher_logits, student_embeddings=student_embeddings,
            clean_gradient=clean_gradient,
            step_seed=tf.random.experimental.stateless_fold_in(
                tf.constant([self.seed, 0], dtype="int64"), ops.cast(step, "int64")
            ),
            group_offset=ops.cast(replica_id, "int32") * groups_per_replica,
        )
        outputs = {}
        for index, augmentation in enumerate(self.augmentation_list):
            output = augmentation.compute(context.for_purpose(index + 1))
            outputs[augmentation.name] = output
            per_example = per_example + augmentation.weight * output.loss
            logs[f"{augmentation.name}_loss"] = (ops.mean(output.loss), 1.0)
            if output.token_ids is not None:
                logs[f"{augmentation.name}_token_change_rate"] = output.token_change_rate(token_ids)
            for key, pair in output.diagnostics.items():
                logs[f"{augmentation.name}_{key}"] = pair
        logs["loss"] = (ops.mean(per_example), 1.0)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return ops.sum(per_example) / float(batch_size * replicas), logs, student_logits, outputs

    def project(self, embeddings, embedding_matrix, padding_mask):
        """The Distiller's `EmbeddingProjection` (special tokens excluded)."""
        return self.settings.project(embeddings, embedding_matrix, padding_mask)

    def augment(self, x, y=None, step=0):
        """Eagerly builds the augmented batches of `x` (for inspection).

        Returns a dict `name: AugmentationOutput`; token-producing
        augmentations carry `token_ids`, to detokenize and read.
        """
        x, y = keras.tree.map_structure(_as_tensor, (x, y))
        with tf.GradientTape():
            _, _, _, outputs = self.step_losses(x, y, ops.convert_to_tensor(step))
        return outputs

    def test_step(self, data):
        """Evaluates the student alone; the teacher is not run."""
        x, y = self._checked_batch(data)
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
        return for_reduction(self.distribute_strategy, logs)

    # === Serialization ===
    def get_config(self):
        config = super().get_config()
        config["teacher"] = keras.saving.serialize_keras_object(self.teacher)
        config["student"] = keras.saving.serialize_keras_object(self.student)
        config["augmentations"] = [keras.saving.serialize_keras_object(a) for a in self.augmentation_list]
        config.update({name: getattr(self.settings, name) for name in settings_lib.ARGUMENTS})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["teacher"], config["student"] = text_inputs.deserialize_pair(
            config["teacher"], config["student"])
        config["augmentations"] = [keras.saving.deserialize_keras_object(a) for a in config["augmentations"]]
        return cls(**config)


def _as_tensor(value):
    return None if value is None else ops.convert_to_tensor(value)

