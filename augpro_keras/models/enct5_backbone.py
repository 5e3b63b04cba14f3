"""EncT5's backbone: the T5 encoder and one decoder layer over a learned query."""

import warnings

import keras
import keras_hub
from keras import ops
from keras_hub.src.models.t5.t5_layer_norm import T5LayerNorm
from keras_hub.src.models.t5.t5_multi_head_attention import T5MultiHeadAttention
from keras_hub.src.models.t5.t5_transformer_layer import T5TransformerLayer

from augpro_keras.api_export import export
from augpro_keras.models.presets import check_positive_int
from augpro_keras.models.presets import check_rate

# Weighted sublayers of a keras-hub `T5TransformerLayer`, copied one by one
# from a pretrained T5 layer. The relative position bias is not among them:
# EncT5 keeps it in its own layer (`EncT5RelativePositionBias`).
_SELF_ATTENTION_PARTS = (
    "self_attention.query_projector",
    "self_attention.key_projector",
    "self_attention.value_projector",
    "self_attention.output_projector",
    "self_attention_layer_norm",
)
_CROSS_ATTENTION_PARTS = (
    "cross_attention.query_projector",
    "cross_attention.key_projector",
    "cross_attention.value_projector",
    "cross_attention.output_projector",
    "cross_attention_layer_norm",
)
_FEED_FORWARD_PARTS = ("input_projector", "gate_projector", "output_projector", "layer_norm")


@export
class EncT5RelativePositionBias(keras.layers.Layer):
    """T5's bidirectional relative position bias, with the padding mask folded in.

    keras-hub's T5 computes this bias inside the first encoder layer's
    self-attention and hands it to the others. EncT5 computes it in this
    layer, from the padding mask alone, so that a run that starts after
    layer `k` (TMix) gets it without running the layers before `k`. The
    values are exactly keras-hub's (`T5MultiHeadAttention.compute_bias`,
    plus `-1e9` at padded keys); `EncT5Backbone.load_t5_weights` copies the
    bias table of a pretrained first encoder layer here.

    Args:
        num_heads: attention heads (one bias per head).
        initializer_stddev: standard deviation of the table's initializer
            (keras-hub's T5: `(num_heads * key_value_dim) ** -0.5`).
        num_buckets: relative position buckets (T5: 32).
        max_distance: distance from which all positions share a bucket
            (T5: 128).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        padding_mask: bool or int `[B, L]`, true at real tokens.

    Returns:
        `[B, num_heads, L, L]`, in the layer's compute dtype.
    """

    def __init__(self, num_heads, initializer_stddev=1.0, num_buckets=32, max_distance=128,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int(num_heads, "num_heads")
        self.initializer_stddev = float(initializer_stddev)
        self.num_buckets = check_positive_int(num_buckets, "num_buckets")
        self.max_distance = check_positive_int(max_distance, "max_distance")
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.num_buckets, self.num_heads),
            initializer=keras.initializers.RandomNormal(stddev=self.initializer_stddev),
        )

    def call(self, padding_mask):
        length = ops.shape(padding_mask)[1]
        positions = ops.arange(length)
        relative_position = positions[None, :] - positions[:, None]
        # keras-hub has no public function for T5's bucketing; its attention
        # layer's static method is the one the pretrained bias was learned with.
        buckets = T5MultiHeadAttention._relative_position_bucket(
            relative_position, bidirectional=True, num_buckets=self.num_buckets,
            max_distance=self.max_distance,
        )
        values = ops.take(self.embeddings, buckets, axis=0)  # [L, L, heads]
        bias = ops.cast(ops.transpose(values, (2, 0, 1))[None], self.compute_dtype)
        mask = ops.cast(padding_mask, bias.dtype)[:, None, None, :]
        return bias + (1.0 - mask) * -1e9

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_heads": self.num_heads,
            "initializer_stddev": self.initializer_stddev,
            "num_buckets": self.num_buckets,
            "max_distance": self.max_distance,
        })
        return config


