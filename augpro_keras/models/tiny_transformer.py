"""A small BERT-like classifier that implements the Distiller's protocol."""

import keras
from keras import ops

from augpro_keras.api_export import export
from augpro_keras.models.protocol import DistillableClassifier


@export
class TinyTransformerClassifier(DistillableClassifier):
    """A BERT-like encoder and a classification head, small enough for tests.

    Word, position and segment embeddings, layer normalisation, dropout, a
    stack of `keras_hub.layers.TransformerEncoder` layers and a dense head on
    the first position. It is the reference implementation of the
    `DistillableClassifier` protocol and the model of the offline demo.

    Args:
        vocabulary_size: number of tokens.
        num_classes: number of outputs (1 for regression).
        hidden_dim: width of embeddings and hidden states.
        num_layers: number of transformer layers.
        num_heads: attention heads per layer.
        intermediate_dim: width of the feed-forward layers.
        max_sequence_length: longest input the position embedding covers.
        num_segments: number of segment ids (2 for sentence pairs).
        dropout: dropout rate used when `training=True`.
        pad_token_id: id of the padding token.
        special_token_ids: all special token ids (padding, [CLS], [SEP],
            [UNK], ...); projections never produce them.
        **kwargs: standard `keras.Model` arguments.

    Example:
    ```python
    model = TinyTransformerClassifier(vocabulary_size=100, num_classes=2)
    logits = model({"token_ids": ids, "padding_mask": ids != 0})
    ```
    """

    def __init__(
        self,
        vocabulary_size,
        num_classes,
        hidden_dim=16,
        num_layers=2,
        num_heads=2,
        intermediate_dim=32,
        max_sequence_length=64,
        num_segments=2,
        dropout=0.0,
        pad_token_id=0,
        special_token_ids=(0,),
        **kwargs,
    ):
        super().__init__(**kwargs)
        import keras_hub  # Deferred: importing keras-hub takes seconds.

        self.config_values = {
            "vocabulary_size": int(vocabulary_size),
            "num_classes": int(num_classes),
            "hidden_dim": int(hidden_dim),
            "num_layers": int(num_layers),
            "num_heads": int(num_heads),
            "intermediate_dim": int(intermediate_dim),
            "max_sequence_length": int(max_sequence_length),
            "num_segments": int(num_segments),
            "dropout": float(dropout),
            "pad_token_id": int(pad_token_id),
            "special_token_ids": [int(i) for i in special_token_ids],
        }
        if int(pad_token_id) not in self.config_values["special_token_ids"]:
            self.config_values["special_token_ids"].insert(0, int(pad_token_id))
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size, hidden_dim, name="token_embedding"
        )
        self.position_embedding = keras.layers.Embedding(
            max_sequence_length, hidden_dim, name="position_embedding"
        )
        self.segment_embedding = keras.layers.Embedding(
            num_segments, hidden_dim, name="segment_embedding"
        )
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=1e-12, name="embeddings_layer_norm"
        )
        self.embeddings_dropout = keras.layers.Dropout(dropout, name="embeddings_dropout")
        self.transformer_layers = [
            keras_hub.layers.TransformerEncoder(
                intermediate_dim=intermediate_dim,
                num_heads=num_heads,
                dropout=dropout,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.head = keras.layers.Dense(num_classes, name="logits", dtype="float32")
        self.build()

    def build(self, input_shape=None):
        cfg = self.config_values
        self.token_embedding.build((None, None))
        self.position_embedding.build((None,))
        self.segment_embedding.build((None, None))
        self.embeddings_layer_norm.build((None, None, cfg["hidden_dim"]))
        for layer in self.transformer_layers:
            layer.build((None, None, cfg["hidden_dim"]))
        self.head.build((None, cfg["hidden_dim"]))
        self.built = True

    # --- protocol ---------------------------------------------------------
    def embed_tokens(self, token_ids):
        return self.token_embedding(token_ids)

    def hidden_states_at(
        self, embeddings, padding_mask, segment_ids=None, layer=0, training=False
    ):
        self._check_layer(layer)
        length = ops.shape(embeddings)[1]
        x = embeddings + ops.cast(
            self.position_embedding(ops.arange(length))[None], embeddings.dtype
        )
        if segment_ids is not None:
            x = x + ops.cast(self.segment_embedding(segment_ids), embeddings.dtype)
        x = self.embeddings_dropout(self.embeddings_layer_norm(x), training=training)
        for transformer_layer in self.transformer_layers[:layer]:
            x = transformer_layer(x, padding_mask=padding_mask, training=training)
        return x

    def logits_from_hidden(self, hidden, padding_mask, layer=0, training=False):
        self._check_layer(layer)
        x = hidden
        for transformer_layer in self.transformer_layers[layer:]:
            x = transformer_layer(x, padding_mask=padding_mask, training=training)
        return self.head(x[:, 0, :])

    @property
    def embedding_matrix(self):
        return self.token_embedding.embeddings

    @property
    def num_layers(self):
        return self.config_values["num_layers"]

    def get_config(self):
        config = super().get_config()
        config.update(self.config_values)
        return config
