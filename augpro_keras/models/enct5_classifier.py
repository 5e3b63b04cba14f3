"""EncT5: a T5 encoder, one decoder layer and a classification head."""

import warnings

import keras
from keras import ops

from augpro_keras.api_export import export
from augpro_keras.models.presets import check_positive_int
from augpro_keras.models.presets import check_rate
from augpro_keras.models.presets import check_special_token_ids
from augpro_keras.models.presets import load_preset_backbone
from augpro_keras.models.protocol import DistillableClassifier

# Sublayers of a keras-hub `T5TransformerLayer` that carry weights, in the
# order they are copied from a pretrained decoder layer. The self-attention's
# relative position bias is not among them (see `EncT5Classifier`).
_DECODER_LAYER_PARTS = (
    "self_attention.query_projector",
    "self_attention.key_projector",
    "self_attention.value_projector",
    "self_attention.output_projector",
    "self_attention_layer_norm",
    "cross_attention.query_projector",
    "cross_attention.key_projector",
    "cross_attention.value_projector",
    "cross_attention.output_projector",
    "cross_attention_layer_norm",
    "input_projector",
    "gate_projector",
    "output_projector",
    "layer_norm",
)


@export
class EncT5Classifier(DistillableClassifier):
    """EncT5: the T5 encoder, a single decoder layer, and a dense head.

    EncT5 (Liu et al., 2021) is the model of the AugPro paper's experiments:
    it keeps T5's whole encoder but only one decoder layer, whose input is a
    single learned vector instead of decoder tokens. That layer attends over
    the encoder output and its (normalised) output at the one decoder
    position goes through a dense layer to the logits.

    The network, in order:

    - `token_embedding` (T5 has no position embeddings), then
      `encoder_embedding_dropout`;
    - the encoder: `keras_hub` `T5TransformerLayer`s (`is_decoder=False`).
      The first layer owns the relative position bias; like
      `keras_hub.models.T5Backbone`, the bias (with the padding mask folded
      in) is computed once from the first layer's attention and given to
      every layer, which is also how a run that starts at layer `k > 0`
      gets it;
    - `encoder_output_layer_norm` (T5's RMS norm) and `encoder_output_dropout`;
    - the decoder: the learned `decoder_query` vector `[H]`, as the one
      decoder position, `decoder_embedding_dropout`, then one keras-hub
      `T5TransformerLayer` with `is_decoder=True`: self-attention over the
      single position, cross-attention over the encoder output (padding
      masked), gated feed-forward block. Its self-attention has no relative
      position bias (over one position it would only add a constant to the
      one score, which the softmax removes);
    - `decoder_output_layer_norm`, `decoder_output_dropout` and the dense
      head `logits` (float32).

    `from_preset` loads a keras-hub T5 checkpoint: the token embedding, the
    encoder layers and the encoder's final norm come from the checkpoint, and
    (as in the public EncT5 port for HuggingFace Transformers, whose weights
    are copied from T5) the decoder layer and its final norm from the
    checkpoint's first decoder layer. The decoder query starts
    as the embedding of the padding token, which is T5's decoder start token,
    so the pretrained decoder layer first sees the input it was trained on;
    the head is new.

    T5 has no segment embeddings (a sentence pair is one text, e.g.
    `"sentence1: ... sentence2: ..."`), so `segment_ids` in the inputs are
    accepted and ignored.

    Args:
        vocabulary_size: number of rows of the token embedding.
        num_classes: number of outputs (1 for regression).
        hidden_dim: width of embeddings and hidden states.
        num_layers: number of encoder layers.
        num_heads: attention heads per layer.
        intermediate_dim: width of the feed-forward layers.
        key_value_dim: width of each attention head; `None` uses
            `hidden_dim // num_heads`.
        dropout: dropout rate used when `training=True`.
        activation: activation of the feed-forward layers (T5 1.1: `"gelu"`
            with gating; keras-hub's default `"relu"`).
        use_gated_activation: whether the feed-forward block is gated
            (GEGLU/ReGLU, as in T5 1.1).
        layer_norm_epsilon: epsilon of the RMS layer norms.
        special_token_ids: all special token ids of the tokenizer (`<pad>`,
            `</s>`, `<unk>`, rows beyond the SentencePiece vocabulary);
            projections never produce them. Required; `from_preset` reads
            them from the preset's tokenizer.
        pad_token_id: id of the padding token (added to `special_token_ids`
            when missing).
        **kwargs: standard `keras.Model` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a dict with `"token_ids"` (int `[B, L]`) and `"padding_mask"`
            (bool or int `[B, L]`).
        training: whether dropout is active.

    Example:
    ```python
    model = EncT5Classifier(
        vocabulary_size=100, num_classes=2, hidden_dim=16, num_layers=2,
        num_heads=2, intermediate_dim=32, special_token_ids=[0, 1, 2])
    logits = model({"token_ids": ids, "padding_mask": ids != 0})

    # From a keras-hub T5 preset (name or local preset folder).
    teacher = EncT5Classifier.from_preset("t5_1.1_large", num_classes=2)
    ```

    References:
        - [Liu et al., 2021](https://arxiv.org/abs/2110.08426) (EncT5).
        - [Raffel et al., 2020](https://arxiv.org/abs/1910.10683) (T5).
        - [Wang et al., 2023](https://arxiv.org/abs/2210.11768) (AugPro),
          Section 5.
    """

    def __init__(
        self,
        vocabulary_size,
        num_classes,
        hidden_dim,
        num_layers,
        num_heads,
        intermediate_dim,
        key_value_dim=None,
        dropout=0.1,
        activation="relu",
        use_gated_activation=True,
        layer_norm_epsilon=1e-6,
        special_token_ids=None,
        pad_token_id=0,
        **kwargs,
    ):
        from keras_hub.src.models.t5.t5_layer_norm import T5LayerNorm
        from keras_hub.src.models.t5.t5_transformer_layer import T5TransformerLayer

        vocabulary_size = check_positive_int(vocabulary_size, "vocabulary_size")
        hidden_dim = check_positive_int(hidden_dim, "hidden_dim")
        num_heads = check_positive_int(num_heads, "num_heads")
        if key_value_dim is None:
            if hidden_dim % num_heads:
                raise ValueError(
                    "`hidden_dim` must be divisible by `num_heads` when "
                    f"`key_value_dim` is None. Received: hidden_dim={hidden_dim}, "
                    f"num_heads={num_heads}"
                )
            key_value_dim = hidden_dim // num_heads
        self.config_values = {
            "vocabulary_size": vocabulary_size,
            "num_classes": check_positive_int(num_classes, "num_classes"),
            "hidden_dim": hidden_dim,
            "num_layers": check_positive_int(num_layers, "num_layers"),
            "num_heads": num_heads,
            "intermediate_dim": check_positive_int(intermediate_dim, "intermediate_dim"),
            "key_value_dim": check_positive_int(key_value_dim, "key_value_dim"),
            "dropout": check_rate(dropout, "dropout"),
            "activation": keras.activations.serialize(keras.activations.get(activation)),
            "use_gated_activation": bool(use_gated_activation),
            "layer_norm_epsilon": float(layer_norm_epsilon),
            "special_token_ids": check_special_token_ids(
                special_token_ids, pad_token_id, vocabulary_size, "EncT5Classifier"
            ),
            "pad_token_id": int(pad_token_id),
        }
        super().__init__(**kwargs)
        cfg = self.config_values
        dtype = self.dtype_policy
        layer_args = {
            "hidden_dim": hidden_dim,
            "intermediate_dim": cfg["intermediate_dim"],
            "key_value_dim": cfg["key_value_dim"],
            "dropout": cfg["dropout"],
            "activation": activation,
            "layer_norm_epsilon": cfg["layer_norm_epsilon"],
            "num_heads": num_heads,
            "use_gated_activation": cfg["use_gated_activation"],
            "dtype": dtype,
        }
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size,
            hidden_dim,
            embeddings_initializer=keras.initializers.TruncatedNormal(stddev=1.0),
            dtype=dtype,
            name="token_embedding",
        )
        self.encoder_embedding_dropout = keras.layers.Dropout(
            cfg["dropout"], dtype=dtype, name="encoder_embedding_dropout"
        )
        self.encoder_transformer_layers = [
            T5TransformerLayer(
                is_decoder=False,
                use_relative_attention_bias=(i == 0),
                name=f"transformer_encoder_layer_{i}",
                **layer_args,
            )
            for i in range(cfg["num_layers"])
        ]
        self.encoder_layer_norm = T5LayerNorm(
            epsilon=cfg["layer_norm_epsilon"], dtype=dtype, name="encoder_output_layer_norm"
        )
        self.encoder_dropout = keras.layers.Dropout(
            cfg["dropout"], dtype=dtype, name="encoder_output_dropout"
        )
        self.decoder_query = self.add_weight(
            name="decoder_query",
            shape=(hidden_dim,),
            initializer=keras.initializers.TruncatedNormal(stddev=1.0),
        )
        self.decoder_embedding_dropout = keras.layers.Dropout(
            cfg["dropout"], dtype=dtype, name="decoder_embedding_dropout"
        )
        self.decoder_layer = T5TransformerLayer(
            is_decoder=True,
            use_relative_attention_bias=False,
            name="transformer_decoder_layer",
            **layer_args,
        )
        self.decoder_layer_norm = T5LayerNorm(
            epsilon=cfg["layer_norm_epsilon"], dtype=dtype, name="decoder_output_layer_norm"
        )
        self.decoder_dropout = keras.layers.Dropout(
            cfg["dropout"], dtype=dtype, name="decoder_output_dropout"
        )
        self.head = keras.layers.Dense(cfg["num_classes"], name="logits", dtype="float32")
        self.build()

    def build(self, input_shape=None):
        # keras-hub's T5 layers create their weights on their first call, so
        # one forward pass on two tokens builds the whole model.
        self.token_embedding.build((None, None))
        self.built = True
        token_ids = ops.zeros((1, 2), dtype="int32")
        self({"token_ids": token_ids, "padding_mask": ops.ones((1, 2), dtype="bool")})

    @classmethod
    def from_preset(
        cls,
        preset,
        num_classes,
        dropout=None,
        special_token_ids=None,
        pad_token_id=None,
        load_weights=True,
        dtype=None,
        **kwargs,
    ):
        """Builds an EncT5 classifier from a keras-hub T5 preset.

        Args:
            preset: a keras-hub T5 preset name (e.g. `"t5_1.1_small"`, needs
                network access) or a local keras-hub preset folder (as written
                by `T5Backbone.save_to_preset`).
            num_classes: number of outputs of the new head.
            dropout: dropout rate; `None` takes the preset's.
            special_token_ids: special token ids; `None` reads them from the
                preset's tokenizer (`<pad>`, `</s>`, `<unk>`, and the embedding
                rows beyond its vocabulary).
            pad_token_id: padding id; `None` reads it from the preset's
                tokenizer when `special_token_ids` is `None`, else 0.
            load_weights: whether to copy the pretrained weights.
            dtype: dtype policy (e.g. `"mixed_bfloat16"`); `None` keeps the
                preset's.
            **kwargs: standard `keras.Model` arguments.
        """
        import keras_hub

        backbone, special_token_ids, pad_token_id = load_preset_backbone(
            keras_hub.models.T5Backbone, keras_hub.models.T5Tokenizer, preset,
            special_token_ids, pad_token_id, load_weights, dtype,
        )
        model = cls(
            vocabulary_size=backbone.vocabulary_size,
            num_classes=num_classes,
            hidden_dim=backbone.hidden_dim,
            num_layers=backbone.num_layers,
            num_heads=backbone.num_heads,
            intermediate_dim=backbone.intermediate_dim,
            key_value_dim=backbone.key_value_dim,
            dropout=backbone.dropout if dropout is None else dropout,
            activation=keras.activations.serialize(backbone.activation),
            use_gated_activation=backbone.use_gated_activation,
            layer_norm_epsilon=backbone.layer_norm_epsilon,
            special_token_ids=special_token_ids,
            pad_token_id=pad_token_id,
            dtype=backbone.dtype_policy,
            **kwargs,
        )
        if load_weights:
            model.load_t5_weights(backbone)
        return model

    def load_t5_weights(self, backbone):
        """Copies the weights of a `keras_hub.models.T5Backbone` of the same shape.

        Copies the token embedding, every encoder layer, the encoder's final
        norm, the first decoder layer (all but its relative position bias)
        and the decoder's final norm; sets the decoder query to the embedding
        of the padding (decoder start) token. The head keeps its weights.
        """
        cfg = self.config_values
        if backbone.num_layers != cfg["num_layers"] or tuple(
            backbone.token_embedding.embeddings.shape
        ) != tuple(self.embedding_matrix.shape):
            raise ValueError(
                "The T5 backbone does not match this model: backbone vocabulary "
                f"{backbone.vocabulary_size}, hidden {backbone.hidden_dim}, "
                f"{backbone.num_layers} layers; model vocabulary "
                f"{cfg['vocabulary_size']}, hidden {cfg['hidden_dim']}, "
                f"{cfg['num_layers']} layers."
            )
        table = backbone.token_embedding.embeddings
        self.token_embedding.embeddings.assign(table)
        for source, target in zip(
            backbone.encoder_transformer_layers, self.encoder_transformer_layers
        ):
            target.set_weights(source.get_weights())
        self.encoder_layer_norm.set_weights(backbone.encoder_layer_norm.get_weights())
        source_decoder = backbone.decoder_transformer_layers[0]
        for part in _DECODER_LAYER_PARTS:
            if part == "gate_projector" and not cfg["use_gated_activation"]:
                continue
            _sublayer(self.decoder_layer, part).set_weights(
                _sublayer(source_decoder, part).get_weights()
            )
        self.decoder_layer_norm.set_weights(backbone.decoder_layer_norm.get_weights())
        self.decoder_query.assign(ops.take(table, self.pad_token_id, axis=0))

    # --- protocol ---------------------------------------------------------
    def embed_tokens(self, token_ids):
        return self.token_embedding(token_ids)

    def hidden_states_at(
        self, embeddings, padding_mask, segment_ids=None, layer=0, training=False
    ):
        del segment_ids  # T5 has no segment embeddings.
        self._check_layer(layer)
        x = self.encoder_embedding_dropout(embeddings, training=training)
        return self._run_encoder_layers(x, padding_mask, 0, layer, training)

    def logits_from_hidden(self, hidden, padding_mask, layer=0, training=False):
        self._check_layer(layer)
        x = self._run_encoder_layers(hidden, padding_mask, layer, self.num_layers, training)
        x = self.encoder_layer_norm(x)
        encoder_output = self.encoder_dropout(x, training=training)
        batch_size = ops.shape(encoder_output)[0]
        query = ops.cast(self.decoder_query, encoder_output.dtype)
        query = ops.broadcast_to(
            query[None, None, :], (batch_size, 1, self.config_values["hidden_dim"])
        )
        query = self.decoder_embedding_dropout(query, training=training)
        with warnings.catch_warnings():
            # Both are expected here: the self-attention runs over the one
            # decoder position, and keras-hub's attention takes its mask as a
            # plain `mask` argument, which Keras mistakes for a Keras mask.
            warnings.filterwarnings("ignore", message="You are using a softmax over axis")
            warnings.filterwarnings("ignore", message="Layer 'cross_attention'")
            y, _ = self.decoder_layer(
                query,
                encoder_hidden_states=encoder_output,
                encoder_attention_mask=padding_mask[:, None, :],
                use_causal_mask=False,
                training=training,
            )
        y = self.decoder_layer_norm(y)
        y = self.decoder_dropout(y, training=training)
        return self.head(y[:, 0, :])

    def encoder_position_bias(self, padding_mask, length):
        """The encoder's relative position bias with the padding mask folded in.

        Computed exactly as the first encoder layer of
        `keras_hub.models.T5Backbone` computes it: `[B, heads, L, L]`, with
        `-1e9` added at padded key positions.
        """
        attention = self.encoder_transformer_layers[0].self_attention
        bias = ops.cast(attention.compute_bias(length, length), attention.compute_dtype)
        mask = ops.cast(padding_mask, bias.dtype)[:, None, None, :]
        return bias + (1.0 - mask) * -1e9

    def _run_encoder_layers(self, x, padding_mask, start, stop, training):
        if start == stop:
            return x
        position_bias = self.encoder_position_bias(padding_mask, ops.shape(x)[1])
        for transformer_layer in self.encoder_transformer_layers[start:stop]:
            x, _ = transformer_layer(
                x, position_bias=position_bias, use_causal_mask=False, training=training
            )
        return x

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


def _sublayer(layer, dotted_name):
    for part in dotted_name.split("."):
        layer = getattr(layer, part)
    return layer
