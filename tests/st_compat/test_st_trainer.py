"""The v3 trainer scripts, once through sentence-transformers and once through kosim.st: equal weights and
embeddings after training (dropout off, so both see the same function of the same batches).

Batches: kosim's samplers draw what sentence-transformers' draw for the same `seed`, every epoch, for one dataset
(its default sampler is re-seeded `seed + epoch` by accelerate's seedable sampler; its no-duplicates sampler
re-seeds itself) and for both multi-dataset strategies over no-duplicates children. Over default-sampler children
the orders cannot match (sentence-transformers' children share one generator; kosim seeds each its own): that
script is compared with sentence-transformers given kosim's batches.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import KOREAN, build_checkpoint
from kosim_plan import give_sentence_transformers_kosim_batches

st = pytest.importorskip("sentence_transformers")
datasets = pytest.importorskip("datasets")
import sentence_transformers.losses  # noqa: E402,F401
import sentence_transformers.training_args  # noqa: E402,F401

import kosim.st as ks  # noqa: E402
from kosim.nn.loading import to_hf_state_dict  # noqa: E402

TOLERANCE = 2e-4
TEXTS = [f"{t} {i}" for i, t in enumerate(KOREAN * 3)]  # 24 distinct texts
PAIRS = {"anchor": TEXTS[:20], "positive": [t[::-1] for t in TEXTS[:20]]}
SCORED = {"sentence1": TEXTS[:18], "sentence2": TEXTS[6:24], "score": [(i % 5) / 4 for i in range(18)]}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny BERT without dropout: a training step is a deterministic function of the batch."""
    return build_checkpoint(
        tmp_path_factory.mktemp("bert_no_dropout"), "bert", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )


def _script(lib, model_dir, out, data, make_loss, **arguments):
    """The user script: load, build the loss, train with the trainer, return the model."""
    model = lib.SentenceTransformer(str(model_dir), device="cpu")
    args = lib.SentenceTransformerTrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=6,
        learning_rate=1e-4,
        warmup_steps=2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        optim="adamw_torch",  # the fused AdamW rounds differently from torch's loop AdamW kosim uses
        **arguments,
    )
    trainer = lib.SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=make_loss(lib, model))
    output = trainer.train()
    return model.eval(), output


def _assert_same_training(theirs, ours):
    (st_model, st_out), (ks_model, ks_out) = theirs, ours
    assert ks_out.global_step == st_out.global_step > 0
    assert ks_out.training_loss == pytest.approx(st_out.training_loss, abs=1e-5)
    weights_ours, weights_theirs = to_hf_state_dict(ks_model.encoder), st_model[0].auto_model.state_dict()
    worst = max((weights_ours[n] - weights_theirs[n]).abs().max().item() for n in weights_ours if n in weights_theirs)
    assert worst < TOLERANCE
    np.testing.assert_allclose(ks_model.encode(KOREAN), st_model.encode(KOREAN), atol=TOLERANCE, rtol=0)


def _hf(data, multi):
    if multi:
        return datasets.DatasetDict({k: datasets.Dataset.from_dict(v) for k, v in data.items()})
    return datasets.Dataset.from_dict(data)


def _both(model_dir, tmp_path, data, make_loss, multi=False, **arguments):
    """The script through sentence-transformers, then through kosim.st, each on its own datasets.Dataset(Dict)
    (sentence-transformers adds a transform to the datasets of a DatasetDict it trains on)."""
    theirs = _script(st, model_dir, tmp_path / "st", _hf(data, multi), make_loss, **arguments)
    ours = _script(ks, model_dir, tmp_path / "ks", _hf(data, multi), make_loss, **arguments)
    return theirs, ours


def test_mnrl_with_no_duplicates(model_dir, tmp_path):
    def loss(lib, model):
        return lib.losses.MultipleNegativesRankingLoss(model)

    sampler = {"batch_sampler": ks.BatchSamplers.NO_DUPLICATES, "num_train_epochs": 2}
    _assert_same_training(*_both(model_dir, tmp_path, PAIRS, loss, **sampler))


@pytest.mark.parametrize("loss_name", ["CosineSimilarityLoss", "CoSENTLoss"])
def test_scored_pairs(model_dir, tmp_path, loss_name):
    def loss(lib, model):
        return getattr(lib.losses, loss_name)(model)

    _assert_same_training(*_both(model_dir, tmp_path, SCORED, loss, num_train_epochs=2))


def test_cached_mnrl_inside_matryoshka(model_dir, tmp_path):
    def loss(lib, model):
        inner = lib.losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=2)
        return lib.losses.MatryoshkaLoss(model, inner, matryoshka_dims=[32, 16, 8])

    _assert_same_training(*_both(model_dir, tmp_path, PAIRS, loss, num_train_epochs=1))


