"""keras-hub text classifiers in and out of the Distiller, for every family."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import augpro_keras
from augpro_keras.models.keras_hub_students import student_from_config
from augpro_keras.models.keras_hub_students import student_from_teacher
from augpro_keras.models.serving import export_text_classifier
from augpro_keras.models.text_classifier_adapter import TextClassifierAdapter
from tests import keras_hub_tiny as kt

ALL_AUGMENTATIONS = ["mixup", "augpro_mix", "fgsm", "augpro_fgsm", "knn", "tmix", "random_tokens"]


def _batch(task, pairs=False):
    texts = ["the movie", "a boring film", "good", "really fun and very good"]
    x = (tf.constant(texts), tf.constant(["fun", "bad", "it", "good"])) if pairs else tf.constant(texts)
    return task.preprocessor(x=x)


def _mask(model, x):
    return x["padding_mask"] if "padding_mask" in x else x["token_ids"] != model.pad_token_id


@pytest.mark.parametrize("family", kt.FAMILIES)
def test_adapter_equals_the_tasks_own_forward_pass(family):
    task = kt.task(family)
    model = TextClassifierAdapter(task)
    x = _batch(task, pairs=True)
    segments = x.get("segment_ids")
    assert "segment_ids" not in model.input_names or int(tf.reduce_max(segments)) == 1
    assert not bool(tf.reduce_all(_mask(model, x)))  # the batch has padding
    reference = task(x).numpy()
    embeddings = model.embed_tokens(x["token_ids"])
    mask = _mask(model, x)
    paths = [model.call_from_embeddings(embeddings, mask, segments), model(x)]
    for layer in range(model.num_layers + 1):
        hidden = model.hidden_states_at(embeddings, mask, segments, layer=layer)
        paths.append(model.logits_from_hidden(hidden, mask, layer=layer))
    compiled = tf.function(lambda e: model.call_from_embeddings(e, mask, segments))
    paths.append(compiled(embeddings))
    for logits in paths:
        np.testing.assert_allclose(np.asarray(logits), reference, atol=1e-6, rtol=0)
    assert model.vocabulary_size == task.backbone.token_embedding.embeddings.shape[0]
    assert model.pad_token_id in model.special_token_ids
    tokenizer = task.preprocessor.tokenizer
    assert set(int(i) for i in tokenizer.special_token_ids if i is not None) <= set(model.special_token_ids)


def test_adapter_refuses_bad_layers_and_models():
    model = TextClassifierAdapter(kt.task("bert"))
    with pytest.raises(ValueError, match=r"`layer` must be an integer in \[0, 2\]"):
        model.hidden_states_at(tf.zeros((1, 4, 16)), tf.ones((1, 4), "bool"), layer=3)
    with pytest.raises(ValueError, match="must be a `keras_hub.models.TextClassifier`"):
        TextClassifierAdapter(keras.Sequential([keras.layers.Dense(2)]))


# Families whose distilled student is also saved, reloaded and served without the package.
SERVED_FAMILIES = ("bert", "roberta", "xlm_roberta")


@pytest.mark.parametrize("family", kt.FAMILIES)
def test_every_family_distils_with_every_augmentation(family, tmp_path):
    teacher = kt.task(family, num_layers=2)
    student = student_from_teacher(teacher, num_layers=1)
    distiller = augpro_keras.Distiller(teacher, student, augmentations=ALL_AUGMENTATIONS, seed=0)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"],
                      jit_compile=False)
    before = [w.copy() for w in student.get_weights()]
    teacher_before = [w.copy() for w in teacher.get_weights()]
    history = distiller.fit(kt.text_dataset(n=16, batch_size=8), epochs=1, verbose=0).history
    for name in ALL_AUGMENTATIONS:
        assert np.isfinite(history[f"{name}_loss"][0]), name
    for name in ("augpro_mix", "augpro_fgsm", "knn", "random_tokens"):
        assert 0.0 < history[f"{name}_token_change_rate"][0] <= 1.0, name
    assert any(not np.array_equal(a, b) for a, b in zip(before, student.get_weights()))
    assert all(np.array_equal(a, b) for a, b in zip(teacher_before, teacher.get_weights()))
    assert distiller.student is student and type(student) is type(teacher)
    assert student.predict(["the movie was great"], verbose=0).shape == (1, 2)
    if family in SERVED_FAMILIES:
        assert_reloads_and_serves_without_the_package(student, tmp_path)


def test_teacher_and_student_of_different_families_share_a_vocabulary():
    teacher = kt.task("bert")
    student = kt.task("distil_bert", seed=1, num_layers=1,
                      tokenizer_=keras_hub_distil_bert_tokenizer(teacher))
    distiller = augpro_keras.Distiller(teacher, student, augmentations=["augpro_mix", "tmix"], seed=0)
    distiller.compile(optimizer="adam", jit_compile=True)
    history = distiller.fit(kt.text_dataset(n=16, pairs=True), epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0]) and history["augpro_mix_token_change_rate"][0] > 0
    # BERT reads segment ids; DistilBERT takes none.
    assert distiller.teacher_view.input_names == ("padding_mask", "segment_ids", "token_ids")
    assert distiller.student_view.input_names == ("padding_mask", "token_ids")
    x = distiller.preprocess(kt.text_dataset(n=8, pairs=True)).take(1).get_single_element()[0]
    assert "segment_ids" in x  # the teacher's preprocessor, which gives them all


def keras_hub_distil_bert_tokenizer(teacher):
    import keras_hub

    return keras_hub.models.DistilBertTokenizer(
        vocabulary=teacher.preprocessor.tokenizer.get_vocabulary(), lowercase=True
    )


def test_a_vocabulary_mismatch_names_both_tokenizers_and_the_first_differing_token():
    import keras_hub

    teacher = kt.task("bert")
    vocabulary = list(teacher.preprocessor.tokenizer.get_vocabulary())
    vocabulary[7] = "film_"
    other = keras_hub.models.DistilBertTokenizer(vocabulary=vocabulary, lowercase=True)
    student = kt.task("distil_bert", tokenizer_=other)
    with pytest.raises(ValueError) as error:
        augpro_keras.Distiller(teacher, student)
    message = str(error.value)
    for needle in ("BertTokenizer of the teacher", "DistilBertTokenizer of the student",
                   "differ first at id 7", repr(vocabulary[7])):
        assert needle in message, message


def test_raw_strings_pairs_unlabeled_and_preprocessed_data_all_train():
    teacher = kt.task("bert")
    student = student_from_teacher(teacher, 1)
    distiller = augpro_keras.Distiller(teacher, student, augmentations=["augpro_mix"], seed=0)
    distiller.compile(optimizer="adam", metrics=["accuracy"], jit_compile=False)
    strings = kt.text_dataset(n=16)
    spec = distiller.preprocess(strings).element_spec[0]
    assert spec["token_ids"].shape == (8, kt.SEQUENCE_LENGTH)  # static for XLA and TPUs
    for data in (strings, kt.text_dataset(n=16, pairs=True), kt.text_dataset(n=16, labeled=False),
                 kt.text_dataset(n=16, labeled=False, pairs=True), distiller.preprocess(strings)):
        history = distiller.fit(data, epochs=1, verbose=0).history
        assert np.isfinite(history["loss"][0])
    unlabeled = distiller.fit(kt.text_dataset(n=16, labeled=False), epochs=1, verbose=0).history
    assert "student_loss" not in unlabeled
    result = distiller.evaluate(kt.text_dataset(n=16), return_dict=True, verbose=0)
    assert 0.0 <= result["accuracy"] <= 1.0
    assert distiller.predict(kt.text_dataset(n=16, labeled=False), verbose=0).shape == (16, 2)


def test_families_without_a_padding_mask_get_one_from_the_pad_id():
    teacher = kt.task("f_net")
    distiller = augpro_keras.Distiller(teacher, student_from_teacher(teacher, 1),
                                       augmentations=["augpro_mix"], seed=0)
    x, _ = next(iter(distiller.preprocess(kt.text_dataset(n=8))))
    assert "padding_mask" not in x
    outputs = distiller.augment(x)
    ids = outputs["augpro_mix"].token_ids.numpy()
    mask = outputs["augpro_mix"].padding_mask.numpy()
    # The mask came from the pad id, not all ones: padding stays padding.
    assert not mask.all() and (ids[~mask] == 0).all()
    assert (mask >= (x["token_ids"].numpy() != 0)).all()


SAVED_AND_RELOADED = """
import json, sys
import numpy as np, tensorflow as tf, tensorflow_text  # noqa: F401
import keras_hub
sentences = {sentences!r}
task = keras_hub.models.TextClassifier.from_preset({preset!r})
served = tf.saved_model.load({saved_model!r})
outputs = served.serve(tf.constant(sentences))
print(json.dumps({{
    "class": type(task).__name__,
    "preset": task.predict(sentences, verbose=0).tolist(),
    "served": outputs["logits"].numpy().tolist(),
    "labels": outputs["label"].numpy().tolist(),
    "imported": "augpro_keras" in sys.modules,
}}))
"""


def assert_reloads_and_serves_without_the_package(student, tmp_path):
    """The distilled student, saved as a preset and a SavedModel, gives its own
    logits and labels from raw strings in a process that never imports the package."""
    preset, saved_model = str(tmp_path / "student"), str(tmp_path / "saved_model")
    student.save_to_preset(preset)
    export_text_classifier(student, saved_model)
    sentences = kt.SENTENCES[:3]
    expected = student.predict(sentences, verbose=0)
    code = SAVED_AND_RELOADED.format(sentences=sentences, preset=preset, saved_model=saved_model)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    reloaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert reloaded["class"] == type(student).__name__
    assert not reloaded["imported"]
    np.testing.assert_allclose(reloaded["preset"], expected, atol=1e-5)
    np.testing.assert_allclose(reloaded["served"], expected, atol=1e-5)
    assert reloaded["labels"] == np.argmax(expected, axis=-1).tolist()


def test_the_pair_signature_serves_sentence_pairs(tmp_path):
    task = kt.task("bert")
    export_text_classifier(task, str(tmp_path / "saved_model"))
    served = tf.saved_model.load(str(tmp_path / "saved_model"))
    a, b = kt.SENTENCES[:2], kt.SENTENCES[2:4]
    expected = task.predict((a, b), verbose=0)
    outputs = served.signatures["serve_pairs"](text_a=tf.constant(a), text_b=tf.constant(b))
    np.testing.assert_allclose(outputs["logits"].numpy(), expected, atol=1e-5)
    with pytest.raises(ValueError, match="has no preprocessor"):
        export_text_classifier(type(task)(backbone=task.backbone, num_classes=2, preprocessor=None),
                               str(tmp_path / "other"))


@pytest.mark.parametrize("family", kt.FAMILIES)
def test_students_from_a_teacher_keep_its_class_preprocessor_and_first_layers(family):
    teacher = kt.task(family, num_layers=3)
    student = student_from_teacher(teacher, num_layers=2)
    assert type(student) is type(teacher) and student.preprocessor is teacher.preprocessor
    assert student.backbone.num_layers == 2
    t, s = TextClassifierAdapter(teacher), TextClassifierAdapter(student)
    x = _batch(teacher)
    args = (_mask(t, x), x.get("segment_ids"))
    np.testing.assert_array_equal(
        t.hidden_states_at(t.embed_tokens(x["token_ids"]), *args, layer=2).numpy(),
        s.hidden_states_at(s.embed_tokens(x["token_ids"]), *args, layer=2).numpy(),
    )
    # The head (pooler, classification layers) is the teacher's too.
    head = [layer for layer in student.layers if layer is not student.backbone and layer.weights]
    assert head
    for layer in head:
        for a, b in zip(layer.get_weights(), teacher.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"`num_layers` must be an integer in \[1, 3\]"):
        student_from_teacher(teacher, num_layers=4)


@pytest.mark.parametrize("family", kt.FAMILIES)
def test_students_from_a_config_are_smaller_models_of_the_family(family):
    teacher = kt.task(family)
    settings = {"num_layers": 1, "hidden_dim": 8, "intermediate_dim": 16}
    if family == "roformer_v2":
        settings["head_size"] = 4
    student = student_from_config(teacher, **settings)
    assert type(student) is type(teacher) and student.preprocessor is teacher.preprocessor
    assert student.backbone.hidden_dim == 8 and student.count_params() < teacher.count_params()
    distiller = augpro_keras.Distiller(teacher, student, augmentations=["augpro_fgsm"], seed=0)
    # Eagerly: the step of every family in a graph is
    # test_every_family_distils_with_every_augmentation's; this one is about
    # the narrower student.
    distiller.compile(optimizer="adam", run_eagerly=True)
    assert np.isfinite(distiller.fit(kt.text_dataset(n=8), verbose=0).history["loss"][0])
    with pytest.raises(ValueError, match="has no setting"):
        student_from_config(teacher, num_layer=1)
    with pytest.raises(ValueError, match="keeps the teacher's vocabulary"):
        student_from_config(teacher, vocabulary_size=10)



@pytest.mark.parametrize("family", kt.FAMILIES)
def test_model_harness(family):
    """Each family's task: config and `.keras` round trips, then a fit step on raw strings."""
    from tests import harness
    task = kt.task(family, dropout=0.1)
    texts = tf.constant(["the movie", "a boring film", "good", "really fun and very good"])
    loaded = harness.run_model_test(task, task.preprocessor(texts), labels=np.array([1, 0, 1, 1]),
                                    fit_inputs=texts)
    assert loaded.preprocessor is not None


