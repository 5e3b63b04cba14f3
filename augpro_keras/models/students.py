"""Student models for distillation: fresh BERTs, or BERTs cut from a teacher.

AugPro projects augmented embeddings back to token ids, which teacher and
student then both read, so a student must share its teacher's vocabulary and
special tokens. Both builders here take them from the teacher.
"""

import keras

from augpro_keras.models.bert_classifier import BertClassifier
from augpro_keras.models.presets import check_positive_int
from augpro_keras.models.protocol import DistillableClassifier


def bert_student_from_config(
    num_layers,
    hidden_dim,
    num_heads,
    intermediate_dim,
    num_classes=None,
    teacher=None,
    vocabulary_size=None,
    special_token_ids=None,
    pad_token_id=None,
    max_sequence_length=None,
    num_segments=None,
    dropout=0.1,
    dtype=None,
    name="student",
):
    """Builds a randomly initialised `BertClassifier` student.

    The vocabulary comes from `teacher` (any `DistillableClassifier`: its
    vocabulary size, special token ids, padding id and number of classes) or
    is given with `vocabulary_size` and `special_token_ids`. Give exactly one
    of `teacher` and `vocabulary_size`.

    Args:
        num_layers: number of transformer layers.
        hidden_dim: width of embeddings and hidden states.
        num_heads: attention heads per layer (must divide `hidden_dim`).
        intermediate_dim: width of the feed-forward layers.
        num_classes: number of outputs; `None` takes the teacher's.
        teacher: the teacher whose vocabulary the student shares.
        vocabulary_size: number of tokens, when there is no `teacher`.
        special_token_ids: special token ids; `None` takes the teacher's
            (required without a teacher).
        pad_token_id: padding id; `None` takes the teacher's (0 without one).
        max_sequence_length: longest input; `None` takes a `BertClassifier`
            teacher's, else 512.
        num_segments: number of segment ids; `None` takes a `BertClassifier`
            teacher's, else 2.
        dropout: dropout rate of the backbone and before the head.
        dtype: dtype policy of the backbone; `None` uses the global policy.
        name: name of the model.

    Returns:
        A `BertClassifier`.

    Example:
    ```python
    teacher = BertClassifier.from_preset(minilm_l6_path(), num_classes=2)
    student = bert_student_from_config(
        num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024,
        teacher=teacher)
    ```
    """
    import keras_hub

    if (teacher is None) == (vocabulary_size is None):
        teacher_name = None if teacher is None else type(teacher).__name__
        raise ValueError(
            "Give exactly one of `teacher` (the student then shares its vocabulary) "
            f"and `vocabulary_size`. Received: teacher={teacher_name}, "
            f"vocabulary_size={vocabulary_size}"
        )
    if teacher is not None:
        if not isinstance(teacher, DistillableClassifier):
            raise ValueError(
                "`teacher` must be a `DistillableClassifier`. "
                f"Received: {type(teacher).__name__}"
            )
        vocabulary_size = teacher.vocabulary_size
        if special_token_ids is None:
            special_token_ids = teacher.special_token_ids
        if pad_token_id is None:
            pad_token_id = teacher.pad_token_id
        if num_classes is None:
            num_classes = teacher.num_classes
        if isinstance(teacher, BertClassifier):
            if max_sequence_length is None:
                max_sequence_length = teacher.backbone.max_sequence_length
            if num_segments is None:
                num_segments = teacher.backbone.num_segments
    if num_classes is None:
        raise ValueError("`num_classes` is required when no `teacher` is given.")
    hidden_dim = check_positive_int(hidden_dim, "hidden_dim")
    num_heads = check_positive_int(num_heads, "num_heads")
    if hidden_dim % num_heads:
        raise ValueError(
            f"`hidden_dim` must be divisible by `num_heads`. Received: "
            f"hidden_dim={hidden_dim}, num_heads={num_heads}"
        )
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=check_positive_int(vocabulary_size, "vocabulary_size"),
        num_layers=check_positive_int(num_layers, "num_layers"),
        num_heads=num_heads,
        hidden_dim=hidden_dim,
        intermediate_dim=check_positive_int(intermediate_dim, "intermediate_dim"),
        dropout=dropout,
        max_sequence_length=512 if max_sequence_length is None else max_sequence_length,
        num_segments=2 if num_segments is None else num_segments,
        dtype=dtype,
        name=f"{name}_backbone",
    )
    return BertClassifier(
        backbone,
        num_classes=num_classes,
        dropout=dropout,
        special_token_ids=special_token_ids,
        pad_token_id=0 if pad_token_id is None else pad_token_id,
        name=name,
    )


