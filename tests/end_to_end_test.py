"""Real tokenizers and real model adapters through the Distiller.

A SentencePiece vocabulary trained on the spot with EncT5 models (raw
strings through their keras-hub-style preprocessor), and a WordPiece
vocabulary with BERT models: one distillation step each, and the AugPro
sentences turned back into readable text (paper appendix D).
"""

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from augpro_keras import Distiller
from augpro_keras.data import detokenize
from augpro_keras.data import special_tokens
from augpro_keras.data import train_sentencepiece
from augpro_keras.data import wordpiece_tokenizer
from augpro_keras.data.preprocessing import make_dataset
from augpro_keras.models import EncT5Backbone
from augpro_keras.models import EncT5TextClassifier
from augpro_keras.models import EncT5TextClassifierPreprocessor
from augpro_keras.models import EncT5Tokenizer
from augpro_keras.models import student_from_config

SENTENCES = [
    "the soup was warm and the bread was fresh",
    "the service was slow and the room was cold",
    "a lovely garden with quiet paths and old trees",
    "the train was late again and nobody said sorry",
    "bright colours and a cheerful little tune",
    "the lamp broke on the first day",
    "friendly staff and a clean kitchen",
    "the screen flickers and the battery dies fast",
] * 4
LABELS = [1, 0, 1, 0, 1, 0, 1, 0] * 4


def first_batch(dataset):
    return next(iter(dataset))


def augpro_sentences(distiller, x, tokenizer):
    outputs = distiller.augment(x)
    return {
        name: detokenize(tokenizer, output.token_ids.numpy(), skip_special_tokens=True)
        for name, output in outputs.items()
        if output.token_ids is not None
    }


def check_readable(originals, augmented, tokenizer):
    vocabulary = set(tokenizer.get_vocabulary())
    for name, sentences in augmented.items():
        assert len(sentences) == len(originals)
        assert all(isinstance(s, str) and s.strip() for s in sentences), name
        assert any(a != o for a, o in zip(sentences, originals)), name
        assert not any(special in s for s in sentences for special in ("[PAD]", "<pad>", "[CLS]")), name
    assert vocabulary


def test_sentencepiece_with_enct5():
    # T5-style pieces (<pad>, <unk>, <s>, </s>, no [CLS]) for T5's packing.
    tokenizer = train_sentencepiece(SENTENCES, vocabulary_size=80, special_tokens=())
    keras.utils.set_random_seed(0)
    preprocessor = EncT5TextClassifierPreprocessor(EncT5Tokenizer(proto=tokenizer.proto),
                                                   sequence_length=16)
    backbone = EncT5Backbone(vocabulary_size=tokenizer.vocabulary_size(), num_layers=2,
                             num_heads=2, hidden_dim=16, intermediate_dim=32, dropout=0.0)
    teacher = EncT5TextClassifier(backbone, num_classes=2, preprocessor=preprocessor, dropout=0.0)
    student = student_from_config(teacher, num_layers=1, intermediate_dim=16)
    dataset = tf.data.Dataset.from_tensor_slices((SENTENCES, LABELS)).batch(8, drop_remainder=True)
    distiller = Distiller(teacher, student, augmentations=["augpro_mix", "augpro_fgsm"], seed=0)
    distiller.compile(optimizer="adam", metrics=["accuracy"], jit_compile=False)
    history = distiller.fit(dataset.take(1), verbose=0).history
    assert all(np.isfinite(v[0]) for v in history.values())
    x, _ = first_batch(distiller.preprocess(dataset))
    originals = detokenize(tokenizer, x["token_ids"].numpy(), skip_special_tokens=True)
    assert SENTENCES[0].startswith(originals[0]) and len(originals[0]) > 10
    check_readable(originals, augpro_sentences(distiller, x, tokenizer), tokenizer)


def test_wordpiece_with_bert(tmp_path):
    words = sorted({w for s in SENTENCES for w in s.split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    tokenizer = wordpiece_tokenizer(str(path), lowercase=True)
    pairs_a, pairs_b = SENTENCES[:16], SENTENCES[16:]
    dataset = make_dataset(
        pairs_a, pairs_b, LABELS[:16], tokenizer, sequence_length=24, batch_size=8, drop_remainder=True
    )
    keras.utils.set_random_seed(0)
    # A keras-hub BERT on this vocabulary; the dataset is already packed.
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True), sequence_length=24)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=32, dropout=0.0)
    teacher = keras_hub.models.BertTextClassifier(
        backbone, num_classes=2, preprocessor=preprocessor, dropout=0.0, name="teacher")
    student = student_from_config(teacher, num_layers=1, hidden_dim=8, num_heads=2,
                                  intermediate_dim=16, dropout=0.0)
    distiller = Distiller(teacher, student, augmentations=["augpro_mix", "knn", "tmix"], seed=0)
    distiller.compile(optimizer="adam", metrics=["accuracy"], jit_compile=False)
    before = [w.copy() for w in teacher.get_weights()]
    history = distiller.fit(dataset, verbose=0).history
    assert all(np.isfinite(v[0]) for v in history.values())
    for a, b in zip(before, teacher.get_weights()):
        np.testing.assert_array_equal(a, b)
    x, _ = first_batch(dataset)
    originals = detokenize(tokenizer, x["token_ids"].numpy(), skip_special_tokens=True)
    check_readable(originals, augpro_sentences(distiller, x, tokenizer), tokenizer)
    # Segment ids of the pair survive the projection: [SEP] stays where it was.
    new_ids = distiller.augment(x)["augpro_mix"].token_ids.numpy()
    sep = special_tokens(tokenizer).end
    np.testing.assert_array_equal(new_ids[x["token_ids"].numpy() == sep], sep)
    assert tf.reduce_max(x["segment_ids"]) == 1
