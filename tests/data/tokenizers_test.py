import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from augpro_keras.data import TextPacker
from augpro_keras.data import compute_wordpiece_vocabulary
from augpro_keras.data import detokenize
from augpro_keras.data import sentencepiece_tokenizer as load_sentencepiece
from augpro_keras.data import special_tokens
from augpro_keras.data import train_sentencepiece
from augpro_keras.data import wordpiece_tokenizer as make_wordpiece
from augpro_keras.data.tokenizers import copy_tokenizer
from tests.data.conftest import CORPUS
from tests.data.conftest import WORDPIECE_VOCAB
from tests.data.conftest import token_ids


# --- WordPiece --------------------------------------------------------------
def test_wordpiece_special_ids_and_size(wordpiece_tokenizer):
    tok = wordpiece_tokenizer
    specials = special_tokens(tok)
    assert isinstance(tok, keras_hub.tokenizers.WordPieceTokenizer)
    assert tok.vocabulary_size() == len(WORDPIECE_VOCAB)
    assert (specials.pad, specials.unk, specials.start) == (0, 1, 2)
    assert (specials.end, specials.mask) == (3, 4)
    assert specials.ids == (0, 1, 2, 3, 4)


def test_wordpiece_tokenize_lowercases_and_splits_pieces(wordpiece_tokenizer):
    tok = wordpiece_tokenizer
    ids = token_ids(tok, "The MAN is Playing a Flute!")
    tokens = [WORDPIECE_VOCAB[i] for i in ids]
    assert tokens == ["the", "man", "is", "play", "##ing", "a", "flute", "!"]
    assert token_ids(tok, "Café") == [WORDPIECE_VOCAB.index("cafe")]
    assert token_ids(tok, "zebra") == [special_tokens(tok).unk]


def test_wordpiece_detokenize_reads_back(wordpiece_tokenizer):
    tok = wordpiece_tokenizer
    specials = special_tokens(tok)
    ids = token_ids(tok, "the man is playing a flute .")
    assert detokenize(tok, ids) == "the man is playing a flute ."
    padded = [specials.start] + ids + [specials.end, 0, 0]
    assert detokenize(tok, padded) == "[CLS] the man is playing a flute . [SEP]"
    assert detokenize(tok, padded, skip_special_tokens=True) == "the man is playing a flute ."
    batch = detokenize(tok, np.array([[5, 6, 0], [11, 12, 0]]))
    assert batch == ["a man", "the movie"]


def test_wordpiece_batch_and_tf_data(wordpiece_tokenizer):
    tok = wordpiece_tokenizer
    texts = ["a man", "the movie was great"]
    eager = token_ids(tok, texts)
    assert eager == [[5, 6], [11, 12, 13, 14]]
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(2).map(tok)
    ragged = next(iter(dataset))
    assert isinstance(ragged, tf.RaggedTensor)
    assert ragged.to_list() == eager


def test_wordpiece_vocab_list_and_missing_specials():
    tok = make_wordpiece(WORDPIECE_VOCAB, lowercase=False)
    assert token_ids(tok, "The") == [special_tokens(tok).unk]
    with pytest.raises(ValueError, match=r"\[CLS\]"):
        make_wordpiece(["[PAD]", "[UNK]", "[SEP]", "a"])
    with pytest.raises(FileNotFoundError, match="no_vocab.txt"):
        make_wordpiece("/nonexistent/no_vocab.txt")


def test_wordpiece_copy_and_config_round_trip(wordpiece_tokenizer):
    restored = copy_tokenizer(wordpiece_tokenizer)
    assert restored is not wordpiece_tokenizer
    assert token_ids(restored, "a man") == token_ids(wordpiece_tokenizer, "a man")
    assert special_tokens(restored).ids == special_tokens(wordpiece_tokenizer).ids
    # keras serialization keeps the class and options (the vocabulary is an asset).
    serialized = keras.saving.serialize_keras_object(wordpiece_tokenizer)
    again = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(again, keras_hub.tokenizers.WordPieceTokenizer)
    assert (again.lowercase, again.strip_accents) == (True, True)


# --- SentencePiece ----------------------------------------------------------
def test_trained_sentencepiece_ids(sentencepiece_tokenizer):
    tok = sentencepiece_tokenizer
    specials = special_tokens(tok)
    assert isinstance(tok, keras_hub.tokenizers.SentencePieceTokenizer)
    assert 20 < tok.vocabulary_size() <= 64
    assert (specials.pad, specials.unk) == (0, 1)
    assert (tok.token_to_id("<s>"), tok.token_to_id("</s>")) == (2, 3)
    assert tok.id_to_token(specials.start) == "[CLS]"
    assert tok.id_to_token(specials.end) == "[SEP]"
    assert tok.id_to_token(specials.mask) == "[MASK]"
    assert set(specials.ids) == {0, 1, 2, 3, 4, 5, 6}


