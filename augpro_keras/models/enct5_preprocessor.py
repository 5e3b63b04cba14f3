"""EncT5's preprocessor: T5 SentencePiece tokens packed as `a </s> b </s>`."""

import keras
import keras_hub
from keras_hub.layers import MultiSegmentPacker

from augpro_keras.api_export import export
from augpro_keras.models.enct5_backbone import EncT5Backbone
from augpro_keras.models.enct5_tokenizer import EncT5Tokenizer


@export
class EncT5TextClassifierPreprocessor(keras_hub.models.TextClassifierPreprocessor):
    """Raw strings (or string pairs) to `EncT5Backbone` inputs.

    Tokenizes each text with the T5 SentencePiece tokenizer and packs them
    T5-style: T5 has no `[CLS]` and no segment embeddings, so every text is
    closed by `</s>` and nothing opens the sequence, `a </s>` or
    `a </s> b </s>`, then `<pad>` up to `sequence_length`. Too long inputs
    are cut by `keras_hub.layers.MultiSegmentPacker` (`truncate`). The
    outputs are `"token_ids"` and `"padding_mask"` (no `"segment_ids"`,
    which EncT5 does not take). Like every keras-hub preprocessor it runs
    in `tf.data` and inside a serving graph.

    Args:
        tokenizer: an `EncT5Tokenizer` (or a `keras_hub.models.T5Tokenizer`).
        sequence_length: the padded length of every output row.
        truncate: `"round_robin"` (one token at a time from each text, so
            the shorter text keeps most of its tokens) or `"waterfall"`.
        **kwargs: standard `keras_hub.models.Preprocessor` arguments.

    Call arguments:
        x: a string tensor (or list) of texts, or a tuple of two for pairs.
        y: labels, passed through.
        sample_weight: passed through.

    Example:
    ```python
    preprocessor = EncT5TextClassifierPreprocessor(tokenizer, sequence_length=64)
    preprocessor(["a great movie"])["token_ids"]          # [[..., 1, 0, 0, ...]]
    preprocessor(x=(tf.constant(["a"]), tf.constant(["b"])))  # a </s> b </s>
    ```

    References:
        - [Liu et al., 2021](https://arxiv.org/abs/2110.08426) (EncT5).
    """

    backbone_cls = EncT5Backbone
    tokenizer_cls = EncT5Tokenizer

    def build(self, input_shape):
        # The base class opens every sequence with `start_token_id`, which
        # T5's tokenizer sets to `</s>`; T5 opens with nothing.
        keras.layers.Layer.build(self, input_shape)
        self.packer = MultiSegmentPacker(
            start_value=[],
            end_value=self.tokenizer.end_token_id,
            pad_value=self.tokenizer.pad_token_id,
            truncate=self.truncate,
            sequence_length=self.sequence_length,
        )

    def call(self, x, y=None, sample_weight=None):
        output = super().call(x, y=y, sample_weight=sample_weight)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(output)
        del x["segment_ids"]
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
