"""``kosim.card.architecture``: the module stack a card prints, read from the model's public parts."""

from __future__ import annotations

from kosim.card import architecture
from kosim.card.architecture import encoder_class_name
from kosim.model import SentenceEncoder
from kosim.nn.hf import HFEncoder
from kosim.pooling import Dense, Normalize


def test_native_bert_with_dense_and_normalize(bert_dir):
    model = SentenceEncoder.load(bert_dir)
    dim = model.embedding_dim
    model.post.extend([Dense(dim, 8, activation=None), Normalize()])
    pooling = model.pooling.config()
    assert architecture(model) == (
        "SentenceTransformer(\n"
        f"  (0): Transformer({{'max_seq_length': {model.max_seq_length}, 'do_lower_case': False}})"
        " with Transformer model: BertModel \n"
        f"  (1): Pooling({pooling})\n"
        f"  (2): Dense({model.post[0].config()})\n"
        "  (3): Normalize()\n"
        ")"
    )


def test_roberta_and_a_wrapped_transformers_model(roberta_dir):
    from transformers import ElectraConfig, ElectraModel

    assert encoder_class_name(SentenceEncoder.load(roberta_dir).encoder) == "RobertaModel"
    tiny = ElectraConfig(vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    assert encoder_class_name(HFEncoder(ElectraModel(tiny), pad_token_id=0)) == "ElectraModel"
