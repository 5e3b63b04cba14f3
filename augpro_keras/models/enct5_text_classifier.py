"""EncT5 as a keras-hub text classifier: backbone, preprocessor and a dense head."""

import keras
import keras_hub

from augpro_keras.api_export import export
from augpro_keras.models.enct5_backbone import EncT5Backbone
from augpro_keras.models.enct5_preprocessor import EncT5TextClassifierPreprocessor
from augpro_keras.models.enct5_tokenizer import EncT5Tokenizer
from augpro_keras.models.presets import check_positive_int
from augpro_keras.models.presets import check_rate


@export
class EncT5TextClassifier(keras_hub.models.TextClassifier):
    """EncT5 (T5 encoder + one decoder layer) with a classification head.

    The model of the AugPro paper's experiments (EncT5-24 teachers, EncT5-8
    students), as a keras-hub `TextClassifier`: `EncT5Backbone` gives the
    decoder's output at its one position (`pooled_output`), which goes
    through `output_dropout` and the dense `logits` layer. Like the
    keras-hub tasks it takes raw strings in `fit` / `predict` (its
    `EncT5TextClassifierPreprocessor` tokenizes them), saves with
    `save_to_preset` and reloads with `keras_hub.models.TextClassifier.from_preset`
    in any process that has imported `augpro_keras` (which registers the
    EncT5 classes). The Distiller runs it through `TextClassifierAdapter`,
    as every keras-hub task.

    Args:
        backbone: an `EncT5Backbone`.
        num_classes: number of outputs (1 for regression).
        preprocessor: an `EncT5TextClassifierPreprocessor`, or `None` for a
            model that takes token ids only.
        activation: activation of the logits layer (`None`: logits).
        dropout: dropout rate before the logits layer.
        **kwargs: standard `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: a dict with `"token_ids"` and `"padding_mask"` (`[B, L]`).

    Example:
    ```python
    tokenizer = EncT5Tokenizer(proto="spiece.model")
    preprocessor = EncT5TextClassifierPreprocessor(tokenizer, sequence_length=128)
    backbone = EncT5Backbone(vocabulary_size=tokenizer.vocabulary_size(),
                             num_layers=2, num_heads=2, hidden_dim=16,
                             intermediate_dim=32)
    classifier = EncT5TextClassifier(backbone, num_classes=2,
                                     preprocessor=preprocessor)
    classifier.predict(["a great movie"])

    # From a keras-hub T5 checkpoint (name or local folder):
    teacher = EncT5TextClassifier.from_t5_preset("t5_1.1_large", num_classes=2)
    ```

    References:
        - [Liu et al., 2021](https://arxiv.org/abs/2110.08426) (EncT5).
        - [Raffel et al., 2020](https://arxiv.org/abs/1910.10683) (T5).
        - [Wang et al., 2023](https://arxiv.org/abs/2210.11768) (AugPro),
          Section 5.
    """

    backbone_cls = EncT5Backbone
    preprocessor_cls = EncT5TextClassifierPreprocessor

    def __init__(self, backbone, num_classes, preprocessor=None, activation=None, dropout=0.1,
                 **kwargs):
        if not isinstance(backbone, EncT5Backbone):
            raise ValueError(
                f"`backbone` must be an `EncT5Backbone`. Received: {type(backbone).__name__}"
            )
        num_classes = check_positive_int(num_classes, "num_classes")
        dropout = check_rate(dropout, "dropout")

        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="decoder_output_dropout"
        )
        # Float32 logits under mixed precision, as the distillation losses
        # compare the teacher's and the student's in float32.
        self.output_dense = keras.layers.Dense(
            num_classes, activation=activation, dtype="float32", name="logits"
        )

        # === Functional Model ===
        inputs = backbone.input
        pooled = backbone(inputs)["pooled_output"]
        outputs = self.output_dense(self.output_dropout(pooled))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.activation = keras.activations.get(activation)
        self.dropout = dropout

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_classes": self.num_classes,
            "activation": keras.activations.serialize(self.activation),
            "dropout": self.dropout,
        })
        return config

    @classmethod
    def from_t5_preset(cls, preset, num_classes, sequence_length=512, tokenizer=None,
                       dropout=None, load_weights=True, dtype=None, **kwargs):
        """An EncT5 classifier initialised from a keras-hub T5 checkpoint.

        The backbone gets the checkpoint's sizes and, with `load_weights`,
        its weights (`EncT5Backbone.load_t5_weights`); the preprocessor the
        checkpoint's SentencePiece model; the head is new.

        Args:
            preset: a keras-hub T5 preset name (e.g. `"t5_1.1_small"`, needs
                network access) or a local keras-hub T5 preset folder (as
                written by `T5Backbone.save_to_preset` and
                `T5Tokenizer.save_to_preset`).
            num_classes: number of outputs of the new head.
            sequence_length: the preprocessor's padded length.
            tokenizer: an `EncT5Tokenizer`; `None` loads the preset's.
            dropout: dropout rate of the backbone and the head; `None` takes
                the preset's.
            load_weights: whether to copy the pretrained weights.
            dtype: dtype policy (e.g. `"mixed_bfloat16"`); `None` keeps the
                preset's.
            **kwargs: standard `keras.Model` arguments.
        """
        # The tokenizer first: a preset without one fails before the slow
        # backbone load.
        tokenizer = EncT5Tokenizer.from_t5_preset(preset) if tokenizer is None else tokenizer
        backbone = EncT5Backbone.from_t5_preset(
            preset, load_weights=load_weights, dropout=dropout, dtype=dtype,
            decoder_start_token_id=tokenizer.pad_token_id,
        )
        preprocessor = EncT5TextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
        head_dropout = backbone.dropout if dropout is None else dropout
        return cls(backbone, num_classes, preprocessor=preprocessor, dropout=head_dropout,
                   **kwargs)
