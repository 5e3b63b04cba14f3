import keras
import numpy as np
import pytest
import tensorflow as tf

from augpro_keras.data import SentencePieceTextTokenizer
from augpro_keras.data import WordPieceTextTokenizer
from augpro_keras.data import train_sentencepiece
from tests.data.conftest import CORPUS
from tests.data.conftest import WORDPIECE_VOCAB


# --- WordPiece --------------------------------------------------------------
def test_wordpiece_special_ids_and_size(wordpiece_tokenizer):
    tok = wordpiece_tokenizer
    assert tok.vocabulary_size == len(WORDPIECE_VOCAB)
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id) == (0, 1, 2)
    assert (tok.sep_token_id, tok.mask_token_id) == (3, 4)
    assert tok.special_token_ids == (0, 1, 2, 3, 4)


def test_wordpiece_tokenize_lowercases_and_splits_pieces(wordpiece_tokenizer):
    tok = wordpiece_tokenizer
    ids = tok.tokenize("The MAN is Playing a Flute!")
    tokens = [WORDPIECE_VOCAB[i] for i in ids]
    assert tokens == ["the", "man", "is", "play", "##ing", "a", "flute", "!"]
    assert tok.tokenize("Café") == [WORDPIECE_VOCAB.index("cafe")]
    assert tok.tokenize("zebra") == [tok.unk_token_id]


def test_wordpiece_detokenize_reads_back(wordpiece_tokenizer):
    tok = wordpiece_tokenizer
    ids = tok.tokenize("the man is playing a flute .")
    assert tok.detokenize(ids) == "the man is playing a flute ."
    padded = [tok.cls_token_id] + ids + [tok.sep_token_id, 0, 0]
    assert tok.detokenize(padded) == "[CLS] the man is playing a flute . [SEP]"
    assert tok.detokenize(padded, skip_special_tokens=True) == "the man is playing a flute ."
    batch = tok.detokenize(np.array([[5, 6, 0], [11, 12, 0]]))
    assert batch == ["a man", "the movie"]


def test_wordpiece_batch_and_tf_data(wordpiece_tokenizer):
    tok = wordpiece_tokenizer
    texts = ["a man", "the movie was great"]
    eager = tok.tokenize(texts)
    assert eager == [[5, 6], [11, 12, 13, 14]]
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(2).map(tok.tokenize)
    ragged = next(iter(dataset))
    assert isinstance(ragged, tf.RaggedTensor)
    assert ragged.to_list() == eager


def test_wordpiece_vocab_list_and_missing_specials():
    tok = WordPieceTextTokenizer(WORDPIECE_VOCAB, lowercase=False)
    assert tok.tokenize("The") == [tok.unk_token_id]
    with pytest.raises(ValueError, match=r"\[CLS\]"):
        WordPieceTextTokenizer(["[PAD]", "[UNK]", "[SEP]", "a"])
    with pytest.raises(FileNotFoundError, match="no_vocab.txt"):
        WordPieceTextTokenizer("/nonexistent/no_vocab.txt")


def test_wordpiece_config_round_trip(wordpiece_tokenizer):
    config = wordpiece_tokenizer.get_config()
    restored = WordPieceTextTokenizer.from_config(config)
    assert restored.tokenize("a man") == wordpiece_tokenizer.tokenize("a man")
    serialized = keras.saving.serialize_keras_object(wordpiece_tokenizer)
    again = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(again, WordPieceTextTokenizer)
    assert again.special_token_ids == wordpiece_tokenizer.special_token_ids


# --- SentencePiece ----------------------------------------------------------
def test_trained_sentencepiece_ids(sentencepiece_tokenizer):
    tok = sentencepiece_tokenizer
    assert 20 < tok.vocabulary_size <= 64
    assert (tok.pad_token_id, tok.unk_token_id) == (0, 1)
    assert (tok.bos_token_id, tok.eos_token_id) == (2, 3)
    assert tok.id_to_token(tok.cls_token_id) == "[CLS]"
    assert tok.id_to_token(tok.sep_token_id) == "[SEP]"
    assert tok.id_to_token(tok.mask_token_id) == "[MASK]"
    assert set(tok.special_token_ids) == {0, 1, 2, 3, 4, 5, 6}


