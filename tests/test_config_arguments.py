"""TrainingArguments checks types at construction (issue 14, defect 8): a bool is not an int, a string is not a
number, a device string must name a device; removed and renamed fields say so."""

from __future__ import annotations

import pytest

from kosim.config.arguments import TrainingArguments


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("seed", "42", "must be an int"),
        ("seed", 4.2, "must be an int"),
        ("max_steps", True, "must be a positive int, or -1"),
        ("warmup_steps", False, "must be an int >= 0"),
        ("save_total_limit", True, "must be a positive int or None"),
        ("eval_steps", 0, "must be a positive int or None"),
        ("mini_batch_size", True, "must be a positive int or None"),
        ("num_train_epochs", True, "must be a finite number >= 0"),
        ("dataloader_drop_last", "yes", "expected true or false"),
        ("overwrite_output_dir", 1, "expected true or false"),
        ("device", "cpux", "invalid device 'cpux'"),
        ("device", 0, "expected a device string"),
        ("resume_from_checkpoint", 3, "expected true, false or a checkpoint path"),
        ("card_notes", "a note", "expected a mapping"),
    ],
)
def test_wrong_types_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=rf"TrainingArguments\.{field}={value!r}: .*{message}"):
        TrainingArguments(**{field: value})


def test_valid_values_still_pass():
    args = TrainingArguments(seed=0, max_steps=-1, device="cpu", resume_from_checkpoint=True, card_notes={"a": "b"})
    assert args.to_dict()["device"] == "cpu" and "card_notes" not in args.to_dict()
    assert TrainingArguments(resume_from_checkpoint="output/checkpoint-10", eval_strategy="steps").eval_steps == 500


def test_removed_argument_is_explained():
    with pytest.raises(ValueError, match="'dataloader_num_workers' is not supported: .*no data-loading workers"):
        TrainingArguments.from_dict({"dataloader_num_workers": 2})
