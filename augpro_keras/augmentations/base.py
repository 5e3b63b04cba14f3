"""What every augmentation of the Distiller shares.

An augmentation turns the real batch of one training step into one augmented
batch and returns its loss `L_Aug` per example. It sees the step through a
`StepContext`: the teacher and the student (through the
`DistillableClassifier` protocol), the Distiller's frozen
`DistillationSettings`, the batch, the clean teacher logits, the student's
word embeddings (inside the gradient tape), the gradient of the clean loss
with respect to them (for FGSM) and a stateless random seed per purpose.
Augmentations never see the Distiller itself.
"""

import dataclasses
import difflib

import keras
import tensorflow as tf
from keras import ops

from augpro_keras import losses

_REGISTRY = {}

#: Diagnostics of an augmentation whose teacher labels an augmented batch:
#: the mean max softmax probability of the teacher there, and the share of
#: rows whose teacher label (argmax) differs from the teacher's label on the
#: clean sentence (the primary one, for mixing).
TEACHER_DIAGNOSTICS = ("teacher_confidence", "teacher_label_flip_rate")


def register(cls):
    """Makes an augmentation class available by its `default_name`."""
    _REGISTRY[cls.default_name] = cls
    return keras.saving.register_keras_serializable(package="augpro_keras")(cls)


def available():
    return tuple(sorted(_REGISTRY))


def get_class(name):
    """The augmentation class registered under `name` (no instance is built)."""
    key = name.lower().replace("-", "_").replace("+", "_")
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(key, available(), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"Unknown augmentation {name!r}.{hint} Allowed names: {', '.join(available())}."
    )


def get(identifier):
    """Returns an augmentation from an instance, a name or a config dict."""
    if isinstance(identifier, Augmentation):
        return identifier
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, str):
        return get_class(identifier)()
    raise ValueError(
        "An augmentation must be an `Augmentation` instance, a name or a config "
        f"dict. Received: {identifier!r} of type {type(identifier).__name__}"
    )


@dataclasses.dataclass
class AugmentationOutput:
    """The result of one augmentation in one step.

    Attributes:
        loss: float32 `[B]`, the augmentation's loss per example.
        token_ids: int32 `[B, L]` of the augmented sentences, for augmentations
            that produce real tokens (else `None`).
        padding_mask: bool `[B, L]` of `token_ids`.
        diagnostics: `name: (value, weight)` of extra scalars to log as
            `<augmentation name>_<name>` (running means weighted by `weight`);
            every name must be in the augmentation's `diagnostic_names()`.
    """

    loss: object
    token_ids: object = None
    padding_mask: object = None
    diagnostics: dict = dataclasses.field(default_factory=dict)

    def token_change_rate(self, original_token_ids):
        """`(rate, positions)`: the share of real positions whose token changed.

        `positions` is the number of real (non-padding) positions, the
        weight of `rate` in a running mean.
        """
        mask = ops.cast(self.padding_mask, "float32")
        changed = ops.cast(self.token_ids != ops.cast(original_token_ids, "int32"), "float32")
        positions = ops.sum(mask)
        return ops.sum(changed * mask) / ops.maximum(positions, 1.0), positions


