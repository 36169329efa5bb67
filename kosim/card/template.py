"""The model card's template: each section rendered from plain values gathered by :mod:`kosim.card.build`.

Also the small formatters it needs (YAML scalars, padded Markdown tables, ``<code>`` cells), so that the whole
layout of a card lives in this file and the value gathering in ``build.py``.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Sequence
from typing import Any

from kosim.losses.citations import SBERT as CITATION_SBERT

SIMILARITY_NAMES = {
    "cosine": "Cosine Similarity",
    "dot": "Dot Product",
    "euclidean": "Euclidean Distance",
    "manhattan": "Manhattan Distance",
}
VERSION_LABELS = {  # keys of kosim.st_format.versions(), in the order listed
    "python": "Python",
    "kosim": "kosim",
    "transformers": "Transformers",
    "pytorch": "PyTorch",
    "tokenizers": "Tokenizers",
}

# ------------------------------------------------------------------------------------------------ formatters

# Plain YAML scalars that might not stay strings: YAML 1.1 bools/nulls, numbers of any base, dates.
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", ""}
_YAML_NUMBER = re.compile(r"[-+]?(\.?\d[\w.:,+-]*|\.inf|\.nan)|\d{4}-\d\d?-\d\d?.*", re.IGNORECASE | re.ASCII)
_YAML_UNSAFE_START = set("-?:,[]{}#&*!|>'\"%@`")


def yaml_scalar(value: Any) -> str:
    """One YAML scalar: numbers and bools as such, strings plain when that is unambiguous, else double-quoted."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        return repr(value) if math.isfinite(value) else (".inf" if value > 0 else "-.inf")
    text = str(value)
    plain = (
        text == text.strip()
        and text.lower() not in _YAML_WORDS
        and not _YAML_NUMBER.fullmatch(text)
        and text[0] not in _YAML_UNSAFE_START
        and not text.endswith(":")
        and ": " not in text
        and " #" not in text
        and all(ch.isprintable() for ch in text)
    )
    return text if plain else json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def code_cell(value: Any, limit: int = 1000) -> str:
    """``value`` as a ``<code>`` table cell: one line, HTML- and pipe-escaped, cut after ``limit`` characters."""
    text = repr(value) if isinstance(value, float) else str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return "<code>" + html.escape(" ".join(text.splitlines()), quote=False).replace("|", "\\|") + "</code>"


def join_names(names: Sequence[str]) -> str:
    """``<code>a</code>, <code>b</code>, and <code>c</code>`` (the serial comma from three names on)."""
    cells = [f"<code>{html.escape(n, quote=False)}</code>" for n in names]
    return " and ".join(cells) if len(cells) <= 2 else ", ".join(cells[:-1]) + ", and " + cells[-1]


def metric_title(key: str) -> str:
    """``pearson_cosine`` -> ``Pearson Cosine``."""
    return " ".join(word[:1].upper() + word[1:] for word in re.split(r"[_\s]+", key) if word)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], center: bool = False, indent: str = "") -> str:
    """A Markdown table with every column padded to its widest cell, left-aligned or centred."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells: Sequence[str]) -> str:
        return f"{indent}| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    rule = [":" + "-" * w + ":" if center else ":" + "-" * (w + 1) for w in widths]
    return "\n".join([line(headers), f"{indent}|" + "|".join(rule) + "|", *(line(row) for row in rows)])


def details_list(values: dict[str, Any]) -> str:
    """``- `key`: value`` lines, values printed the way Python prints them."""
    return "\n".join(f"- `{key}`: {value}" for key, value in values.items())


# ------------------------------------------------------------------------------------------------ sections


def front_matter(
    tags: list[str],
    base_model: str | None,
    language: str | None,
    widget: list[dict[str, Any]],
    title: str,
    results: list[dict[str, Any]],
) -> str:
    """The YAML front matter (Hub metadata), written by hand so no YAML library is needed."""
    lines = ["---"]
    if language:
        lines += ["language:", f"- {yaml_scalar(language)}"]
    lines += ["tags:", *(f"- {yaml_scalar(t)}" for t in tags)]
    if base_model:
        lines.append(f"base_model: {yaml_scalar(base_model)}")
    if widget:
        lines.append("widget:")
        for example in widget:
            lines += [f"- source_sentence: {yaml_scalar(example['source_sentence'])}", "  sentences:"]
            lines += [f"  - {yaml_scalar(s)}" for s in example["sentences"]]
    lines += ["pipeline_tag: sentence-similarity", "library_name: sentence-transformers"]
    if results:
        names = dict.fromkeys(m["type"] for r in results for m in r["metrics"])
        lines += ["metrics:", *(f"- {yaml_scalar(m)}" for m in names)]
        lines += ["model-index:", f"- name: {yaml_scalar(title)}", "  results:"]
        for r in results:
            lines += [
                "  - task:",
                f"      type: {yaml_scalar(r['task_type'])}",
                f"      name: {yaml_scalar(r['task_name'])}",
            ]
            lines += ["    dataset:", f"      name: {yaml_scalar(r['dataset_name'])}"]
            lines += [f"      type: {yaml_scalar(r['dataset_type'])}", "    metrics:"]
            for m in r["metrics"]:
                lines += [f"    - type: {yaml_scalar(m['type'])}", f"      value: {yaml_scalar(m['value'])}"]
                lines.append(f"      name: {yaml_scalar(m['name'])}")
    return "\n".join([*lines, "---"])


def model_details(
    title: str, base_model: str | None, base_url: str | None, details: dict[str, str], architecture: str, dim: int
) -> str:
    """Title, one-paragraph summary, the "Model Description" list and the architecture print."""
    if base_model:
        base = f"[{base_model}]({base_url})" if base_url else f"`{base_model}`"
        origin, base_item = f" finetuned from {base}", f"- **Base model:** {base}"
    else:
        origin, base_item = " trained", "<!-- - **Base model:** not recorded -->"
    items = "\n".join(
        ["- **Model Type:** Sentence Transformer", base_item, *(f"- **{k}:** {v}" for k, v in details.items())]
    )
    return f"""# {title}

