"""`SentenceTransformer(modules=[...])` scripts run once through sentence-transformers and once through kosim.st:
the same modules on the same checkpoint give equal embeddings, and each library loads the other's save.

Dense layers start from the same weights because both libraries create them under the same `torch.manual_seed`
(kosim's Dense draws its Linear and residual projection in sentence-transformers' order); one test copies the
weights across with `init_weight` / `init_bias` instead.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import KOREAN
from torch import nn

st = pytest.importorskip("sentence_transformers")
from sentence_transformers import models as st_models  # noqa: E402

from kosim.st import SentenceTransformer, models  # noqa: E402

TEXTS = [*KOREAN, "The QUICK brown fox"]
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # sentence-transformers 6's renamed arguments


def _build(lib, bert_dir, pooling: dict, dense: dict | None = None, normalize: bool = True, transformer=None):
    """The same script in either library: `lib` is `(SentenceTransformer, models)`."""
    model_cls, mods = lib
    transformer = mods.Transformer(str(bert_dir), **(transformer or {"max_seq_length": 16}))
    modules = [transformer, mods.Pooling(transformer.get_word_embedding_dimension(), **pooling)]
    if dense is not None:
        width = modules[1].get_sentence_embedding_dimension()
        torch.manual_seed(11)
        modules.append(mods.Dense(width, **dense))
    if normalize:
        modules.append(mods.Normalize())
    return model_cls(modules=modules, device="cpu")


THEIRS = (st.SentenceTransformer, st_models)
OURS = (SentenceTransformer, models)


def _close(a, b, atol=1e-5):
    assert a.shape == b.shape
    assert float(np.abs(a - b).max()) <= atol


@pytest.mark.parametrize(
    ("pooling", "dense"),
    [
        ({}, None),
        ({"pooling_mode": "cls"}, {"out_features": 8}),
        ({"pooling_mode": "max"}, {"out_features": 8, "activation_function": None, "bias": False}),
        ({"pooling_mode": ("mean", "max")}, {"out_features": 12, "activation_function": nn.ReLU()}),
        ({"pooling_mode": ["weightedmean", "cls"]}, {"out_features": 64, "use_residual": True}),
        ({"pooling_mode": "lasttoken"}, {"out_features": 32, "use_residual": True, "activation_function": nn.GELU()}),
        ({"pooling_mode": "mean_sqrt_len_tokens"}, {"out_features": 8, "activation_function": nn.Identity()}),
        ({"pooling_mode_cls_token": True, "pooling_mode_max_tokens": True}, {"out_features": 8}),
        ({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}, None),
        ({"pooling_mode_cls_token": False}, None),  # no flag on: mean
    ],
    ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) if isinstance(p, dict) else "no-dense",
)
def test_modules_give_equal_embeddings_and_saves_load_across(bert_dir, tmp_path, pooling, dense):
    theirs, ours = _build(THEIRS, bert_dir, pooling, dense), _build(OURS, bert_dir, pooling, dense)
    expected = theirs.encode(TEXTS)
    _close(ours.encode(TEXTS), expected)
    assert ours.get_sentence_embedding_dimension() == theirs.get_sentence_embedding_dimension()
    assert ours.max_seq_length == theirs.max_seq_length == 16

    ours.save(str(tmp_path / "kosim"))
    _close(st.SentenceTransformer(str(tmp_path / "kosim"), device="cpu").encode(TEXTS), expected)
    theirs.save(str(tmp_path / "st"))
    _close(SentenceTransformer(str(tmp_path / "st"), device="cpu").encode(TEXTS), expected)


def test_without_normalize_and_with_normalize_first(bert_dir, tmp_path):
    """Normalize may come before a Dense (the order is kept on save)."""

    def script(lib):
        model_cls, mods = lib
        transformer = mods.Transformer(str(bert_dir))
        torch.manual_seed(5)
        dense = mods.Dense(32, 6, activation_function=nn.Tanh())
        return model_cls(modules=[transformer, mods.Pooling(32, "mean"), mods.Normalize(), dense], device="cpu")

    theirs, ours = script(THEIRS), script(OURS)
    expected = theirs.encode(TEXTS)
    _close(ours.encode(TEXTS), expected)
    assert float(np.abs(np.linalg.norm(expected, axis=1) - 1).min()) > 0.01  # the Dense comes last: not unit length
    ours.save(str(tmp_path / "kosim"))
    _close(st.SentenceTransformer(str(tmp_path / "kosim"), device="cpu").encode(TEXTS), expected)


def test_dense_weights_copied_across_with_init_weight(bert_dir):
    weight, bias = torch.randn(8, 32, generator=torch.Generator().manual_seed(1)), torch.linspace(-1, 1, 8)

    def script(lib):
        model_cls, mods = lib
        transformer = mods.Transformer(str(bert_dir))
        dense = mods.Dense(32, 8, init_weight=weight.clone(), init_bias=bias.clone())
        return model_cls(modules=[transformer, mods.Pooling(32), dense], device="cpu")

    _close(script(OURS).encode(TEXTS), script(THEIRS).encode(TEXTS))


def test_transformer_options_and_prompts(bert_dir, tmp_path):
    """max_seq_length, do_lower_case, include_prompt=False with a prompt, an OrderedDict of modules."""
    from collections import OrderedDict

    def script(lib):
        model_cls, mods = lib
        transformer = mods.Transformer(str(bert_dir), max_seq_length=8, do_lower_case=True)
        pooling = mods.Pooling(32, pooling_mode="mean", include_prompt=False)
        return model_cls(
            modules=OrderedDict([("0", transformer), ("1", pooling)]), device="cpu", prompts={"query": "질문 하나: "}
        )

    theirs, ours = script(THEIRS), script(OURS)
    assert ours.max_seq_length == theirs.max_seq_length == 8
    for kwargs in ({}, {"prompt_name": "query"}):
        _close(ours.encode(TEXTS, **kwargs), theirs.encode(TEXTS, **kwargs))
    ours.save(str(tmp_path / "kosim"))
    back = st.SentenceTransformer(str(tmp_path / "kosim"), device="cpu")
    assert back.max_seq_length == 8
    _close(back.encode(TEXTS, prompt_name="query"), theirs.encode(TEXTS, prompt_name="query"))


def test_dimensions_and_pooling_mode_names(bert_dir):
    transformer = models.Transformer(str(bert_dir))
    reference = st_models.Transformer(str(bert_dir))
    assert transformer.get_word_embedding_dimension() == reference.get_embedding_dimension() == 32
    assert transformer.max_seq_length == reference.max_seq_length
    assert transformer.tokenizer.vocab == reference.tokenizer.vocab
    for kwargs, name, dim in (
        ({}, "mean", 32),
        ({"pooling_mode": "cls"}, "cls", 32),
        ({"pooling_mode": ("cls", "max")}, "cls+max", 64),
        ({"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}, "max+mean", 64),
    ):
        pooling = models.Pooling(32, **kwargs)
        assert pooling.get_pooling_mode_str() == name
        assert (
            pooling.get_sentence_embedding_dimension()
            == dim
            == st_models.Pooling(32, **kwargs).get_embedding_dimension()
        )
    assert models.Pooling(embedding_dimension=32).get_pooling_mode_str() == "mean"
    assert models.Dense(32, 8).get_sentence_embedding_dimension() == 8


# ----------------------------------------------------------------- what kosim cannot represent is refused by name
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"model_args": {"torch_dtype": "float16"}}, ValueError, r"model_args=\{'torch_dtype'"),
        ({"tokenizer_args": {"use_fast": False}}, ValueError, "tokenizer_args="),
        ({"config_args": {"hidden_dropout_prob": 0.0}}, ValueError, "config_args="),
        ({"model_kwargs": {"attn_implementation": "eager"}}, ValueError, "model_kwargs="),
        ({"cache_dir": "/tmp/cache"}, ValueError, "cache_dir='/tmp/cache'"),
        ({"backend": "onnx"}, ValueError, "backend='onnx'"),
        ({"transformer_task": "fill-mask"}, ValueError, "transformer_task='fill-mask'"),
        ({"query_length": 8}, ValueError, "query_length=8"),
        ({"max_seq_length": 1}, ValueError, "max_seq_length must be an int >= 2"),
        ({"max_seq_length": 1000}, ValueError, "exceeds the model's position table"),
        ({"do_lower_case": "yes"}, ValueError, "do_lower_case must be true or false"),
        ({"max_seq_lenght": 8}, TypeError, "did you mean 'max_seq_length'"),
    ],
)
def test_unsupported_transformer_options_are_refused(bert_dir, kwargs, error, message):
    with pytest.raises(error, match=message):
        models.Transformer(str(bert_dir), **kwargs)


def test_loader_options_that_change_nothing_are_accepted(bert_dir):
    transformer = models.Transformer(
        str(bert_dir), model_args={}, tokenizer_args=None, unpad_inputs=False, processing_kwargs={}
    )
    assert transformer.get_word_embedding_dimension() == 32


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: models.Dense(32, 8, activation_function=nn.LeakyReLU()), ValueError, "LeakyReLU.*not supported"),
        (lambda: models.Dense(32, 8, activation_function=nn.GELU(approximate="tanh")), ValueError, "arguments"),
        (lambda: models.Dense(32, 8, module_input_name="token_embeddings"), ValueError, "module_input_name="),
        (lambda: models.Dense(32, 8, module_output_name="projected"), ValueError, "module_output_name='projected'"),
        (lambda: models.Dense(32, 8, init_weight=torch.zeros(32, 8)), ValueError, r"init_weight must be \[8, 32\]"),
        (lambda: models.Normalize(module_input_name="token_embeddings"), ValueError, "Normalize: module_input_name"),
        (lambda: models.Pooling(32, "sum"), ValueError, "unknown pooling mode 'sum'"),
        (lambda: models.Pooling(32, "cls", pooling_mode_mean_tokens=True), ValueError, "contradicts"),
        (lambda: models.Pooling(), TypeError, "word_embedding_dimension"),
    ],
)
def test_unsupported_module_options_are_refused(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_module_lists_kosim_cannot_represent_are_refused(bert_dir):
    transformer = models.Transformer(str(bert_dir))
    pooling = models.Pooling(32)
    cases = [
        ([transformer, st_models.Pooling(32)], TypeError, r"modules\[1\]: .*Pooling is not supported.*kosim.st.models"),
        ([transformer, pooling, nn.Dropout(0.1)], TypeError, r"modules\[2\]: torch.nn.modules.dropout.Dropout"),
        ([pooling, transformer], ValueError, r"modules\[0\] must be a kosim.st.models.Transformer"),
        ([transformer], ValueError, r"modules\[1\] must be a Pooling.*got nothing"),
        ([transformer, models.Normalize(), pooling], ValueError, r"modules\[1\] must be a Pooling"),
        ([transformer, pooling, models.Pooling(32)], ValueError, r"modules\[2\]: a second Pooling"),
        ([transformer, pooling, transformer], ValueError, r"modules\[2\]: a second Transformer"),
        ([transformer, models.Pooling(16)], ValueError, "word_embedding_dimension 16 != the Transformer's 32"),
        (
            [transformer, pooling, models.Dense(64, 8)],
            ValueError,
            r"modules\[2\]: Dense in_features 64 != its input 32",
        ),
        ([], ValueError, "got nothing"),
    ]
    for modules, error, message in cases:
        with pytest.raises(error, match=message):
            SentenceTransformer(modules=modules, device="cpu")
    with pytest.raises(ValueError, match="not both"):
        SentenceTransformer(str(bert_dir), modules=[transformer, pooling])
