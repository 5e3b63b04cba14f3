"""EncT5's tokenizer: keras-hub's T5 SentencePiece tokenizer, bound to `EncT5Backbone`."""

import keras_hub

from augpro_keras.api_export import export
from augpro_keras.models.enct5_backbone import EncT5Backbone


@export
class EncT5Tokenizer(keras_hub.models.T5Tokenizer):
    """keras-hub's `T5Tokenizer` for `EncT5Backbone` presets.

    It tokenizes exactly as `keras_hub.models.T5Tokenizer` (SentencePiece,
    `<pad>` = 0, `</s>` = 1, `<unk>` = 2 in T5 vocabularies). The subclass
    only names `EncT5Backbone` as its backbone, which is how keras-hub's
    `Tokenizer.from_preset(folder)` picks the tokenizer class of a saved
    EncT5 preset.

    Args:
        proto: the serialized SentencePiece model (`bytes`) or the path of a
            `.spm` / `.model` file; it must have the `<pad>` and `</s>`
            pieces.
        **kwargs: standard `keras_hub.tokenizers.SentencePieceTokenizer`
            arguments.

    Example:
    ```python
    tokenizer = EncT5Tokenizer(proto="spiece.model")
    tokenizer(["a great movie"])
    # The tokenizer of a keras-hub T5 preset, for EncT5:
    tokenizer = EncT5Tokenizer.from_t5_preset("t5_1.1_small")
    ```

    References:
        - [Kudo and Richardson, 2018](https://arxiv.org/abs/1808.06226)
          (SentencePiece).
    """

    backbone_cls = EncT5Backbone

    @classmethod
    def from_t5_preset(cls, preset):
        """The SentencePiece model of a keras-hub T5 preset (name or folder) as an EncT5Tokenizer.

        Raises:
            ValueError: when the preset has no T5 tokenizer; the message names
                the preset and the error keras-hub gave.
        """
        try:
            t5_tokenizer = keras_hub.models.T5Tokenizer.from_preset(preset)
        except Exception as error:  # keras-hub raises several types here.
            raise ValueError(
                f"Could not load the T5 tokenizer of preset {preset!r} "
                f"({type(error).__name__}: {error}). EncT5 needs the T5 SentencePiece "
                "model: save it beside the backbone with `tokenizer.save_to_preset(...)`, "
                "or pass `tokenizer=EncT5Tokenizer(proto=...)`."
            ) from error
        return cls(proto=t5_tokenizer.proto)
