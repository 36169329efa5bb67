"""OnnxEncoder: embed texts with an exported `onnx/model.onnx` under onnxruntime (no torch model in the loop)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kosim.onnx.export import FP32_FILE, INT8_FILE, ONNX_DIR


class OnnxEncoder:
    """`OnnxEncoder(model_dir).encode(texts) -> [n, dim]` float32, the same embeddings as kosim's `encode`.

    Texts are tokenized with the directory's tokenizer exactly as `SentenceEncoder` tokenizes them
    (`max_seq_length` and `do_lower_case` from `sentence_bert_config.json`), sorted by length, padded per batch
    and run through the graph's `sentence_embedding` output. `int8=True` runs
    `onnx/model_qint8_avx512_vnni.onnx`; `file_name` names any other graph under `onnx/`.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike,
        int8: bool = False,
        file_name: str | None = None,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
    ):
        import onnxruntime as ort

        from kosim.st_format import read_transformer_config
        from kosim.tokenizer import TextTokenizer

        self.model_dir = Path(model_dir).expanduser()
        name = file_name or (INT8_FILE if int8 else FP32_FILE)
        path = self.model_dir / ONNX_DIR / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: run `kosim export {self.model_dir} --format onnx` first")
        sbert = read_transformer_config(self.model_dir)  # the same key checks as kosim's loader
        self.tokenizer = TextTokenizer.load(
            self.model_dir,
            max_seq_length=sbert.get("max_seq_length"),
            do_lower_case=bool(sbert.get("do_lower_case", False)),
            position_limit=1 << 30,  # checked when the model was loaded for export
        )
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(path), options, providers=list(providers) if providers else ["CPUExecutionProvider"]
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.embedding_dim = int(self.session.get_outputs()[1].shape[-1])

    def _feed(self, seqs: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Right-padded `input_ids`, `attention_mask` (and zero `token_type_ids`) `[batch, max_len]` int64."""
        width = max(len(s) for s in seqs)
        ids = np.full((len(seqs), width), self.tokenizer.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(seqs), width), dtype=np.int64)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        return feed

    def encode(self, texts: str | Sequence[str], batch_size: int = 32, normalize: bool = False) -> np.ndarray:
        """Embed texts: a str gives `[dim]`, a list gives `[n, dim]` float32 in input order."""
        from kosim.utils.checks import check_batch_size, check_texts

        single = isinstance(texts, str)
        items = [texts] if single else check_texts(texts, single_ok=True)
        check_batch_size(batch_size)
        ids = [np.asarray(seq, dtype=np.int64) for seq in self.tokenizer(items)]
        order = np.argsort(-np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)), kind="stable")
        out = np.empty((len(items), self.embedding_dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            (emb,) = self.session.run(["sentence_embedding"], self._feed([ids[i] for i in rows]))
            out[rows] = emb
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out[0] if single else out


__all__ = ["OnnxEncoder"]