def test_students_of_a_frozen_teacher_are_trainable():
    teacher = kt.task("bert")
    augpro_keras.Distiller(teacher, student_from_teacher(teacher, 1))  # freezes the teacher
    assert not teacher.trainable
    for student in (student_from_teacher(teacher, 1),
                    student_from_config(teacher, num_layers=1, hidden_dim=8, intermediate_dim=8)):
        assert student.trainable and student.backbone.trainable
        assert len(student.trainable_weights) == len(student.weights)


def test_a_distiller_of_keras_hub_tasks_saves_and_loads(tmp_path):
    teacher = kt.task("bert")
    distiller = augpro_keras.Distiller(teacher, student_from_teacher(teacher, 1),
                                       augmentations=["augpro_mix"], seed=3)
    distiller.compile(optimizer="adam", jit_compile=False)
    distiller.fit(kt.text_dataset(n=8), verbose=0)
    distiller.save(tmp_path / "distiller.keras")
    restored = keras.models.load_model(tmp_path / "distiller.keras")
    assert type(restored.student) is type(teacher) and restored.student.preprocessor is not None
    texts = kt.SENTENCES[:2]
    np.testing.assert_allclose(restored.student.predict(texts, verbose=0),
                               distiller.student.predict(texts, verbose=0), atol=1e-6)
    assert np.isfinite(restored.fit(kt.text_dataset(n=8), verbose=0).history["loss"][0])


def test_the_projection_search_dtype_reaches_the_projection():
    teacher = kt.task("bert")
    distiller = augpro_keras.Distiller(teacher, student_from_teacher(teacher, 1),
                                       augmentations=["augpro_mix"], seed=0,
                                       projection_search_dtype="bfloat16", projection_chunk_size=16)
    assert distiller.projection.search_dtype == "bfloat16" and distiller.projection.exact
    config = distiller.get_config()
    assert config["projection_search_dtype"] == "bfloat16" and config["projection_exact"] is True
    distiller.compile(optimizer="adam", jit_compile=False)
    assert np.isfinite(distiller.fit(kt.text_dataset(n=8), verbose=0).history["loss"][0])
