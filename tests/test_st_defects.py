"""Defects found by running sentence-transformers' own cases against kosim (issue 16, point 6), one test each."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from kosim.model import SentenceEncoder
from kosim.st_format import CheckpointError

st = pytest.importorskip("sentence_transformers")

TEXTS = ["안전모를 가진 한 남자가 춤을 추고 있다.", "아이", "The Quick Brown Fox 새단어", "사람들이 기차를 타고 있다."]


def _hf_ids(model: SentenceEncoder, texts: list[str]) -> list[list[int]]:
    """The reference: transformers' own tokenization with the model's truncation."""
    out = model.tokenizer.hf(texts, add_special_tokens=True, truncation=True, max_length=model.max_seq_length)
    return out["input_ids"]


# ----------------------------------------------------------------- the tokenizer follows its current state
def test_tokens_added_after_first_use_are_tokenized(bert_dir, tmp_path):
    model = SentenceEncoder.load(bert_dir)
    before = model.tokenize(TEXTS)  # builds the fast-path copy
    assert model.tokenizer.hf.add_tokens(["새단어"]) == 1
    after = _hf_ids(model, TEXTS)
    assert after != before  # the new token changes the ids
    assert model.tokenize(TEXTS) == after
    model.save(tmp_path / "m")
    assert SentenceEncoder.load(tmp_path / "m").tokenize(TEXTS) == model.tokenize(TEXTS)


def test_a_new_post_processor_is_applied(bert_dir):
    from tokenizers.processors import TemplateProcessing

    model = SentenceEncoder.load(bert_dir)
    first = model.tokenize(TEXTS)
    hf = model.tokenizer.hf
    cls_id = hf.cls_token_id
    hf.backend_tokenizer.post_processor = TemplateProcessing(
        single=f"{hf.cls_token} {hf.cls_token} $A", special_tokens=[(hf.cls_token, cls_id)]
    )
    ids = model.tokenize(TEXTS)
    assert ids == _hf_ids(model, TEXTS)
    assert all(seq[:2] == [cls_id, cls_id] for seq in ids) and ids != first


# ----------------------------------------------------------------- default_prompt_name
def test_invalid_default_prompt_name_is_refused(bert_dir, tmp_path):
    model = SentenceEncoder.load(bert_dir)
    model.prompts = {"query": "질문: "}
    with pytest.raises(ValueError, match="default_prompt_name 'qeury' is not one of.*did you mean 'query'"):
        model.default_prompt_name = "qeury"
    assert model.default_prompt_name is None
    model.default_prompt_name = "query"
    model.save(tmp_path / "ok")
    assert SentenceEncoder.load(tmp_path / "ok").default_prompt_name == "query"

    cfg_path = tmp_path / "ok" / "config_sentence_transformers.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["default_prompt_name"] = "passage"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"config_sentence_transformers.json: default_prompt_name 'passage'"):
        SentenceEncoder.load(tmp_path / "ok")

    del model.prompts["query"]  # a plain dict edited after the assignment: the save refuses it
    with pytest.raises(ValueError, match="default_prompt_name 'query'"):
        model.save(tmp_path / "bad")


# ----------------------------------------------------------------- every module config key supported or refused
def _st_with_dense(bert_dir, out_features: int, **dense_kwargs):
    from sentence_transformers import SentenceTransformer, models

    torch.manual_seed(4)
    transformer = models.Transformer(str(bert_dir), max_seq_length=16)
    dense = models.Dense(32, out_features, **dense_kwargs)
    return SentenceTransformer(modules=[transformer, models.Pooling(32), dense, models.Normalize()], device="cpu")


@pytest.mark.parametrize("out_features", [32, 12])
def test_dense_use_residual_loads_with_equal_embeddings(bert_dir, tmp_path, out_features):
    ref = _st_with_dense(bert_dir, out_features, use_residual=True)
    ref.save(str(tmp_path / "st"))
    ours = SentenceEncoder.load(tmp_path / "st")
    expected = ref.encode(TEXTS)
    assert float(np.abs(ours.encode(TEXTS) - expected).max()) <= 1e-5
    ours.save(tmp_path / "kosim")  # and back: sentence-transformers reads kosim's residual Dense
    back = st.SentenceTransformer(str(tmp_path / "kosim"), device="cpu")
    assert float(np.abs(back.encode(TEXTS) - expected).max()) <= 1e-5


def _edit_config(path, **changes) -> None:
    cfg = json.loads(path.read_text()) if path.is_file() else {}
    cfg.update(changes)
    path.write_text(json.dumps(cfg))


@pytest.mark.parametrize(
    ("module", "changes", "message"),
    [
        ("2_Dense", {"module_input_name": "token_embeddings"}, "module_input_name='token_embeddings'"),
        ("2_Dense", {"module_output_name": "projected"}, "module_output_name='projected'"),
        ("2_Dense", {"init_scale": 2.0}, "config key 'init_scale'"),
        ("2_Dense", {"in_features": "32"}, "in_features must be a positive int"),
        ("1_Pooling", {"pooling_dropout": 0.1}, "config key 'pooling_dropout'"),
        ("3_Normalize", {"module_input_name": "token_embeddings"}, "module_input_name='token_embeddings'"),
        ("3_Normalize", {"p": 1}, "config key 'p'"),
        ("1_Pooling", {"include_prompt": "false"}, "include_prompt must be true or false"),
        ("2_Dense", {"bias": 0}, "bias must be true or false"),
        ("2_Dense", {"use_residual": "yes"}, "use_residual must be true or false"),
    ],
)
def test_unsupported_module_config_is_refused_naming_file_and_key(bert_dir, tmp_path, module, changes, message):
    _st_with_dense(bert_dir, 32).save(str(tmp_path / "m"))
    _edit_config(tmp_path / "m" / module / "config.json", **changes)
    with pytest.raises(CheckpointError, match=rf"{module}/config.json: .*{message}"):
        SentenceEncoder.load(tmp_path / "m")


def test_supported_keys_at_their_defaults_load(bert_dir, tmp_path):
    ref = _st_with_dense(bert_dir, 32)
    ref.save(str(tmp_path / "m"))
    _edit_config(tmp_path / "m" / "2_Dense" / "config.json", module_output_name=None, use_residual=False)
    _edit_config(tmp_path / "m" / "3_Normalize" / "config.json", module_output_name="sentence_embedding")
    assert float(np.abs(SentenceEncoder.load(tmp_path / "m").encode(TEXTS) - ref.encode(TEXTS)).max()) <= 1e-5


def test_dense_weights_must_match_the_config(bert_dir, tmp_path):
    _st_with_dense(bert_dir, 12, use_residual=True).save(str(tmp_path / "m"))
    _edit_config(tmp_path / "m" / "2_Dense" / "config.json", use_residual=False)
    with pytest.raises(CheckpointError, match=r"2_Dense: Dense weights do not match.*unexpected \['residual.weight'\]"):
        SentenceEncoder.load(tmp_path / "m")


# ----------------------------------------------------------------- similarity_fn_name
def test_similarity_fn_name_is_validated_on_assignment(bert_dir, tmp_path):
    from sentence_transformers import SimilarityFunction

    model = SentenceEncoder.load(bert_dir)
    with pytest.raises(ValueError, match="unknown similarity function 'cosinus'"):
        model.similarity_fn_name = "cosinus"
    assert model.similarity_fn_name == "cosine"
    model.similarity_fn_name = SimilarityFunction.DOT_PRODUCT
    assert model.similarity_fn_name == "dot" and type(model.similarity_fn_name) is str
    model.save(tmp_path / "m")
    _edit_config(tmp_path / "m" / "config_sentence_transformers.json", similarity_fn_name="maxsim")
    with pytest.raises(CheckpointError, match="config_sentence_transformers.json: similarity_fn_name"):
        SentenceEncoder.load(tmp_path / "m")


# ----------------------------------------------------------------- model(texts)
def test_calling_the_model_on_texts_says_what_it_takes(bert_dir):
    model = SentenceEncoder.load(bert_dir)
    with pytest.raises(TypeError, match=r"called on a PackedBatch.*got list; to embed texts, call model.encode"):
        model(["text"])
    with pytest.raises(TypeError, match="got str"):
        model("text")


# ----------------------------------------------------------------- the Transformer module's config keys
@pytest.fixture(scope="module")
def st_saved(bert_dir, tmp_path_factory):
    """A directory saved by sentence-transformers (its sentence_bert_config.json: transformer_task, ...)."""
    out = tmp_path_factory.mktemp("st6") / "m"
    st.SentenceTransformer(str(bert_dir), device="cpu").save(str(out))
    return out


def _copy(src, tmp_path):
    import shutil

    return shutil.copytree(src, tmp_path / "m")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"transformer_task": "fill-mask"}, "transformer_task='fill-mask'"),
        ({"module_output_name": "sentence_embedding"}, "module_output_name='sentence_embedding'"),
        (
            {"modality_config": {"text": {"method": "forward", "method_output_name": "pooler_output"}}},
            "modality_config=",
        ),
        ({"processing_kwargs": {"text": {"padding": "max_length"}}}, "processing_kwargs="),
        ({"query_length": 8}, "query_length=8"),
        ({"document_length": 8}, "document_length=8"),
        ({"query_expansion": {"strategy": "fixed"}}, "query_expansion="),
        ({"model_args": {"torch_dtype": "float16"}}, "model_args="),
        ({"tokenizer_args": {"model_max_length": 8}}, "tokenizer_args="),
        ({"config_args": {"hidden_act": "relu"}}, "config_args="),
        ({"model_kwargs": {"attn_implementation": "eager"}}, "model_kwargs="),
        ({"processor_kwargs": {"do_lower_case": True}}, "processor_kwargs="),
        ({"config_kwargs": {"num_hidden_layers": 1}}, "config_kwargs="),
        ({"cache_dir": "/tmp/elsewhere"}, "cache_dir='/tmp/elsewhere'"),
        ({"backend": "onnx"}, "backend='onnx'"),
        ({"tokenizer_name_or_path": "klue/bert-base"}, "tokenizer_name_or_path='klue/bert-base'"),
        ({"pooling_mode": "cls"}, "config key 'pooling_mode'"),
        ({"max_seq_length": "16"}, "max_seq_length must be an int"),
        ({"do_lower_case": 1}, "do_lower_case must be true or false"),
    ],
)
def test_unsupported_transformer_config_is_refused_naming_file_and_key(st_saved, tmp_path, changes, message):
    model_dir = _copy(st_saved, tmp_path)
    _edit_config(model_dir / "sentence_bert_config.json", **changes)
    with pytest.raises(CheckpointError, match=rf"sentence_bert_config.json: .*{re.escape(message)}"):
        SentenceEncoder.load(model_dir)


def test_transformer_config_keys_that_change_nothing_load(st_saved, tmp_path):
    model_dir = _copy(st_saved, tmp_path)
    _edit_config(
        model_dir / "sentence_bert_config.json",
        unpad_inputs=False,
        processing_kwargs={},
        model_args={"trust_remote_code": True},  # sentence-transformers drops it from a config file, as kosim does
        config_kwargs={},
        backend="torch",
        max_seq_length=12,
        do_lower_case=False,
    )
    ref = st.SentenceTransformer(str(model_dir), device="cpu")
    ours = SentenceEncoder.load(model_dir)
    assert ours.max_seq_length == ref.max_seq_length == 12
    assert float(np.abs(ours.encode(TEXTS) - ref.encode(TEXTS)).max()) <= 1e-5


def test_legacy_transformer_config_file_name_is_read(st_saved, tmp_path):
    """sentence-transformers also reads sentence_xlm-roberta_config.json (and the other old names)."""
    model_dir = _copy(st_saved, tmp_path)
    (model_dir / "sentence_bert_config.json").unlink()
    _edit_config(model_dir / "sentence_xlm-roberta_config.json", max_seq_length=6, do_lower_case=False)
    ref = st.SentenceTransformer(str(model_dir), device="cpu")
    ours = SentenceEncoder.load(model_dir)
    assert ours.max_seq_length == ref.max_seq_length == 6
    assert float(np.abs(ours.encode(TEXTS) - ref.encode(TEXTS)).max()) <= 1e-5
    _edit_config(model_dir / "sentence_xlm-roberta_config.json", model_args={"revision": "main"})
    with pytest.raises(CheckpointError, match=r"sentence_xlm-roberta_config.json: model_args="):
        SentenceEncoder.load(model_dir)


# ----------------------------------------------------------------- config_sentence_transformers.json keys
def test_saved_truncate_dim_is_read_and_written(bert_dir, tmp_path):
    st.SentenceTransformer(str(bert_dir), device="cpu", truncate_dim=8).save(str(tmp_path / "st"))
    ref = st.SentenceTransformer(str(tmp_path / "st"), device="cpu")
    ours = SentenceEncoder.load(tmp_path / "st")
    assert ours.truncate_dim == ref.truncate_dim == 8
    assert ours.encode(TEXTS).shape == ref.encode(TEXTS).shape == (len(TEXTS), 8)
    assert float(np.abs(ours.encode(TEXTS) - ref.encode(TEXTS)).max()) <= 1e-5
    assert SentenceEncoder.load(tmp_path / "st", truncate_dim=4).truncate_dim == 4  # the caller's wins
    ours.save(tmp_path / "kosim")
    assert st.SentenceTransformer(str(tmp_path / "kosim"), device="cpu").truncate_dim == 8


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_type": "SparseEncoder"}, "model_type 'SparseEncoder' is not supported"),
        ({"default_task": "query"}, "config key 'default_task'"),
        ({"truncate_dim": 0}, "truncate_dim must be a positive int"),
    ],
)
def test_unsupported_model_config_is_refused(st_saved, tmp_path, changes, message):
    model_dir = _copy(st_saved, tmp_path)
    _edit_config(model_dir / "config_sentence_transformers.json", **changes)
    with pytest.raises(CheckpointError, match=rf"config_sentence_transformers.json: {message}"):
        SentenceEncoder.load(model_dir)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"kwargs": ["task"]}, r"module 1: kwargs=\['task'\]"), ({"device": "cpu"}, "module 1: key 'device'")],
)
def test_unsupported_modules_json_entry_is_refused(st_saved, tmp_path, changes, message):
    model_dir = _copy(st_saved, tmp_path)
    entries = json.loads((model_dir / "modules.json").read_text())
    entries[1].update(changes)
    (model_dir / "modules.json").write_text(json.dumps(entries))
    with pytest.raises(CheckpointError, match=rf"modules.json: {message} is not supported"):
        SentenceEncoder.load(model_dir)
    entries[1]["kwargs"] = []  # what sentence-transformers writes for a module without encode arguments
    entries[1].pop("device", None)
    (model_dir / "modules.json").write_text(json.dumps(entries))
    SentenceEncoder.load(model_dir)