A [sentence-transformers](https://www.SBERT.net) model{origin} with kosim. It turns sentences and short \
paragraphs into {dim}-dimensional dense vectors, for semantic textual similarity, semantic search, clustering, \
paraphrase mining and classification.

## Model Details

### Model Description
{items}

### Full Model Architecture

```
{architecture}
```"""


def usage(model_id: str, sentences: list[str], shape: tuple, similarities: str, similarity_name: str) -> str:
    """Usage with kosim (shape and similarity matrix as really printed) and with sentence-transformers."""
    listing = "\n".join(f"    {s!r}," for s in sentences)
    n, dim = shape
    similarities = similarities.replace("\n", "\n# ")
    return f"""## Usage

### Direct Usage (kosim)

The directory is a regular sentence-transformers model; kosim loads it without sentence-transformers installed.

```python
from kosim.model import SentenceEncoder

model = SentenceEncoder.load({model_id!r})
sentences = [
{listing}
]
embeddings = model.encode(sentences)
print(embeddings.shape)
# {shape}

# {similarity_name} of every sentence with every other
similarities = model.similarity(embeddings, embeddings)
print(similarities)
# {similarities}
```

### Direct Usage (Sentence Transformers)

The same directory loads in Sentence Transformers:

```bash
pip install -U sentence-transformers
```

```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer({model_id!r})
sentences = [
{listing}
]
embeddings = model.encode(sentences)
print(embeddings.shape)
# [{n}, {dim}]

similarities = model.similarity(embeddings, embeddings)
print(similarities.shape)
# [{n}, {n}]
```"""


def evaluation(results: list[dict[str, Any]]) -> str:
    """One metrics table per evaluator, its primary metric in bold."""
    parts = ["## Evaluation\n\n### Metrics"]
    for r in results:
        rows = [[key, f"{value:.4f}"] for key, value in r["all"].items()]
        rows = [[f"**{c}**" for c in row] if row[0] == r["primary"] else row for row in rows]
        parts.append(
            f"#### {r['task_name']}\n\n* Dataset: `{r['dataset_type']}`\n"
            f"* Evaluated with <code>kosim.evaluation.{r['evaluator']}</code>\n\n" + table(["Metric", "Value"], rows)
        )
    return "\n\n".join(parts)


def dataset(
    name: str,
    size: int,
    sampled: int,
    stats: dict[str, dict[str, Any]],
    samples: list[dict[str, Any]],
    loss_link: str,
    loss_config: dict[str, Any],
) -> str:
    """One training dataset: size, columns, statistics of the first ``sampled`` rows, samples, and its loss."""
    columns = list(stats)
    details = []
    for column in columns:
        s = stats[column]
        unit = " tokens" if s["type"] == "string" else ""
        items = [f"min: {s['min']}{unit}", f"mean: {round(s['mean'], 2)}{unit}", f"max: {s['max']}{unit}"]
        details.append("<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>")
    stats_rows = [["type", *(stats[c]["type"] for c in columns)], ["details", *details]]
    sample_rows = [[code_cell(row[c]) for c in columns] for row in samples]
    config = json.dumps(loss_config, indent=4, ensure_ascii=False, default=str).replace("\n", "\n  ")
    return f"""#### {name}

* Size: {size:,} training samples
* Columns: {join_names(columns)}
* Approximate statistics based on the first {sampled} samples:
{table(["", *columns], stats_rows, indent="  ")}
* Samples:
{table(columns, sample_rows, indent="  ")}
* Loss: {loss_link} with these parameters:
  ```json
  {config}
  ```"""


def hyperparameters(non_default: dict[str, Any], everything: dict[str, Any], notes: dict[str, Any]) -> str:
    """The non-default arguments, then all of them in a collapsed block, then free-form notes if any."""
    text = f"""### Training Hyperparameters
#### Non-Default Hyperparameters

{details_list(non_default) or "Every argument has its default value."}

#### All Hyperparameters
<details><summary>Click to expand</summary>

{details_list(everything)}

</details>"""
    return text + (f"\n\n#### Notes\n\n{details_list(notes)}" if notes else "")


def training_logs(headers: list[str], rows: list[list[str]], bold: str | None) -> str:
    """The merged log table; a note explains the bold row."""
    text = "### Training Logs\n" + table(headers, rows, center=True)
    return text + (f"\n\n* The bold row has the best `{bold}`; the saved model is the last step's." if bold else "")


def framework_versions(found: dict[str, str]) -> str:
    """Library versions, Python first."""
    keys = [k for k in VERSION_LABELS if k in found] + [k for k in found if k not in VERSION_LABELS]
    return "### Framework Versions\n" + "\n".join(f"- {VERSION_LABELS.get(k, k)}: {found[k]}" for k in keys)


def citations(entries: list[tuple[str, str]]) -> str:
    """Sentence-BERT's BibTeX, then ``(title, bibtex)`` entries; an entry whose BibTeX key came before is skipped."""
    seen, parts = set(), ["## Citation\n\n### BibTeX"]
    for title, bibtex in [("Sentence Transformers", CITATION_SBERT), *entries]:
        key = re.match(r"\s*@\w+\s*\{\s*([^,\s]+)", bibtex)
        ident = key.group(1) if key else bibtex.strip()
        if bibtex.strip() and ident not in seen:
            seen.add(ident)
            parts.append(f"#### {title}\n```bibtex\n{bibtex.strip()}\n```")
    return "\n\n".join(parts)
