"""Tests of the BERT student builders."""

import keras
import keras_hub
import numpy as np
import pytest

from augpro_keras.models.bert_classifier import BertClassifier
from augpro_keras.models.students import bert_student_from_config
from augpro_keras.models.students import bert_student_from_teacher
from augpro_keras.models.tiny_transformer import TinyTransformerClassifier

SPECIAL = (0, 1, 2, 3, 4)


@pytest.fixture(scope="module")
def teacher():
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=120,
        num_layers=4,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=24,
        num_segments=3,
    )
    return BertClassifier(backbone, num_classes=3, special_token_ids=SPECIAL)


def inputs(vocabulary_size=120):
    token_ids = np.random.default_rng(0).integers(5, vocabulary_size, (2, 8)).astype("int32")
    token_ids[1, 5:] = 0
    return {"token_ids": token_ids, "padding_mask": token_ids != 0}


def assert_same_weights(source, target):
    assert len(source.weights) == len(target.weights) > 0
    for a, b in zip(source.weights, target.weights):
        np.testing.assert_array_equal(a, b)


def test_student_from_config_shares_teacher_vocabulary(teacher):
    student = bert_student_from_config(
        num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=16, teacher=teacher
    )
    assert isinstance(student, BertClassifier)
    assert student.vocabulary_size == teacher.vocabulary_size == 120
    assert student.special_token_ids == teacher.special_token_ids
    assert student.pad_token_id == teacher.pad_token_id
    assert student.num_classes == 3 and student.num_layers == 1
    assert student.embedding_dim == 8
    assert student.backbone.max_sequence_length == 24
    assert student.backbone.num_segments == 3
    logits = student(inputs())
    assert logits.shape == (2, 3) and np.isfinite(logits).all()


def test_student_from_config_without_teacher_and_from_any_teacher():
    student = bert_student_from_config(
        num_layers=2, hidden_dim=8, num_heads=2, intermediate_dim=16,
        vocabulary_size=50, num_classes=2, special_token_ids=[0, 1],
    )
    assert student.vocabulary_size == 50 and student.special_token_ids == (0, 1)
    assert student.backbone.max_sequence_length == 512
    tiny = TinyTransformerClassifier(
        vocabulary_size=40, num_classes=2, special_token_ids=(0, 5)
    )
    student = bert_student_from_config(
        num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=16, teacher=tiny
    )
    assert student.vocabulary_size == 40 and student.special_token_ids == (0, 5)
    assert np.isfinite(student(inputs(40))).all()


def test_student_from_config_refuses_bad_arguments(teacher):
    with pytest.raises(ValueError, match="exactly one of `teacher`"):
        bert_student_from_config(1, 8, 2, 16, num_classes=2)
    with pytest.raises(ValueError, match="exactly one of `teacher`"):
        bert_student_from_config(1, 8, 2, 16, teacher=teacher, vocabulary_size=10)
    with pytest.raises(ValueError, match="hidden_dim=10, num_heads=4"):
        bert_student_from_config(1, 10, 4, 16, teacher=teacher)
    with pytest.raises(ValueError, match="DistillableClassifier.*Received: str"):
        bert_student_from_config(1, 8, 2, 16, teacher="bert")


def test_student_from_teacher_copies_the_first_layers(teacher):
    student = bert_student_from_teacher(teacher, num_layers=2)
    assert student.num_layers == 2 and student.num_classes == 3
    assert student.vocabulary_size == teacher.vocabulary_size
    assert student.special_token_ids == teacher.special_token_ids
    source, target = teacher.backbone, student.backbone
    for name in (
        "token_embedding",
        "position_embedding",
        "segment_embedding",
        "embeddings_layer_norm",
        "pooled_dense",
    ):
        assert_same_weights(getattr(source, name), getattr(target, name))
    for index in range(2):
        assert_same_weights(source.transformer_layers[index], target.transformer_layers[index])
    # The student is the teacher's first two layers: same hidden states there.
    batch = inputs()
    np.testing.assert_array_equal(
        student.hidden_states_at(
            student.embed_tokens(batch["token_ids"]), batch["padding_mask"], layer=2
        ),
        teacher.hidden_states_at(
            teacher.embed_tokens(batch["token_ids"]), batch["padding_mask"], layer=2
        ),
    )
    # Copies, not shared variables.
    assert student.embedding_matrix is not teacher.embedding_matrix
    student.embedding_matrix.assign(student.embedding_matrix + 1.0)
    assert not np.allclose(student.embedding_matrix, teacher.embedding_matrix)
    logits = student(batch)
    assert logits.shape == (2, 3) and np.isfinite(logits).all()


def test_student_from_teacher_with_layer_indices(teacher):
    student = bert_student_from_teacher(
        teacher, num_layers=2, layer_indices=[1, 3], num_classes=2, dropout=0.0
    )
    assert student.num_classes == 2 and student.backbone.dropout == 0.0
    source, target = teacher.backbone, student.backbone
    assert_same_weights(source.transformer_layers[1], target.transformer_layers[0])
    assert_same_weights(source.transformer_layers[3], target.transformer_layers[1])


def test_student_from_teacher_refuses_bad_arguments(teacher):
    with pytest.raises(ValueError, match=r"teacher's 4 layers.*num_layers=5"):
        bert_student_from_teacher(teacher, num_layers=5)
    with pytest.raises(ValueError, match="num_layers.*Received: 0"):
        bert_student_from_teacher(teacher, num_layers=0)
    with pytest.raises(ValueError, match=r"2 increasing.*\[3, 1\]"):
        bert_student_from_teacher(teacher, num_layers=2, layer_indices=[3, 1])
    with pytest.raises(ValueError, match="BertClassifier.*TinyTransformerClassifier"):
        bert_student_from_teacher(
            TinyTransformerClassifier(vocabulary_size=20, num_classes=2), num_layers=1
        )


def test_student_of_a_frozen_teacher_is_trainable(teacher):
    teacher.trainable = False
    try:
        student = bert_student_from_teacher(teacher, num_layers=1)
    finally:
        teacher.trainable = True
    assert student.trainable and student.backbone.trainable
    assert len(student.trainable_weights) == len(student.weights)