@export
class EncT5Decoder(keras.layers.Layer):
    """EncT5's decoder: one T5 decoder layer whose single input is a learned vector.

    The learned `query` `[H]` is the one decoder position; after
    `embedding_dropout` it goes through a keras-hub `T5TransformerLayer`
    (`is_decoder=True`): self-attention over that one position (without a
    relative position bias: over one position it would add a constant to
    the one score, which the softmax removes), cross-attention over the
    encoder output (padding masked), gated feed-forward block; then T5's
    RMS `layer_norm`.

    Args:
        hidden_dim, intermediate_dim, key_value_dim, num_heads, dropout,
        activation, use_gated_activation, layer_norm_epsilon: as in
            `EncT5Backbone`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        encoder_output: `[B, L, H]`.
        padding_mask: bool or int `[B, L]`, true at real tokens.
        training: whether dropout is active.

    Returns:
        `[B, H]`, the normalised output at the decoder position.
    """

    def __init__(self, hidden_dim, intermediate_dim, key_value_dim, num_heads, dropout,
                 activation, use_gated_activation, layer_norm_epsilon, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = check_positive_int(hidden_dim, "hidden_dim")
        self.intermediate_dim = check_positive_int(intermediate_dim, "intermediate_dim")
        self.key_value_dim = check_positive_int(key_value_dim, "key_value_dim")
        self.num_heads = check_positive_int(num_heads, "num_heads")
        self.dropout = check_rate(dropout, "dropout")
        self.activation = keras.activations.get(activation)
        self.use_gated_activation = bool(use_gated_activation)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.query = self.add_weight(
            name="query", shape=(self.hidden_dim,),
            initializer=keras.initializers.TruncatedNormal(stddev=1.0),
        )
        self.embedding_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="decoder_embedding_dropout"
        )
        self.transformer_layer = T5TransformerLayer(
            is_decoder=True, hidden_dim=self.hidden_dim, intermediate_dim=self.intermediate_dim,
            key_value_dim=self.key_value_dim, dropout=self.dropout, activation=activation,
            layer_norm_epsilon=self.layer_norm_epsilon, num_heads=self.num_heads,
            use_gated_activation=self.use_gated_activation, use_relative_attention_bias=False,
            dtype=self.dtype_policy, name="transformer_decoder_layer",
        )
        self.layer_norm = T5LayerNorm(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy,
            name="decoder_output_layer_norm",
        )

    def build(self, encoder_output_shape, padding_mask_shape=None):
        # keras-hub's T5 layers create their weights on their first call.
        length = encoder_output_shape[1] or 2
        self.call(ops.zeros((1, length, self.hidden_dim), self.compute_dtype),
                  ops.ones((1, length), "int32"))
        self.built = True

    def call(self, encoder_output, padding_mask, training=False):
        batch_size = ops.shape(encoder_output)[0]
        query = ops.cast(self.query, encoder_output.dtype)
        query = ops.broadcast_to(query[None, None, :], (batch_size, 1, self.hidden_dim))
        query = self.embedding_dropout(query, training=training)
        with warnings.catch_warnings():
            # Both are expected: the self-attention runs over the one decoder
            # position, and keras-hub's attention takes its mask as a plain
            # `mask` argument, which Keras mistakes for a Keras mask.
            warnings.filterwarnings("ignore", message="You are using a softmax over axis")
            warnings.filterwarnings("ignore", message="Layer 'cross_attention'")
            y, _ = self.transformer_layer(
                query,
                encoder_hidden_states=encoder_output,
                encoder_attention_mask=padding_mask[:, None, :],
                use_causal_mask=False,
                training=training,
            )
        return self.layer_norm(y)[:, 0, :]

    def compute_output_shape(self, encoder_output_shape, padding_mask_shape=None):
        return (encoder_output_shape[0], self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update({
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "key_value_dim": self.key_value_dim,
            "num_heads": self.num_heads,
            "dropout": self.dropout,
            "activation": keras.activations.serialize(self.activation),
            "use_gated_activation": self.use_gated_activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        })
        return config


@export
class EncT5Backbone(keras_hub.models.Backbone):
    """EncT5's network without a head: the T5 encoder, then one decoder layer.

    EncT5 (Liu et al., 2021) is the model of the AugPro paper's experiments:
    it keeps T5's whole encoder but only one decoder layer, whose input is a
    single learned vector instead of decoder tokens. That layer attends over
    the encoder output; its (normalised) output at the one decoder position
    is the `pooled_output`, from which `EncT5TextClassifier` computes the
    logits. keras-hub has T5 (`T5Backbone`, encoder-decoder) but no T5
    classifier; this backbone is a functional keras-hub `Backbone` like the
    others, so the Distiller's `TextClassifierAdapter` runs it from word
    embeddings and from any encoder layer as it runs BERT.

    The functional graph, in order:

    - `token_embedding` (T5 has no position embeddings), then
      `encoder_embedding_dropout`;
    - `relative_position_bias` (`EncT5RelativePositionBias`): T5's relative
      position bias with the padding mask folded in, computed from the
      padding mask and given to every encoder layer (in keras-hub's
      `T5Backbone` the first layer computes it and hands it on);
    - `transformer_layers`: keras-hub `T5TransformerLayer`s
      (`is_decoder=False`);
    - `encoder_output_layer_norm` (T5's RMS norm) and
      `encoder_output_dropout`: the `sequence_output`;
    - `decoder` (`EncT5Decoder`): the learned query through one T5 decoder
      layer and its final norm: the `pooled_output` `[B, H]`.

    T5 has no segment embeddings: a sentence pair is packed as
    `a </s> b </s>` by `EncT5TextClassifierPreprocessor`.

    Args:
        vocabulary_size: number of rows of the token embedding.
        num_layers: number of encoder layers.
        num_heads: attention heads per layer.
        hidden_dim: width of embeddings and hidden states.
        intermediate_dim: width of the feed-forward layers.
        key_value_dim: width of each attention head; `None` uses
            `hidden_dim // num_heads`.
        dropout: dropout rate used when `training=True`.
        activation: activation of the feed-forward layers (T5 1.1: `"gelu"`
            with gating; keras-hub's default `"relu"`).
        use_gated_activation: whether the feed-forward block is gated
            (GEGLU/ReGLU, as in T5 1.1).
        layer_norm_epsilon: epsilon of the RMS layer norms.
        dtype: dtype policy of the layers (e.g. `"mixed_bfloat16"`).
        **kwargs: standard `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: a dict with `"token_ids"` (int `[B, L]`) and
            `"padding_mask"` (int or bool `[B, L]`).

    Returns:
        A dict with `"sequence_output"` (`[B, L, H]`, the encoder output) and
        `"pooled_output"` (`[B, H]`, the decoder output).

    Example:
    ```python
    backbone = EncT5Backbone(vocabulary_size=100, num_layers=2, num_heads=2,
                             hidden_dim=16, intermediate_dim=32)
    outputs = backbone({"token_ids": ids, "padding_mask": ids != 0})

    # The weights of a keras-hub T5 checkpoint (name or local folder).
    backbone = EncT5Backbone.from_t5_preset("t5_1.1_small")
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
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        key_value_dim=None,
        dropout=0.1,
        activation="relu",
        use_gated_activation=True,
        layer_norm_epsilon=1e-6,
        dtype=None,
        **kwargs,
    ):
        vocabulary_size = check_positive_int(vocabulary_size, "vocabulary_size")
        num_layers = check_positive_int(num_layers, "num_layers")
        num_heads = check_positive_int(num_heads, "num_heads")
        hidden_dim = check_positive_int(hidden_dim, "hidden_dim")
        intermediate_dim = check_positive_int(intermediate_dim, "intermediate_dim")
        if key_value_dim is None and hidden_dim % num_heads:
            raise ValueError(
                "`hidden_dim` must be divisible by `num_heads` when `key_value_dim` is None. "
                f"Received: hidden_dim={hidden_dim}, num_heads={num_heads}"
            )
        head_dim = hidden_dim // num_heads if key_value_dim is None else check_positive_int(
            key_value_dim, "key_value_dim")
        dropout = check_rate(dropout, "dropout")
        layer_args = dict(
            hidden_dim=hidden_dim, intermediate_dim=intermediate_dim, key_value_dim=head_dim,
            dropout=dropout, activation=activation, layer_norm_epsilon=layer_norm_epsilon,
            num_heads=num_heads, use_gated_activation=use_gated_activation, dtype=dtype,
        )

        # === Layers ===
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size, hidden_dim,
            embeddings_initializer=keras.initializers.TruncatedNormal(stddev=1.0),
            dtype=dtype, name="token_embedding",
        )
        self.encoder_embedding_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="encoder_embedding_dropout"
        )
        self.relative_position_bias = EncT5RelativePositionBias(
            num_heads, initializer_stddev=(num_heads * head_dim) ** -0.5, dtype=dtype,
            name="relative_position_bias",
        )
        self.transformer_layers = [
            T5TransformerLayer(is_decoder=False, use_relative_attention_bias=False,
                               name=f"transformer_encoder_layer_{i}", **layer_args)
            for i in range(num_layers)
        ]
        self.encoder_layer_norm = T5LayerNorm(
            epsilon=layer_norm_epsilon, dtype=dtype, name="encoder_output_layer_norm"
        )
        self.encoder_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="encoder_output_dropout"
        )
        self.decoder = EncT5Decoder(name="decoder", **layer_args)

        # === Functional Model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = self.token_embedding(token_ids)
        x = self.encoder_embedding_dropout(x)
        position_bias = self.relative_position_bias(padding_mask)
        for transformer_layer in self.transformer_layers:
            x, _ = transformer_layer(x, position_bias=position_bias, use_causal_mask=False)
        x = self.encoder_layer_norm(x)
        sequence_output = self.encoder_dropout(x)
        pooled_output = self.decoder(sequence_output, padding_mask)
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs={"sequence_output": sequence_output, "pooled_output": pooled_output},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.key_value_dim = key_value_dim
        self.dropout = dropout
        self.activation = keras.activations.get(activation)
        self.use_gated_activation = bool(use_gated_activation)
        self.layer_norm_epsilon = float(layer_norm_epsilon)

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "key_value_dim": self.key_value_dim,
            "dropout": self.dropout,
            "activation": keras.activations.serialize(self.activation),
            "use_gated_activation": self.use_gated_activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        })
        return config

    # === Pretrained T5 weights ===
    @classmethod
    def from_t5_preset(cls, preset, load_weights=True, dropout=None, dtype=None,
                       decoder_start_token_id=0, **kwargs):
        """An EncT5 backbone of a keras-hub T5 preset's sizes and (optionally) weights.

        Args:
            preset: a keras-hub T5 preset name (e.g. `"t5_1.1_small"`, needs
                network access) or a local preset folder (as written by
                `keras_hub.models.T5Backbone.save_to_preset`).
            load_weights: whether to copy the pretrained weights (see
                `load_t5_weights`).
            dropout: dropout rate; `None` takes the preset's.
            dtype: dtype policy; `None` keeps the preset's.
            decoder_start_token_id: see `load_t5_weights`.
            **kwargs: standard `keras.Model` arguments.
        """
        t5_kwargs = {"load_weights": load_weights}
        if dtype is not None:
            t5_kwargs["dtype"] = dtype
        t5 = keras_hub.models.T5Backbone.from_preset(preset, **t5_kwargs)
        backbone = cls.like_t5(t5, dropout=dropout, **kwargs)
        if load_weights:
            backbone.load_t5_weights(t5, decoder_start_token_id)
        return backbone

    @classmethod
    def like_t5(cls, t5_backbone, dropout=None, **kwargs):
        """A randomly initialised EncT5 backbone of a `T5Backbone`'s sizes."""
        return cls(
            vocabulary_size=t5_backbone.vocabulary_size,
            num_layers=t5_backbone.num_layers,
            num_heads=t5_backbone.num_heads,
            hidden_dim=t5_backbone.hidden_dim,
            intermediate_dim=t5_backbone.intermediate_dim,
            key_value_dim=t5_backbone.key_value_dim,
            dropout=t5_backbone.dropout if dropout is None else dropout,
            activation=keras.activations.serialize(t5_backbone.activation),
            use_gated_activation=t5_backbone.use_gated_activation,
            layer_norm_epsilon=t5_backbone.layer_norm_epsilon,
            dtype=kwargs.pop("dtype", t5_backbone.dtype_policy),
            **kwargs,
        )

    def load_t5_weights(self, t5_backbone, decoder_start_token_id=0):
        """Copies the weights of a `keras_hub.models.T5Backbone` of the same shape.

        Copies the token embedding, every encoder layer, the first encoder
        layer's relative position bias (into `relative_position_bias`), the
        encoder's final norm, the first decoder layer (all but its relative
        position bias) and the decoder's final norm, as the public EncT5
        port for HuggingFace Transformers initialises from T5. The decoder
        query becomes the embedding of the padding token, which is T5's
        decoder start token, so the pretrained decoder layer first sees the
        input it was trained on.

        Args:
            t5_backbone: a `keras_hub.models.T5Backbone` with this backbone's
                vocabulary size, width and number of layers.
            decoder_start_token_id: the row of the token embedding that the
                decoder query starts from (T5's padding id, 0 in T5
                vocabularies).
        """
        if t5_backbone.num_layers != self.num_layers or tuple(
            t5_backbone.token_embedding.embeddings.shape
        ) != tuple(self.token_embedding.embeddings.shape):
            raise ValueError(
                "The T5 backbone does not match this EncT5 backbone: T5 vocabulary "
                f"{t5_backbone.vocabulary_size}, hidden {t5_backbone.hidden_dim}, "
                f"{t5_backbone.num_layers} layers; EncT5 vocabulary {self.vocabulary_size}, "
                f"hidden {self.hidden_dim}, {self.num_layers} layers."
            )
        table = t5_backbone.token_embedding.embeddings
        self.token_embedding.embeddings.assign(table)
        feed_forward = [p for p in _FEED_FORWARD_PARTS
                        if p != "gate_projector" or self.use_gated_activation]
        for source, target in zip(t5_backbone.encoder_transformer_layers, self.transformer_layers):
            _copy_parts(source, target, _SELF_ATTENTION_PARTS + tuple(feed_forward))
        first_attention = t5_backbone.encoder_transformer_layers[0].self_attention
        self.relative_position_bias.embeddings.assign(first_attention.relative_attention_bias)
        self.encoder_layer_norm.set_weights(t5_backbone.encoder_layer_norm.get_weights())
        _copy_parts(t5_backbone.decoder_transformer_layers[0], self.decoder.transformer_layer,
                    _SELF_ATTENTION_PARTS + _CROSS_ATTENTION_PARTS + tuple(feed_forward))
        self.decoder.layer_norm.set_weights(t5_backbone.decoder_layer_norm.get_weights())
        self.decoder.query.assign(ops.take(table, int(decoder_start_token_id), axis=0))


def _copy_parts(source, target, parts):
    for part in parts:
        _sublayer(target, part).set_weights(_sublayer(source, part).get_weights())


def _sublayer(layer, dotted_name):
    for part in dotted_name.split("."):
        layer = getattr(layer, part)
    return layer
