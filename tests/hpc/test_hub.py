"""Model weights named by Hugging Face id, resolved from a cache laid out as
`huggingface-cli download` leaves it, with the network off (HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import pytest
from support.hub import cached_repo

from hpc.hub import hub_cache_dir, parse_hub_id, resolve_weights


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return folder


def test_an_id_resolves_to_its_cached_snapshot_file_or_revision(cache):
    snapshot = cached_repo(cache, "galaxy-lab/tiny-sd")
    (snapshot / "unet").mkdir()
    (snapshot / "unet" / "config.json").write_text("{}")
    tagged = cached_repo(cache, "galaxy-lab/tiny-sd", ref="v2")
    assert hub_cache_dir() == cache
    assert resolve_weights("galaxy-lab/tiny-sd", field="f") == str(snapshot)
    assert resolve_weights("galaxy-lab/tiny-sd/unet/config.json", field="f") == \
        str(snapshot / "unet" / "config.json")
    assert resolve_weights("galaxy-lab/tiny-sd@v2", field="f") == str(tagged)
    assert resolve_weights(f"galaxy-lab/tiny-sd@{snapshot.name}", field="f") == str(snapshot)


def test_local_paths_win_and_non_ids_pass_through(cache, tmp_path, monkeypatch):
    cached_repo(cache, "runs/sd")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "sd").mkdir(parents=True)  # a local folder shaped like an id
    assert resolve_weights("runs/sd", field="f") == "runs/sd"
    for value in ("", "/no/such/folder", "./missing", "C:/weights", "a b/c"):
        assert resolve_weights(value, field="f") == value
    assert parse_hub_id("org/name/sub/file.pt@main") is not None
    assert parse_hub_id("org--x/name") is None


def test_a_missing_id_is_one_line_naming_the_cache_and_the_download(cache):
    cached_repo(cache, "galaxy-lab/tiny-sd")
    with pytest.raises(FileNotFoundError) as missing:
        resolve_weights("facebook/dinov2-base", field="model.backbone")
    message = str(missing.value)
    assert "\n" not in message and message.startswith("model.backbone: 'facebook/dinov2-base'")
    assert str(cache) in message and "`huggingface-cli download facebook/dinov2-base`" in message
    with pytest.raises(FileNotFoundError, match="vae/config.json is not in galaxy-lab/tiny-sd"):
        resolve_weights("galaxy-lab/tiny-sd/vae/config.json", field="f")
    with pytest.raises(FileNotFoundError, match="--revision v9"):
        resolve_weights("galaxy-lab/tiny-sd@v9", field="f")


def test_a_dinov2_backbone_loads_by_id_without_network(cache):
    """model.backbone's loader: a real Dinov2Model saved into the cache loads by its id
    (HF_HUB_OFFLINE=1 is set: any attempt to reach the Hub would fail)."""
    from galaxy_hpc.models.dino.network import load_backbone
    from galaxy_hpc.models.published import write_dinov2_folder

    write_dinov2_folder(cached_repo(cache, "facebook/dinov2-small"), shape="small")
    assert load_backbone("facebook/dinov2-small").config.hidden_size == 64
    with pytest.raises(FileNotFoundError, match="huggingface-cli download facebook/dinov2-large"):
        load_backbone("facebook/dinov2-large")