class Augmentation:
    """Base class: subclasses set `default_name` and implement `compute`.

    Args:
        name: the name used in logs (`<name>_loss`); defaults to the class's
            `default_name`.
        weight: multiplier of this augmentation's loss in the total loss.
    """

    default_name = None
    needs_clean_gradient = False  # needs the gradient of the clean loss (FGSM)
    produces_tokens = False  # returns token ids (logged: token change rate)

    def __init__(self, name=None, weight=1.0):
        self.name = name or self.default_name
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"`weight` must be a number >= 0. Received: weight={weight!r}")
        self.weight = float(weight)

    def log_names(self):
        """The names this augmentation logs: `<name>_loss`, `<name>_token_change_rate`
        (token-producing ones) and `<name>_<diagnostic>` for each of `diagnostic_names()`."""
        names = [f"{self.name}_loss"]
        if self.produces_tokens:
            names.append(f"{self.name}_token_change_rate")
        return names + [f"{self.name}_{d}" for d in self.diagnostic_names()]

    def diagnostic_names(self):
        """The keys of `AugmentationOutput.diagnostics` this augmentation returns.

        Token-producing augmentations return `TEACHER_DIAGNOSTICS`, which
        `StepContext.distill_on_tokens` fills; one that builds its own
        output adds them with `StepContext.teacher_diagnostics`.
        """
        return TEACHER_DIAGNOSTICS if self.produces_tokens else ()

    def validate(self, teacher, student):
        """Checks the augmentation against the models; raises `ValueError`."""

    def compute(self, context):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name, "weight": self.weight}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@dataclasses.dataclass(frozen=True)
class DistillationSettings:
    """The Distiller's settings that augmentations read (frozen).

    Attributes:
        projection: the `EmbeddingProjection` (special tokens excluded).
        special_token_ids: sorted tuple of the ids projections never produce.
        pad_token_id: the padding id.
        similarity: similarity of projections and neighbour searches.
        projection_chunk_size: vocabulary rows per chunk of `projection`.
        projection_search_dtype: "float32" or "bfloat16", the dtype of the
            projection's similarity search.
        projection_exact: whether a bfloat16 search returns exactly the
            float32 answer.
        distillation_loss: "kl" or "mse".
        temperature: temperature of "kl".
        student_loss_weight: weight of the student's loss on labels.
        distillation_loss_weight: weight of the distance `d`.
        task: "classification" or "regression".
        teacher_dropout: whether the teacher runs with dropout.
        mix_group_size: `None` or the size of the MixUp partner groups.
        seed: the int seed of the random draws.
    """

    projection: object
    special_token_ids: tuple
    pad_token_id: int
    similarity: str = "cosine"
    projection_chunk_size: object = None
    projection_search_dtype: str = "float32"
    projection_exact: bool = True
    distillation_loss: str = "kl"
    temperature: float = 1.0
    student_loss_weight: float = 1.0
    distillation_loss_weight: float = 1.0
    task: str = "classification"
    teacher_dropout: bool = True
    mix_group_size: object = None
    seed: int = 0

    def project(self, embeddings, embedding_matrix, padding_mask):
        """Projects embeddings to the most similar real (non-special) tokens."""
        return self.projection(embeddings, embedding_matrix, padding_mask)