@pytest.mark.parametrize("strategy", ["ROUND_ROBIN", "PROPORTIONAL"])
def test_dataset_dict_with_a_loss_per_dataset(model_dir, tmp_path, strategy):
    data = {"pairs": PAIRS, "scored": SCORED}

    def loss(lib, model):
        return {"pairs": lib.losses.MultipleNegativesRankingLoss(model), "scored": lib.losses.CoSENTLoss(model)}

    arguments = dict(
        multi=True,
        batch_sampler="no_duplicates",
        multi_dataset_batch_sampler=getattr(ks.MultiDatasetBatchSamplers, strategy).value,
        num_train_epochs=2,
    )
    _assert_same_training(*_both(model_dir, tmp_path, data, loss, **arguments))


def test_dataset_dict_with_default_samplers_given_the_same_batches(model_dir, tmp_path, monkeypatch):
    data = {"pairs": PAIRS, "scored": SCORED}

    def loss(lib, model):
        return {"pairs": lib.losses.MultipleNegativesRankingLoss(model), "scored": lib.losses.CoSENTLoss(model)}

    ours = _script(ks, model_dir, tmp_path / "ks", _hf(data, True), loss, num_train_epochs=2)
    give_sentence_transformers_kosim_batches(monkeypatch)
    theirs = _script(st, model_dir, tmp_path / "st", _hf(data, True), loss, num_train_epochs=2)
    _assert_same_training(theirs, ours)


# ------------------------------------------------------------------------------------------------ refused / mapped
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("gradient_checkpointing", True),
        ("load_best_model_at_end", True),
        ("push_to_hub", True),
        ("torch_compile", True),
        ("lr_scheduler_kwargs", {"num_cycles": 2}),
        ("router_mapping", {"anchor": "query"}),
        ("label_smoothing_factor", 0.1),
        ("logging_first_step", True),
        ("data_seed", 7),
        ("resume_from_checkpoint", "out/checkpoint-5"),
        ("optim", "adafactor"),
        ("lr_scheduler_type", "cosine"),
        ("report_to", "wandb"),
        ("save_strategy", "epoch"),
        ("logging_strategy", "epoch"),
        ("eval_steps", 0.1),
        ("batch_sampler", lambda *a, **k: None),
    ],
)
def test_unsupported_training_arguments_raise_naming_them(name, value):
    with pytest.raises(ValueError, match=name):
        ks.SentenceTransformerTrainingArguments(output_dir="out", **{name: value})


def test_unknown_training_argument_is_a_type_error_with_a_suggestion():
    with pytest.raises(TypeError, match="did you mean 'learning_rate'"):
        ks.SentenceTransformerTrainingArguments(output_dir="out", learnig_rate=1e-5)


def test_harmless_and_mapped_arguments():
    args = ks.SentenceTransformerTrainingArguments(
        output_dir="out",
        run_name="korsts",
        report_to="none",
        dataloader_num_workers=4,
        warmup_steps=0.1,  # transformers 5: a float below 1 is a ratio
        save_strategy="no",
        use_cpu=True,
        batch_sampler="no_duplicates_hashed",
        eval_strategy="steps",
        eval_steps=10,
    )
    core = args.training_arguments()
    assert (core.warmup_ratio, core.warmup_steps, core.device, core.batch_sampler) == (0.1, 0, "cpu", "no_duplicates")
    assert core.save_steps > 10**15 and core.eval_steps == 10 and core.output_dir == "out"
    assert args.batch_sampler is ks.BatchSamplers.NO_DUPLICATES_HASHED and args.run_name == "korsts"
    with pytest.raises(ValueError, match="not a valid BatchSamplers"):
        ks.SentenceTransformerTrainingArguments(batch_sampler="no_dupes")


def test_training_args_module_path():
    from kosim.st.training_args import BatchSamplers, MultiDatasetBatchSamplers, SentenceTransformerTrainingArguments

    assert SentenceTransformerTrainingArguments is ks.SentenceTransformerTrainingArguments
    assert BatchSamplers.GROUP_BY_LABEL == "group_by_label" and MultiDatasetBatchSamplers.ROUND_ROBIN == "round_robin"


@pytest.mark.parametrize(
    ("name", "value"),
    [("callbacks", [object()]), ("optimizers", (object(), None)), ("compute_metrics", print), ("model_init", print)],
)
def test_unsupported_trainer_arguments_raise_naming_them(model_dir, tmp_path, name, value):
    model = ks.SentenceTransformer(str(model_dir), device="cpu")
    args = ks.SentenceTransformerTrainingArguments(output_dir=str(tmp_path))
    with pytest.raises(ValueError, match=name):
        ks.SentenceTransformerTrainer(model=model, args=args, train_dataset=PAIRS, **{name: value})


