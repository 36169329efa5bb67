"""BibTeX entries that several losses and the model card cite (one copy each)."""

from __future__ import annotations

SBERT = """@inproceedings{reimers2019sentencebert,
  title     = {Sentence-{BERT}: Sentence Embeddings using {S}iamese {BERT}-Networks},
  author    = {Nils Reimers and Iryna Gurevych},
  booktitle = {Proceedings of the 2019 Conference on Empirical Methods in Natural Language Processing},
  year      = {2019},
  publisher = {Association for Computational Linguistics},
  url       = {https://arxiv.org/abs/1908.10084}
}"""