@dataclasses.dataclass(frozen=True)
class StepContext:
    """Everything an augmentation may use in one training step (one replica).

    Attributes:
        teacher, student: the models through the `DistillableClassifier`
            protocol (keras-hub tasks arrive wrapped in a
            `TextClassifierAdapter`).
        settings: the `DistillationSettings`.
        token_ids, padding_mask, segment_ids, labels: the real batch
            (`segment_ids` and `labels` may be `None`).
        teacher_logits: the teacher's logits on the real batch.
        student_embeddings: the student's word embeddings of the batch,
            inside the step's gradient tape.
        clean_gradient: the gradient of the clean loss with respect to
            `student_embeddings` (only for augmentations that ask for it).
        step_seed: the stateless seed of this step.
        group_offset: the global number of this replica's first MixUp group.
        purpose: the augmentation's number in the step (seeds differ by it).
    """

    teacher: object
    student: object
    settings: DistillationSettings
    token_ids: object
    padding_mask: object
    segment_ids: object
    labels: object
    teacher_logits: object
    student_embeddings: object
    clean_gradient: object
    step_seed: object
    group_offset: object
    purpose: int = 0

    @property
    def has_labels(self):
        return self.labels is not None

    @property
    def batch_size(self):
        return self.token_ids.shape[0]

    def for_purpose(self, purpose):
        """The same context with another `purpose` (its own random draws)."""
        return dataclasses.replace(self, purpose=purpose)

    def seed(self, draw=0, group=0):
        """A stateless seed for one random draw of the current augmentation.

        Seeds differ for every step, augmentation (`purpose`), draw and group.

        `group` numbers the MixUp groups of this replica's batch (see the
        Distiller's `mix_group_size`); seeds depend on the global group
        number, so the same global batch mixes the same way on any number of
        replicas.
        """
        seed = tf.random.experimental.stateless_fold_in(self.step_seed, self.purpose)
        seed = tf.random.experimental.stateless_fold_in(seed, draw)
        return tf.random.experimental.stateless_fold_in(seed, self.group_offset + group)

    def teacher_embeddings(self):
        return self.teacher.embed_tokens(self.token_ids)

    def teacher_forward(self, fn):
        """Runs `fn(teacher_training)` for the teacher, without gradients."""
        return ops.stop_gradient(fn(self.settings.teacher_dropout))

    def teacher_logits_on(self, token_ids, padding_mask, segment_ids):
        return self.teacher_forward(
            lambda training: self.teacher.call_from_embeddings(
                self.teacher.embed_tokens(token_ids), padding_mask, segment_ids, training=training
            )
        )

    def student_logits_on(self, token_ids, padding_mask, segment_ids):
        return self.student.call_from_embeddings(
            self.student.embed_tokens(token_ids), padding_mask, segment_ids, training=True
        )

    def distance(self, student_logits, teacher_logits):
        s = self.settings
        return s.distillation_loss_weight * losses.distillation_distance(
            student_logits, teacher_logits, s.distillation_loss, s.temperature
        )

    def mixed_loss(self, student_logits, teacher_logits, partner_index, lam):
        """`L_MixUp`: CE against mixed labels (when labeled) plus `d`."""
        loss = self.distance(student_logits, teacher_logits)
        if self.has_labels:
            s = self.settings
            loss = loss + s.student_loss_weight * losses.mixed_student_loss(
                student_logits, self.labels, partner_index, lam, s.task
            )
        return loss

    def teacher_diagnostics(self, teacher_logits):
        """`TEACHER_DIAGNOSTICS` of the teacher's logits on an augmented batch.

        `teacher_confidence`: the mean over rows of the largest softmax
        probability (temperature 1); `teacher_label_flip_rate`: the share of
        rows whose argmax differs from the argmax of `self.teacher_logits`
        (the clean batch; both passes run with the teacher's dropout setting).
        Both weigh by the number of rows. A regression task has no labels
        to flip: both get weight 0 (they stay out of the running means).
        """
        rows = ops.cast(ops.shape(teacher_logits)[0], "float32")
        if self.settings.task == "regression":
            zero = ops.zeros((), "float32")
            return {name: (zero, zero) for name in TEACHER_DIAGNOSTICS}
        logits = ops.cast(teacher_logits, "float32")
        confidence = ops.mean(ops.max(ops.softmax(logits, axis=-1), axis=-1))
        clean = ops.argmax(ops.cast(self.teacher_logits, "float32"), axis=-1)
        flips = ops.mean(ops.cast(ops.argmax(logits, axis=-1) != clean, "float32"))
        return {"teacher_confidence": (confidence, rows), "teacher_label_flip_rate": (flips, rows)}

    def distill_on_tokens(self, token_ids, padding_mask):
        """`d(g(x'), f(x'))` on new token ids (Eqs. 6 and 7); segments follow the batch.

        Its diagnostics are `teacher_diagnostics` of the teacher on `x'`."""
        token_ids = ops.stop_gradient(token_ids)
        teacher_logits = self.teacher_logits_on(token_ids, padding_mask, self.segment_ids)
        student_logits = self.student_logits_on(token_ids, padding_mask, self.segment_ids)
        return AugmentationOutput(
            loss=self.distance(student_logits, teacher_logits),
            token_ids=token_ids,
            padding_mask=padding_mask,
            diagnostics=self.teacher_diagnostics(teacher_logits),
        )
