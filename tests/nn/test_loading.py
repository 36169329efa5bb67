"""Checkpoint resolution: `trust_remote_code` decides whether a hub snapshot includes the repository's code."""

from __future__ import annotations

import pytest

from kosim.nn.loading import resolve_model_dir


@pytest.mark.parametrize("trust", [False, True])
def test_trust_remote_code_fetches_python_files_only_when_trusted(monkeypatch, tmp_path, trust):
    import huggingface_hub

    calls = []

    def snapshot_download(repo_id, allow_patterns):
        calls.append((repo_id, allow_patterns))
        (tmp_path / "model.safetensors").touch()
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    assert resolve_model_dir("someone/custom-model", trust_remote_code=trust) == tmp_path
    [(repo, patterns)] = calls
    assert repo == "someone/custom-model"
    assert ("*.py" in patterns) is trust
    assert "*.safetensors" in patterns and "*.json" in patterns