def bert_student_from_teacher(
    teacher, num_layers, layer_indices=None, num_classes=None, dropout=None, name="student"
):
    """Builds a shallower `BertClassifier` from a BERT teacher (DistilBERT-style).

    The student has the teacher's configuration (vocabulary, widths, heads,
    special tokens, dtype policy) but `num_layers` transformer layers. It
    starts from copies of the teacher's weights: the word, position and
    segment embeddings and their layer normalisation, the transformer layers
    `layer_indices` (by default the first `num_layers`), and the pooler. The
    classification head is new (randomly initialised). The copies are
    independent: training the student leaves the teacher unchanged.

    Args:
        teacher: a `BertClassifier`.
        num_layers: number of student layers, at most the teacher's.
        layer_indices: which teacher layers to copy, in order (e.g.
            `[0, 2, 4]` for every other layer as in DistilBERT); `None` copies
            layers `0 .. num_layers - 1`.
        num_classes: outputs of the student's head; `None` takes the teacher's.
        dropout: dropout rate of the backbone and before the head; `None`
            takes the teacher's rates.
        name: name of the model.

    Returns:
        A `BertClassifier`.

    Example:
    ```python
    teacher = BertClassifier.from_preset(minilm_l6_path(), num_classes=2)
    student = bert_student_from_teacher(teacher, num_layers=3)
    ```

    References:
        - [Sanh et al., 2019](https://arxiv.org/abs/1910.01108) (DistilBERT).
    """
    import keras_hub

    if not isinstance(teacher, BertClassifier):
        raise ValueError(
            f"`teacher` must be a `BertClassifier`. Received: {type(teacher).__name__}"
        )
    num_layers = check_positive_int(num_layers, "num_layers")
    if num_layers > teacher.num_layers:
        raise ValueError(
            f"A student cut from a teacher can have at most the teacher's "
            f"{teacher.num_layers} layers. Received: num_layers={num_layers}"
        )
    if layer_indices is None:
        layer_indices = list(range(num_layers))
    layer_indices = [int(i) for i in layer_indices]
    if (
        len(layer_indices) != num_layers
        or any(not 0 <= i < teacher.num_layers for i in layer_indices)
        or any(a >= b for a, b in zip(layer_indices, layer_indices[1:]))
    ):
        raise ValueError(
            f"`layer_indices` must be {num_layers} increasing teacher layer indices "
            f"in [0, {teacher.num_layers}). Received: {layer_indices}"
        )
    source = teacher.backbone
    config = source.get_config()
    # A frozen teacher must not give a frozen student.
    config.update(num_layers=num_layers, name=f"{name}_backbone", trainable=True)
    if dropout is not None:
        config["dropout"] = dropout
    backbone = keras_hub.models.BertBackbone.from_config(config)
    for attribute in (
        "token_embedding",
        "position_embedding",
        "segment_embedding",
        "embeddings_layer_norm",
        "pooled_dense",
    ):
        _copy_weights(getattr(source, attribute), getattr(backbone, attribute))
    for target, index in zip(backbone.transformer_layers, layer_indices):
        _copy_weights(source.transformer_layers[index], target)
    return BertClassifier(
        backbone,
        num_classes=teacher.num_classes if num_classes is None else num_classes,
        dropout=teacher.config_values["dropout"] if dropout is None else dropout,
        special_token_ids=teacher.special_token_ids,
        pad_token_id=teacher.pad_token_id,
        name=name,
    )


def _copy_weights(source, target):
    """Assigns the values of `source`'s weights to `target`'s (same structure)."""
    if len(source.weights) != len(target.weights):
        raise ValueError(
            f"Cannot copy {source.name} ({len(source.weights)} weights) to "
            f"{target.name} ({len(target.weights)} weights)."
        )
    for source_weight, target_weight in zip(source.weights, target.weights):
        if tuple(source_weight.shape) != tuple(target_weight.shape):
            raise ValueError(
                f"Cannot copy {source_weight.path} {tuple(source_weight.shape)} to "
                f"{target_weight.path} {tuple(target_weight.shape)}."
            )
        target_weight.assign(keras.ops.convert_to_tensor(source_weight))
