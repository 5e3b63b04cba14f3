"""A keras-hub BERT backbone with a classification head, runnable from embeddings."""

import keras
from keras import ops

from augpro_keras.api_export import export
from augpro_keras.models.presets import check_positive_int
from augpro_keras.models.presets import check_rate
from augpro_keras.models.presets import check_special_token_ids
from augpro_keras.models.presets import load_preset_backbone
from augpro_keras.models.protocol import DistillableClassifier


@export
class BertClassifier(DistillableClassifier):
    """A `keras_hub.models.BertBackbone` with dropout and a dense head.

    The same network as `keras_hub.models.BertTextClassifier`: the backbone's
    pooled output (a tanh dense layer on the first, [CLS], position), dropout,
    then a dense layer to `num_classes` logits. Unlike the keras-hub task it
    implements the `DistillableClassifier` protocol, so AugPro can run it from
    word embeddings and from the hidden states of any layer.

    keras-hub backbones take token ids only. This class runs the backbone's
    own sublayers in the backbone's order instead: `token_embedding`, then
    `embeddings_add` of the position and segment embeddings,
    `embeddings_layer_norm`, `embeddings_dropout`, the `transformer_layers`
    with the padding mask, and `pooled_dense` on the first position. Running
    from `embed_tokens(token_ids)` gives exactly `backbone(inputs)`.

    Inputs without `"segment_ids"` use segment 0 everywhere, as a BERT
    preprocessor does for single sentences.

    Args:
        backbone: a `keras_hub.models.BertBackbone`.
        num_classes: number of outputs (1 for regression).
        dropout: dropout rate before the head when `training=True`.
        special_token_ids: all special token ids of the tokenizer (padding,
            [CLS], [SEP], [UNK], [MASK], ...); projections never produce
            them. Required; `from_preset` reads them from the preset's
            tokenizer.
        pad_token_id: id of the padding token (added to `special_token_ids`
            when missing).
        **kwargs: standard `keras.Model` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a dict with `"token_ids"` (int `[B, L]`), `"padding_mask"`
            (bool or int `[B, L]`) and optionally `"segment_ids"` (int
            `[B, L]`).
        training: whether dropout is active.

    Example:
    ```python
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=32)
    model = BertClassifier(
        backbone, num_classes=2, special_token_ids=[0, 1, 2, 3, 4])
    logits = model({"token_ids": ids, "padding_mask": ids != 0})

    # A pretrained checkpoint: keras-hub preset name, keras-hub preset folder
    # or HuggingFace checkpoint folder (loaded offline).
    teacher = BertClassifier.from_preset(
        augpro_keras.models.minilm_l6_path(), num_classes=2)
    ```

    References:
        - [Devlin et al., 2019](https://arxiv.org/abs/1810.04805) (BERT).
        - [Wang et al., 2023](https://arxiv.org/abs/2210.11768) (AugPro).
    """

    def __init__(
        self,
        backbone,
        num_classes,
        dropout=0.1,
        special_token_ids=None,
        pad_token_id=0,
        **kwargs,
    ):
        import keras_hub  # Deferred: importing keras-hub takes seconds.

        if not isinstance(backbone, keras_hub.models.BertBackbone):
            raise ValueError(
                "`backbone` must be a `keras_hub.models.BertBackbone`. "
                f"Received: {type(backbone).__name__}"
            )
        num_classes = check_positive_int(num_classes, "num_classes")
        dropout = check_rate(dropout, "dropout")
        special_token_ids = check_special_token_ids(
            special_token_ids, pad_token_id, backbone.vocabulary_size, "BertClassifier"
        )
        super().__init__(**kwargs)
        self.backbone = backbone
        self.config_values = {
            "num_classes": num_classes,
            "dropout": dropout,
            "special_token_ids": special_token_ids,
            "pad_token_id": int(pad_token_id),
        }
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="classifier_dropout"
        )
        self.output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype="float32",
            name="logits",
        )
        self.build()

    def build(self, input_shape=None):
        self.output_dense.build((None, self.backbone.hidden_dim))
        self.built = True

    @classmethod
    def from_preset(
        cls,
        preset,
        num_classes,
        dropout=0.1,
        special_token_ids=None,
        pad_token_id=None,
        load_weights=True,
        dtype=None,
        **kwargs,
    ):
        """Builds a classifier on a pretrained BERT backbone.

        Args:
            preset: a keras-hub preset name (e.g. `"bert_base_en_uncased"`,
                needs network access), a local keras-hub preset folder, or a
                local HuggingFace checkpoint folder (`config.json` +
                `model.safetensors` + `vocab.txt`), which keras-hub converts
                offline.
            num_classes: number of outputs of the new (randomly initialised)
                head.
            dropout: dropout rate before the head.
            special_token_ids: special token ids; `None` reads them from the
                preset's tokenizer (its special tokens and `[UNK]`).
            pad_token_id: padding id; `None` reads it from the preset's
                tokenizer when `special_token_ids` is `None`, else 0.
            load_weights: whether to load the pretrained weights.
            dtype: dtype policy of the backbone (e.g. `"mixed_bfloat16"`);
                `None` keeps the preset's.
            **kwargs: standard `keras.Model` arguments.
        """
        import keras_hub

        backbone, special_token_ids, pad_token_id = load_preset_backbone(
            keras_hub.models.BertBackbone, keras_hub.models.BertTokenizer, preset,
            special_token_ids, pad_token_id, load_weights, dtype,
        )
        return cls(
            backbone,
            num_classes=num_classes,
            dropout=dropout,
            special_token_ids=special_token_ids,
            pad_token_id=pad_token_id,
            **kwargs,
        )

    # --- protocol ---------------------------------------------------------
    def embed_tokens(self, token_ids):
        return self.backbone.token_embedding(token_ids)

    def hidden_states_at(
        self, embeddings, padding_mask, segment_ids=None, layer=0, training=False
    ):
        self._check_layer(layer)
        backbone = self.backbone
        if segment_ids is None:
            segment_ids = ops.zeros(ops.shape(embeddings)[:2], dtype="int32")
        positions = backbone.position_embedding(embeddings)
        segments = backbone.segment_embedding(segment_ids)
        x = backbone.embeddings_add((embeddings, positions, segments))
        x = backbone.embeddings_layer_norm(x)
        x = backbone.embeddings_dropout(x, training=training)
        for transformer_layer in backbone.transformer_layers[:layer]:
            x = transformer_layer(x, padding_mask=padding_mask, training=training)
        return x

    def logits_from_hidden(self, hidden, padding_mask, layer=0, training=False):
        self._check_layer(layer)
        backbone = self.backbone
        x = hidden
        for transformer_layer in backbone.transformer_layers[layer:]:
            x = transformer_layer(x, padding_mask=padding_mask, training=training)
        pooled = backbone.pooled_dense(x[:, backbone.cls_token_index, :])
        pooled = self.output_dropout(pooled, training=training)
        return self.output_dense(pooled)

    @property
    def embedding_matrix(self):
        return self.backbone.token_embedding.embeddings

    @property
    def num_layers(self):
        return int(self.backbone.num_layers)

    def get_config(self):
        config = super().get_config()
        config.update(self.config_values)
        config["backbone"] = keras.saving.serialize_keras_object(self.backbone)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