def test_sentencepiece_detokenize_reads_back(sentencepiece_tokenizer):
    tok = sentencepiece_tokenizer
    specials = special_tokens(tok)
    for text in CORPUS[:8]:
        assert detokenize(tok, token_ids(tok, text)) == text
    ids = [specials.start] + token_ids(tok, "a man") + [specials.end, 0, 0]
    assert detokenize(tok, ids) == "[CLS] a man [SEP]"
    assert detokenize(tok, ids, skip_special_tokens=True) == "a man"


def test_sentencepiece_from_bytes_file_and_copy(sentencepiece_tokenizer, tmp_path):
    path = tmp_path / "spiece.model"
    path.write_bytes(sentencepiece_tokenizer.proto)
    from_file = load_sentencepiece(path)
    text = "the movie was great"
    assert token_ids(from_file, text) == token_ids(sentencepiece_tokenizer, text)
    restored = copy_tokenizer(sentencepiece_tokenizer)
    assert token_ids(restored, text) == token_ids(sentencepiece_tokenizer, text)
    with pytest.raises(FileNotFoundError, match="no.model"):
        load_sentencepiece(tmp_path / "no.model")


def test_sentencepiece_t5_style_without_special_symbols():
    tok = train_sentencepiece(CORPUS, vocabulary_size=60, special_tokens=())
    specials = special_tokens(tok)
    assert specials.start is None
    assert specials.end == tok.token_to_id("</s>") == 3
    assert specials.mask is None


def test_sentencepiece_projected_ids_read_as_text(sentencepiece_tokenizer):
    tok = sentencepiece_tokenizer
    rng = np.random.default_rng(0)
    ids = rng.integers(0, tok.vocabulary_size(), size=(3, 12))
    texts = detokenize(tok, ids)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)


def test_detokenize_rejects_out_of_range(sentencepiece_tokenizer):
    with pytest.raises(ValueError, match="out-of-range"):
        detokenize(sentencepiece_tokenizer, [1, 10_000])


def test_train_sentencepiece_validates():
    with pytest.raises(ValueError, match="vocabulary_size"):
        train_sentencepiece(CORPUS, vocabulary_size=5)
    with pytest.raises(ValueError, match="model_type"):
        train_sentencepiece(CORPUS, vocabulary_size=50, model_type="wordpiece")
    with pytest.raises(ValueError, match="no non-empty text"):
        train_sentencepiece(["", "  "], vocabulary_size=50)


def test_packing_rejects_non_text(wordpiece_tokenizer):
    packer = TextPacker(wordpiece_tokenizer, sequence_length=8)
    with pytest.raises(ValueError, match="list of str"):
        packer([1, 2])
    with pytest.raises(ValueError, match="string tensor"):
        packer(tf.constant([1, 2]))


def test_sentencepiece_lowercase_option():
    tok = train_sentencepiece(CORPUS, vocabulary_size=60, lowercase=True)
    assert token_ids(tok, "A MAN is playing") == token_ids(tok, "a man is playing")


def test_t5_like_model_without_bos():
    import io

    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=model, vocab_size=50,
        hard_vocab_limit=False, pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2,
    )
    tok = load_sentencepiece(model.getvalue())
    specials = special_tokens(tok)
    assert "<s>" not in tok.get_vocabulary() and specials.start is None
    assert (specials.pad, specials.end, specials.unk) == (0, 1, 2)
    assert specials.ids == (0, 1, 2)
    ids = token_ids(tok, "a man") + [1, 0]
    assert detokenize(tok, ids) == "a man </s>"


def test_sentencepiece_model_without_pad_is_refused():
    import io

    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=model, vocab_size=50,
        hard_vocab_limit=False, minloglevel=2,
    )
    with pytest.raises(ValueError, match="no padding token"):
        load_sentencepiece(model.getvalue())


def test_sentencepiece_survives_seeding_in_eager_use(sentencepiece_tokenizer):
    before = token_ids(sentencepiece_tokenizer, "a man is playing a flute .")
    keras.utils.set_random_seed(1)
    assert token_ids(sentencepiece_tokenizer, "a man is playing a flute .") == before


@pytest.mark.parametrize("texts", [["", ""], tf.data.Dataset.from_tensor_slices(["", ""])],
                         ids=["list", "dataset"])
def test_wordpiece_vocabulary_refuses_a_corpus_without_text(texts):
    with pytest.raises(ValueError, match="Cannot compute a WordPiece vocabulary from no text"):
        compute_wordpiece_vocabulary(texts, vocabulary_size=50)
