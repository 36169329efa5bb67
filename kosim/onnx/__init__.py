"""kosim.onnx: export a SentenceEncoder to ONNX (sentence-transformers' `onnx/` layout) and run it with onnxruntime.

An optional part of kosim (`pip install 'kosim[onnx]'`): onnx, onnxscript and onnxruntime are imported only
inside these functions, and nothing in the core imports this package.
"""

from __future__ import annotations

from kosim.onnx.export import FP32_FILE, INT8_FILE, ONNX_DIR, export_onnx
from kosim.onnx.runner import OnnxEncoder

__all__ = ["FP32_FILE", "INT8_FILE", "ONNX_DIR", "OnnxEncoder", "export_onnx"]
