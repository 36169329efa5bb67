"""Helpers shared by the subcommands: argument types, reading text files, loading a model, printing JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from kosim.cli.errors import UsageError


def existing_file(value: str) -> Path:
    """argparse type: a path that must be an existing file."""
    path = Path(value).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"file not found: {value}")
    return path


def positive_int(value: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def device_list(value: str) -> list[str]:
    """argparse type: comma-separated devices of a multi-process encode (``cpu,cpu``, ``cuda:0,cuda:1``), each
    checked here, so a bad one is a usage error (exit 2) naming it before any model is loaded."""
    from kosim.utils.device import resolve_device

    devices = [d.strip() for d in value.split(",")]
    if not all(devices):
        raise argparse.ArgumentTypeError(f"expected comma-separated devices such as cpu,cpu, got {value!r}")
    for device in devices:
        try:
            resolve_device(device)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return devices


def add_devices_argument(parser: argparse.ArgumentParser) -> None:
    """``--devices``: encode in one worker process per listed device (:class:`kosim.encode_pool.EncodePool`)."""
    parser.add_argument(
        "--devices",
        type=device_list,
        default=None,
        metavar="LIST",
        help="encode in one worker process per device, e.g. cpu,cpu or cuda:0,cuda:1 (same embeddings)",
    )


def encode_pool(args: argparse.Namespace, model: Any):
    """An :class:`~kosim.encode_pool.EncodePool` on ``--devices`` for ``model`` (a context manager), or a null
    context (``None``) without the flag."""
    import contextlib

    if args.devices is None:
        return contextlib.nullcontext(None)
    from kosim.encode_pool import EncodePool

    return EncodePool(model, devices=args.devices)


def add_model_arguments(parser: argparse.ArgumentParser, batch_size: int = 32) -> None:
    """``--model``, ``--batch-size`` and ``--device``, shared by encode, evaluate and search."""
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR",
        help="a sentence-transformers model directory, a plain transformers checkpoint (mean pooling), or a hub id",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=batch_size, help=f"texts per forward pass (default {batch_size})"
    )
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda:0 (default: cuda if available)")


def load_model(args: argparse.Namespace):
    """The SentenceEncoder named by ``--model`` on ``--device`` (checked before the model is loaded)."""
    from kosim.model import SentenceEncoder
    from kosim.utils.device import resolve_device

    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}") from None
    return SentenceEncoder.load(args.model, device=device)


def read_texts(path: Path, column: str | None, what: str = "--input") -> list[str]:
    """Texts of a ``.txt`` file (one per line) or of one column of a ``.tsv`` / ``.csv`` / ``.jsonl`` file."""
    from kosim.data import TABLE_SUFFIXES, read_sentences, read_table

    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        if column is None:
            raise UsageError(f"{what} {path} is a {suffix} table: name the text column with --column")
        return read_table(path, columns=[column]).column(column)
    if column is not None:
        raise UsageError(f"--column applies to .tsv/.csv/.jsonl files; {path} is read as one text per line")
    return read_sentences(path)


def print_json(obj: Any) -> None:
    """One JSON line on stdout (non-ASCII kept readable)."""
    print(json.dumps(obj, ensure_ascii=False), flush=True)
