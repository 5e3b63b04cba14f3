"""The Distiller's constructor arguments, checked and frozen.

`validated_settings` turns the arguments of `Distiller(...)` into the frozen
`DistillationSettings` that the step and every augmentation read; it raises
a `ValueError` that names what was given and what is allowed, as
`keras.distillation` does. `augmentation_list` resolves the augmentations
and checks them against the models.
"""

import dataclasses
import random

from augpro_keras import augmentations as augmentations_lib
from augpro_keras import losses
from augpro_keras.layers.embedding_projection import EmbeddingProjection


#: The settings that are constructor arguments of the Distiller (and config entries).
ARGUMENTS = (
    "distillation_loss", "temperature", "student_loss_weight", "distillation_loss_weight",
    "task", "teacher_dropout", "similarity", "projection_chunk_size", "projection_search_dtype",
    "projection_exact", "mix_group_size", "seed", "special_token_ids", "pad_token_id",
)


def _check_number(name, value, low=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise ValueError(f"`{name}` must be a number >= {low}. Received: {name}={value!r}")
    return float(value)


def output_count(teacher, student):
    """The models' number of outputs (`None` when unknown); refuses a mismatch.

    Args:
        teacher, student: the models through the `DistillableClassifier`
            protocol.
    """
    teacher_classes = getattr(teacher, "num_classes", None)
    student_classes = getattr(student, "num_classes", None)
    if teacher_classes is not None and student_classes is not None and teacher_classes != student_classes:
        raise ValueError(
            f"Teacher and student must have the same number of outputs: the teacher has "
            f"{teacher_classes}, the student has {student_classes}."
        )
    return student_classes


def validated_settings(
    teacher,
    student,
    distillation_loss="kl",
    temperature=1.0,
    student_loss_weight=1.0,
    distillation_loss_weight=1.0,
    task="classification",
    teacher_dropout=True,
    similarity="cosine",
    projection_chunk_size=None,
    projection_search_dtype="float32",
    projection_exact=True,
    mix_group_size=None,
    seed=None,
):
    """The `DistillationSettings` of a Distiller, every argument checked.

    Args:
        teacher, student: the models through the `DistillableClassifier`
            protocol (for the special token ids and the pad id).
        The other arguments are those of `augpro_keras.Distiller`; `seed=None`
        draws a random seed.

    Returns:
        A frozen `augpro_keras.augmentations.DistillationSettings`, whose
        `projection` excludes the special tokens of both models.

    Example:
    ```python
    settings = validated_settings(teacher_view, student_view, temperature=2.0)
    settings.temperature  # 2.0
    ```
    """
    checked = _checked(
        distillation_loss=distillation_loss,
        temperature=temperature,
        student_loss_weight=student_loss_weight,
        distillation_loss_weight=distillation_loss_weight,
        task=task,
        teacher_dropout=teacher_dropout,
        mix_group_size=mix_group_size,
        seed=random.randrange(2**31) if seed is None else seed,
    )
    special_token_ids = tuple(sorted(set(teacher.special_token_ids) | set(student.special_token_ids)))
    projection = EmbeddingProjection(
        similarity=similarity,
        chunk_size=projection_chunk_size,
        search_dtype=projection_search_dtype,
        exact=projection_exact,
        excluded_token_ids=special_token_ids,
        pad_token_id=student.pad_token_id,
        name="projection",
    )
    return augmentations_lib.DistillationSettings(
        projection=projection,
        special_token_ids=special_token_ids,
        pad_token_id=student.pad_token_id,
        similarity=similarity,
        projection_chunk_size=projection_chunk_size,
        projection_search_dtype=projection.search_dtype,
        projection_exact=projection.exact,
        **checked,
    )


#: The settings that `with_changes` may change (the others define the projection).
CHANGEABLE = (
    "distillation_loss", "temperature", "student_loss_weight", "distillation_loss_weight",
    "task", "teacher_dropout", "mix_group_size", "seed",
)


def with_changes(settings, **changes):
    """A copy of the frozen `settings` with `changes`, checked as `validated_settings` does."""
    unknown = sorted(set(changes) - set(CHANGEABLE))
    if unknown:
        raise ValueError(f"Settings {unknown} cannot change after construction; allowed: {list(CHANGEABLE)}.")
    arguments = {name: getattr(settings, name) for name in CHANGEABLE}
    arguments.update(changes)
    return dataclasses.replace(settings, **_checked(**arguments))


def setting_property(name):
    """A property of a model reading `self.settings.<name>`.

    For the settings in `CHANGEABLE`, assigning one replaces the frozen
    settings by a checked copy (`with_changes`); the others are read-only.
    """

    def set_setting(self, value):
        self.settings = with_changes(self.settings, **{name: value})

    setter = set_setting if name in CHANGEABLE else None
    return property(lambda self: getattr(self.settings, name), setter, doc=f"`settings.{name}`.")


class SettingAttributes:
    """Mixin: every name of `ARGUMENTS` as a `setting_property` of `self.settings`.

    Example:
    ```python
    class Distiller(SettingAttributes, keras.Model): ...
    distiller.temperature = 2.0  # A checked copy of the frozen settings.
    ```
    """


for _name in ARGUMENTS:
    setattr(SettingAttributes, _name, setting_property(_name))
del _name


def _checked(distillation_loss, temperature, student_loss_weight, distillation_loss_weight,
             task, teacher_dropout, mix_group_size, seed):
    distillation_loss = losses.validate_distance(distillation_loss)
    temperature = _check_number("temperature", temperature)
    if temperature == 0:
        raise ValueError("`temperature` must be > 0. Received: temperature=0")
    validated_task = losses.validate_task(task)
    if validated_task == "regression" and distillation_loss != "mse":
        raise ValueError(
            "A regression task has one output; distil it with distillation_loss='mse' "
            f"(received {distillation_loss!r})."
        )
    if not isinstance(teacher_dropout, bool):
        raise ValueError(f"`teacher_dropout` must be True or False. Received: {teacher_dropout!r}")
    if mix_group_size is not None and (
        isinstance(mix_group_size, bool) or not isinstance(mix_group_size, int) or mix_group_size < 1
    ):
        raise ValueError(
            f"`mix_group_size` must be None or a positive integer. Received: {mix_group_size!r}"
        )
    return {
        "distillation_loss": distillation_loss,
        "temperature": temperature,
        "student_loss_weight": _check_number("student_loss_weight", student_loss_weight),
        "distillation_loss_weight": _check_number("distillation_loss_weight", distillation_loss_weight),
        "task": validated_task,
        "teacher_dropout": teacher_dropout,
        "mix_group_size": mix_group_size,
        "seed": int(seed),
    }


def augmentation_list(identifiers, teacher, student):
    """The augmentations of `identifiers` (instances, names or configs), checked.

    Names must be unique (they name the logs), and each augmentation checks
    itself against the models (`Augmentation.validate`).
    """
    augmentations = [augmentations_lib.get(a) for a in identifiers]
    names = [a.name for a in augmentations]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"Augmentation names must be unique; {duplicates} appear more than once. "
            "Give each instance its own `name=`."
        )
    for augmentation in augmentations:
        augmentation.validate(teacher, student)
    return augmentations
