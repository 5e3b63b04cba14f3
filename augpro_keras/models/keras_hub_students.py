"""Students for keras-hub teachers: the teacher's first layers, or a smaller config.

Both keep the teacher's class and preprocessor (so its tokenizer and
vocabulary), which is what AugPro's projections need, and what a user
serves afterwards: a student is a keras-hub `TextClassifier` like the
teacher.

Example:
```python
teacher = keras_hub.models.TextClassifier.from_preset("my_teacher/")
student = student_from_teacher(teacher, num_layers=2)   # weights copied
small = student_from_config(teacher, num_layers=4, hidden_dim=256,
                            intermediate_dim=1024, num_heads=4)
```
"""

from augpro_keras.models.text_classifier_adapter import TextClassifierAdapter

_TASK_OWN_KEYS = ("backbone", "preprocessor", "name", "trainable", "dtype")


def _check_teacher(teacher):
    # The adapter's checks: a keras-hub TextClassifier on a functional backbone.
    TextClassifierAdapter(teacher, special_token_ids=(), pad_token_id=0)


def _task_like(teacher, backbone, name, dropout=None):
    """A task of the teacher's class and settings on `backbone`, sharing its preprocessor."""
    config = {k: v for k, v in teacher.get_config().items() if k not in _TASK_OWN_KEYS}
    if dropout is not None:
        config["dropout"] = dropout
    if "hidden_dim" in config and hasattr(backbone, "hidden_dim"):
        # RoBERTa-style heads size their pooled dense layer like the backbone.
        config["hidden_dim"] = backbone.hidden_dim
    return type(teacher)(backbone=backbone, preprocessor=teacher.preprocessor, name=name, **config)


def _backbone_like(teacher, overrides):
    config = dict(teacher.backbone.get_config())
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise ValueError(
            f"{type(teacher.backbone).__name__} has no setting {unknown}; its settings are "
            f"{sorted(k for k in config if k not in ('name', 'trainable', 'dtype'))}."
        )
    config.update(overrides)
    # A frozen teacher (inside a Distiller) has `trainable: False` in its
    # config; the student trains.
    config["trainable"] = True
    return type(teacher.backbone).from_config(config)


def student_from_teacher(teacher, num_layers, dropout=None, name="student"):
    """A student made of the teacher's first `num_layers` layers (DistilBERT-style).

    The student has the teacher's class, settings and preprocessor; every
    weight it has is copied from the teacher: the embeddings, the first
    `num_layers` transformer layers, the pooler and the classification head.
    (ALBERT shares its layers across calls; its student makes
    `num_layers` calls of the same shared weights.)

    Args:
        teacher: a keras-hub `TextClassifier`.
        num_layers: number of transformer layers to keep, in
            `[1, teacher layers]`.
        dropout: the student's dropout rate (backbone and head); `None`
            keeps the teacher's.
        name: the student's name.

    Returns:
        A keras-hub `TextClassifier` of the teacher's class.

    References:
        - [Sanh et al., 2019, "DistilBERT"](https://arxiv.org/abs/1910.01108)
          (a student initialised from the teacher's layers).
    """
    _check_teacher(teacher)
    depth = int(teacher.backbone.num_layers)
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or not 1 <= num_layers <= depth:
        raise ValueError(
            f"`num_layers` must be an integer in [1, {depth}] (the teacher has {depth} layers). "
            f"Received: {num_layers!r}"
        )
    overrides = {"num_layers": num_layers}
    if dropout is not None:
        overrides["dropout"] = dropout
    if "num_groups" in teacher.backbone.get_config():
        # ALBERT: layers come in groups of shared weights; keep the groups
        # that the first `num_layers` layers use.
        groups = teacher.backbone.num_groups
        overrides["num_groups"] = max(1, num_layers * groups // depth)
    backbone = _backbone_like(teacher, overrides)
    student = _task_like(teacher, backbone, name, dropout)
    _copy_matching_weights(teacher, student)
    return student


def student_from_config(teacher, name="student", dropout=None, **backbone_settings):
    """A randomly initialised student of the teacher's family and a smaller size.

    Args:
        teacher: a keras-hub `TextClassifier`.
        name: the student's name.
        dropout: the student's dropout rate (backbone and head); `None`
            keeps the teacher's.
        **backbone_settings: settings of the teacher's backbone to change
            (`num_layers`, `hidden_dim`, `intermediate_dim`, `num_heads`,
            ...). The vocabulary stays the teacher's.

    Returns:
        A keras-hub `TextClassifier` of the teacher's class, sharing its
        preprocessor.
    """
    _check_teacher(teacher)
    if "vocabulary_size" in backbone_settings:
        raise ValueError(
            "A student keeps the teacher's vocabulary (projections map tokens by id); do not "
            "set `vocabulary_size`."
        )
    if dropout is not None:
        backbone_settings = dict(backbone_settings, dropout=dropout)
    return _task_like(teacher, _backbone_like(teacher, backbone_settings), name, dropout)


def _copy_matching_weights(teacher, student):
    """Copies each student layer's weights from the teacher layer of the same name.

    keras-hub names the layers of a backbone and a task by role
    (`token_embedding`, `transformer_layer_0`, `pooled_dense`, `logits`, ...),
    so a shallower model of the same class has a same-named teacher layer for
    every layer it has.
    """
    for teacher_model, student_model in ((teacher.backbone, student.backbone), (teacher, student)):
        sources = {layer.name: layer for layer in teacher_model.layers}
        for layer in student_model.layers:
            if layer is student.backbone or not layer.weights:
                continue
            source = sources.get(layer.name)
            if source is None or [w.shape for w in source.weights] != [w.shape for w in layer.weights]:
                raise ValueError(
                    f"Cannot copy the weights of {type(student).__name__} layer {layer.name!r}: "
                    "the teacher has no layer of that name and shape."
                )
            layer.set_weights(source.get_weights())