def test_trainer_rules(model_dir, tmp_path):
    model = ks.SentenceTransformer(str(model_dir), device="cpu")
    args = ks.SentenceTransformerTrainingArguments(output_dir=str(tmp_path), eval_strategy="steps", eval_steps=1)
    mnrl = ks.losses.MultipleNegativesRankingLoss(model)
    with pytest.raises(ValueError, match="no eval_dataset or evaluator"):
        ks.SentenceTransformerTrainer(model=model, args=args, train_dataset=PAIRS, loss=mnrl)
    args = ks.SentenceTransformerTrainingArguments(output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="must be a DatasetDict"):
        ks.SentenceTransformerTrainer(model=model, args=args, train_dataset=PAIRS, loss={"train": mnrl})
    pairs = datasets.Dataset.from_dict(PAIRS)
    with pytest.raises(ValueError, match=r"without an entry for train dataset\(s\) \['b'\]"):
        ks.SentenceTransformerTrainer(model=model, args=args, train_dataset={"a": pairs, "b": pairs}, loss={"a": mnrl})
    with pytest.raises(TypeError, match="unexpected argument 'tokenzier'"):
        ks.SentenceTransformerTrainer(model=model, args=args, train_dataset=PAIRS, tokenzier=None)
    # the loss class itself (a function of the model) and the default loss are sentence-transformers' rules
    trainer = ks.SentenceTransformerTrainer(
        model=model, args=args, train_dataset=pairs, loss=ks.losses.MultipleNegativesRankingLoss
    )
    assert type(trainer.loss).__name__ == "MultipleNegativesRankingLoss"
    scored = datasets.Dataset.from_dict(SCORED)
    assert type(ks.SentenceTransformerTrainer(model=model, args=args, train_dataset=scored).loss).__name__ == (
        "CoSENTLoss"
    )


def test_cached_loss_sets_gradient_caching_and_evaluate_names_metrics(model_dir, tmp_path):
    model = ks.SentenceTransformer(str(model_dir), device="cpu")
    args = ks.SentenceTransformerTrainingArguments(output_dir=str(tmp_path), max_steps=2, disable_tqdm=True)
    loss = ks.losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=3)
    pairs = datasets.Dataset.from_dict(PAIRS)
    trainer = ks.SentenceTransformerTrainer(model=model, args=args, train_dataset=pairs, eval_dataset=pairs, loss=loss)
    assert trainer.trainer.args.mini_batch_size == 3
    output = trainer.train()
    assert output.global_step == 2 and set(output.metrics) >= {"train_loss", "train_runtime", "epoch"}
    metrics = trainer.evaluate()
    assert list(metrics) == ["eval_loss"] and np.isfinite(metrics["eval_loss"])
    several = trainer.evaluate(eval_dataset={"a": pairs, "b": datasets.Dataset.from_dict(PAIRS)})
    assert list(several) == ["eval_a_loss", "eval_b_loss"] and several["eval_a_loss"] == pytest.approx(
        metrics["eval_loss"]
    )
    assert torch.is_tensor(model.tokenize(["a"])["input_ids"])  # the sentence-transformers method is back


def test_train_resumes_from_the_newest_checkpoint(model_dir, tmp_path):
    pairs = datasets.Dataset.from_dict(PAIRS)

    def run(perturb=False, **train_kwargs):
        model = ks.SentenceTransformer(str(model_dir), device="cpu")
        if perturb:  # another starting point: only the checkpoint's weights can give the first run's model
            with torch.no_grad():
                next(model.parameters()).add_(0.01)
        args = ks.SentenceTransformerTrainingArguments(
            output_dir=str(tmp_path), max_steps=2, save_steps=1, logging_steps=1, disable_tqdm=True
        )
        loss = ks.losses.MultipleNegativesRankingLoss(model)
        output = ks.SentenceTransformerTrainer(model=model, args=args, train_dataset=pairs, loss=loss).train(
            **train_kwargs
        )
        return model, output

    first, first_output = run()
    assert (tmp_path / "checkpoint-2").is_dir()
    resumed, output = run(
        perturb=True, resume_from_checkpoint=True
    )  # checkpoint-2 ends the run: nothing is trained again
    assert output.global_step == 2 and output.training_loss == pytest.approx(first_output.training_loss)
    np.testing.assert_allclose(resumed.encode(KOREAN), first.encode(KOREAN), atol=0, rtol=0)
