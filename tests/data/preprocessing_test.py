import numpy as np
import pytest
import tensorflow as tf

from augpro_keras.data import TextPacker
from augpro_keras.data import detokenize
from augpro_keras.data import make_dataset
from augpro_keras.data import train_sentencepiece
from tests.data.conftest import CORPUS
from tests.data.conftest import token_ids


def test_bert_pair_layout(wordpiece_tokenizer):
    tok = wordpiece_tokenizer
    packer = TextPacker(tok, sequence_length=10)
    inputs = packer("a man", "the movie")
    ids = inputs["token_ids"].numpy().tolist()
    assert ids == [2, 5, 6, 3, 11, 12, 3, 0, 0, 0]
    assert inputs["segment_ids"].numpy().tolist() == [0, 0, 0, 0, 1, 1, 1, 0, 0, 0]
    assert inputs["padding_mask"].numpy().tolist() == [True] * 7 + [False] * 3
    assert inputs["token_ids"].dtype == tf.int32
    assert inputs["segment_ids"].dtype == tf.int32
    assert inputs["padding_mask"].dtype == tf.bool
    assert detokenize(tok, ids) == "[CLS] a man [SEP] the movie [SEP]"


def test_single_text_batch(wordpiece_tokenizer):
    packer = TextPacker(wordpiece_tokenizer, sequence_length=6)
    inputs = packer(["a man", "the movie was great !"])
    assert inputs["token_ids"].numpy().tolist() == [
        [2, 5, 6, 3, 0, 0],
        [2, 11, 12, 13, 14, 3],  # Truncated to fit.
    ]
    assert inputs["segment_ids"].numpy().sum() == 0


def test_round_robin_truncation(wordpiece_tokenizer):
    packer = TextPacker(wordpiece_tokenizer, sequence_length=7)
    ids = packer("the movie was great", "a man")["token_ids"].numpy().tolist()
    # 4 tokens of room: two from each text.
    assert ids == [2, 11, 12, 3, 5, 6, 3]


def test_t5_style_pair_layout():
    tok = train_sentencepiece(CORPUS, vocabulary_size=60, special_tokens=())
    packer = TextPacker(tok, sequence_length=16)
    inputs = packer(["a man"], ["the movie"])
    ids = inputs["token_ids"].numpy()[0].tolist()
    a, b = token_ids(tok, "a man"), token_ids(tok, "the movie")
    assert ids[: len(a) + len(b) + 2] == a + [3] + b + [3]
    assert detokenize(tok, ids) == "a man </s> the movie </s>"


def test_packer_inside_tf_data_matches_eager(sentencepiece_tokenizer):
    packer = TextPacker(sentencepiece_tokenizer, sequence_length=12)
    a, b = ["a man is playing", "two dogs"], ["the film", "a horse on the beach"]
    eager = packer(a, b)
    dataset = tf.data.Dataset.from_tensor_slices((a, b)).batch(2).map(packer)
    in_pipeline = next(iter(dataset))
    for key in eager:
        np.testing.assert_array_equal(eager[key], in_pipeline[key])


def test_packer_validates(wordpiece_tokenizer):
    with pytest.raises(ValueError, match="sequence_length"):
        TextPacker(wordpiece_tokenizer, sequence_length=2)
    with pytest.raises(ValueError, match="truncate"):
        TextPacker(wordpiece_tokenizer, sequence_length=8, truncate="middle")
    with pytest.raises(ValueError, match="must be a keras-hub tokenizer"):
        TextPacker(object(), sequence_length=8)


def test_make_dataset_static_shapes(wordpiece_tokenizer):
    texts = ["a man", "the movie", "great music", "a dog", "the man"] * 3
    labels = [0, 1, 1, 0, 2] * 3
    dataset = make_dataset(
        texts, texts, labels, wordpiece_tokenizer, sequence_length=8,
        batch_size=4, shuffle=True, seed=3, drop_remainder=True,
    )
    inputs_spec, labels_spec = dataset.element_spec
    for key in ("token_ids", "padding_mask", "segment_ids"):
        assert inputs_spec[key].shape == (4, 8)
    assert labels_spec.shape == (4,) and labels_spec.dtype == tf.int32
    batches = list(dataset)
    assert len(batches) == 3
    again = [x["token_ids"].numpy() for x, _ in make_dataset(
        texts, texts, labels, wordpiece_tokenizer, sequence_length=8,
        batch_size=4, shuffle=True, seed=3, drop_remainder=True)]
    for (x, _), ids in zip(batches, again):
        np.testing.assert_array_equal(x["token_ids"], ids)


def test_make_dataset_unlabeled_and_regression(sentencepiece_tokenizer):
    texts = CORPUS[:5]
    unlabeled = make_dataset(texts, None, None, sentencepiece_tokenizer, 16, batch_size=2)
    assert set(unlabeled.element_spec) == {"token_ids", "padding_mask", "segment_ids"}
    assert sum(int(x["token_ids"].shape[0]) for x in unlabeled) == 5  # Keeps the remainder.
    scores = make_dataset(texts, texts, [0.5, 1.0, 4.2, 3.0, 5.0],
                          sentencepiece_tokenizer, 16, batch_size=5)
    _, y = next(iter(scores))
    assert y.dtype == tf.float32
    np.testing.assert_allclose(y.numpy(), [0.5, 1.0, 4.2, 3.0, 5.0], rtol=1e-6)


def test_make_dataset_validates(wordpiece_tokenizer):
    with pytest.raises(ValueError, match="texts_b"):
        make_dataset(["a", "b"], ["a"], None, wordpiece_tokenizer, 8, 2)
    with pytest.raises(ValueError, match="labels"):
        make_dataset(["a", "b"], None, [0], wordpiece_tokenizer, 8, 2)
    with pytest.raises(ValueError, match="string labels"):
        make_dataset(["a", "b"], None, ["yes", "no"], wordpiece_tokenizer, 8, 2)
    with pytest.raises(ValueError, match="no full batch"):
        make_dataset(["a", "b"], None, None, wordpiece_tokenizer, 8, 4, drop_remainder=True)
    with pytest.raises(ValueError, match="batch_size"):
        make_dataset(["a", "b"], None, None, wordpiece_tokenizer, 8, 0)


def test_dataset_survives_seeding_after_it_is_built(sentencepiece_tokenizer):
    """`keras.utils.set_random_seed` clears TensorFlow's eager caches; the
    dataset's tokenizer must not depend on them."""
    import keras

    from augpro_keras.data.preprocessing import make_dataset

    dataset = make_dataset(
        ["a man is playing a flute ."] * 4, None, [0, 1, 0, 1], sentencepiece_tokenizer,
        sequence_length=8, batch_size=2, drop_remainder=True,
    )
    before = [x["token_ids"].numpy() for x, _ in dataset]
    keras.utils.set_random_seed(0)
    after = [x["token_ids"].numpy() for x, _ in dataset]
    for a, b in zip(before, after):
        assert (a == b).all()
