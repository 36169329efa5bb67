"""Export a SentenceEncoder to ONNX in the layout sentence-transformers' ONNX backend loads.

`export_onnx(model, out_dir)` writes a sentence-transformers directory (kosim's `save`) with `onnx/model.onnx`
inside: inputs `input_ids`, `attention_mask` (and `token_type_ids` where the tokenizer produces them), int64
`[batch, seq]` with both axes dynamic; outputs `last_hidden_state [batch, seq, hidden]` (what
`SentenceTransformer(dir, backend="onnx")` pools itself) and `sentence_embedding [batch, dim]` (kosim's pooling,
Dense and Normalize inside the graph, what `kosim.onnx.OnnxEncoder` returns). `int8=True` adds
`onnx/model_qint8_avx512_vnni.onnx`, onnxruntime's dynamic quantization of the same graph (int8 weights per
output channel, activations quantized at run time), the file name sentence-transformers gives that export.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import torch

ONNX_DIR = "onnx"
FP32_FILE = "model.onnx"
INT8_FILE = "model_qint8_avx512_vnni.onnx"
OUTPUT_NAMES = ["last_hidden_state", "sentence_embedding"]
OPSET = 18


def _load(model_or_dir):
    """A float32 CPU SentenceEncoder in eval mode (a copy when the given one lives elsewhere), and its source dir."""
    from kosim.model import SentenceEncoder

    if isinstance(model_or_dir, SentenceEncoder):
        model, source = model_or_dir, None
        if model.device.type != "cpu" or any(p.dtype != torch.float32 for p in model.parameters()):
            model = copy.deepcopy(model).to("cpu", torch.float32)
    elif isinstance(model_or_dir, (str, os.PathLike)):
        source = Path(model_or_dir).expanduser()
        model = SentenceEncoder.load(source, device="cpu")
    else:
        raise TypeError(f"expected a SentenceEncoder or a model directory, got {type(model_or_dir).__name__}")
    return model, source


def uses_token_type_ids(model) -> bool:
    """Whether the model's tokenizer produces `token_type_ids` (BERT-style), so the graph takes them as input."""
    return "token_type_ids" in getattr(model.tokenizer.hf, "model_input_names", ())


def _dummy_inputs(model, with_types: bool) -> tuple[torch.Tensor, ...]:
    """A right-padded batch of two sequences (lengths 8 and 5) to trace with."""
    ids, lengths = model.tokenizer.encode_flat(["kosim onnx export trace", "짧은 문장"])
    seq = 8
    input_ids = torch.full((2, seq), model.tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros(2, seq, dtype=torch.long)
    offset = 0
    for row, n in enumerate((seq, 5)):
        take = min(n, int(lengths[row]))
        input_ids[row, :take] = torch.from_numpy(ids[offset : offset + take])
        input_ids[row, take:n] = input_ids[row, take - 1]  # filler tokens: the mask, not the ids, marks padding
        mask[row, :n] = 1
        offset += int(lengths[row])
    inputs = (input_ids, mask)
    return inputs + (torch.zeros_like(input_ids),) if with_types else inputs


def export_graph(model, path: Path) -> list[str]:
    """Write the float32 ONNX graph of `model` (a CPU SentenceEncoder) to `path`; returns its input names."""
    from kosim.onnx.graph import PaddedSentenceModel

    with_types = uses_token_type_ids(model)
    module = PaddedSentenceModel(model, with_types).eval()
    inputs = _dummy_inputs(model, with_types)
    input_names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_types else [])
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    axes.update({"last_hidden_state": {0: "batch", 1: "sequence"}, "sentence_embedding": {0: "batch"}})
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                inputs,
                input_names=input_names,
                output_names=OUTPUT_NAMES,
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
            program.save(str(path), external_data=False)
    finally:
        model.train(was_training)
    return input_names


def quantize_int8(fp32_path: Path, int8_path: Path) -> None:
    """onnxruntime's dynamic int8 quantization of every MatMul with a constant weight (per output channel)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32_path),
        str(int8_path),
        per_channel=True,
        reduce_range=False,  # VNNI's int8 dot products do not saturate, unlike AVX2's pmaddubsw
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
    )


def export_onnx(model_or_dir, out_dir: str | os.PathLike | None = None, int8: bool = False) -> Path:
    """Export a SentenceEncoder (or the model directory it loads from) to `out_dir/onnx/`; returns `out_dir`.

    `out_dir` becomes a complete sentence-transformers directory (kosim's `save`) unless it is the model's own
    directory (the default for a directory), which only gains `onnx/`. Paths written: `onnx/model.onnx`, and with
    `int8=True` also `onnx/model_qint8_avx512_vnni.onnx`.
    """
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ImportError("ONNX export needs onnx and onnxscript: pip install 'kosim[onnx]'") from exc
    model, source = _load(model_or_dir)
    if out_dir is None:
        if source is None:
            raise ValueError("out_dir is required when exporting a SentenceEncoder object")
        out_dir = source
    out = Path(out_dir).expanduser()
    if source is None or out.resolve() != source.resolve():
        model.save(out)
    (out / ONNX_DIR).mkdir(parents=True, exist_ok=True)
    fp32_path = out / ONNX_DIR / FP32_FILE
    export_graph(model, fp32_path)
    if int8:
        quantize_int8(fp32_path, out / ONNX_DIR / INT8_FILE)
    return out


__all__ = ["FP32_FILE", "INT8_FILE", "ONNX_DIR", "OUTPUT_NAMES", "export_onnx", "quantize_int8", "uses_token_type_ids"]