def test_sentencepiece_detokenize_reads_back(sentencepiece_tokenizer):
    tok = sentencepiece_tokenizer
    for text in CORPUS[:8]:
        assert tok.detokenize(tok.tokenize(text)) == text
    ids = [tok.cls_token_id] + tok.tokenize("a man") + [tok.sep_token_id, 0, 0]
    assert tok.detokenize(ids) == "[CLS] a man [SEP]"
    assert tok.detokenize(ids, skip_special_tokens=True) == "a man"


def test_sentencepiece_from_bytes_file_and_config(sentencepiece_tokenizer, tmp_path):
    path = tmp_path / "spiece.model"
    path.write_bytes(sentencepiece_tokenizer.proto)
    from_file = SentencePieceTextTokenizer(path)
    text = "the movie was great"
    assert from_file.tokenize(text) == sentencepiece_tokenizer.tokenize(text)
    restored = SentencePieceTextTokenizer.from_config(sentencepiece_tokenizer.get_config())
    assert restored.tokenize(text) == sentencepiece_tokenizer.tokenize(text)


def test_sentencepiece_t5_style_without_special_symbols():
    tok = train_sentencepiece(CORPUS, vocabulary_size=60, special_tokens=())
    assert tok.cls_token_id is None
    assert tok.sep_token_id == tok.eos_token_id == 3
    assert tok.mask_token_id is None


def test_sentencepiece_projected_ids_read_as_text(sentencepiece_tokenizer):
    tok = sentencepiece_tokenizer
    rng = np.random.default_rng(0)
    ids = rng.integers(0, tok.vocabulary_size, size=(3, 12))
    texts = tok.detokenize(ids)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)


def test_detokenize_rejects_out_of_range(sentencepiece_tokenizer):
    with pytest.raises(ValueError, match="out-of-range"):
        sentencepiece_tokenizer.detokenize([1, 10_000])


def test_train_sentencepiece_validates():
    with pytest.raises(ValueError, match="vocabulary_size"):
        train_sentencepiece(CORPUS, vocabulary_size=5)
    with pytest.raises(ValueError, match="model_type"):
        train_sentencepiece(CORPUS, vocabulary_size=50, model_type="wordpiece")
    with pytest.raises(ValueError, match="no non-empty text"):
        train_sentencepiece(["", "  "], vocabulary_size=50)


def test_tokenize_rejects_non_text(wordpiece_tokenizer):
    with pytest.raises(ValueError, match="list of str"):
        wordpiece_tokenizer.tokenize([1, 2])
    with pytest.raises(ValueError, match="string tensor"):
        wordpiece_tokenizer.tokenize(tf.constant([1, 2]))


def test_sentencepiece_lowercase_option():
    tok = train_sentencepiece(CORPUS, vocabulary_size=60, lowercase=True)
    assert tok.tokenize("A MAN is playing") == tok.tokenize("a man is playing")


def test_t5_like_model_without_bos():
    import io

    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=model, vocab_size=50,
        hard_vocab_limit=False, pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2,
    )
    tok = SentencePieceTextTokenizer(model.getvalue())
    assert tok.bos_token_id is None and tok.cls_token_id is None
    assert (tok.pad_token_id, tok.sep_token_id, tok.unk_token_id) == (0, 1, 2)
    assert tok.special_token_ids == (0, 1, 2)
    ids = tok.tokenize("a man") + [1, 0]
    assert tok.detokenize(ids) == "a man </s>"


def test_sentencepiece_survives_seeding_in_eager_use(sentencepiece_tokenizer):
    import keras

    before = sentencepiece_tokenizer.tokenize("a man is playing a flute .")
    keras.utils.set_random_seed(1)
    assert sentencepiece_tokenizer.tokenize("a man is playing a flute .") == before
