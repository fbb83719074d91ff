"""hpc.files' readers of files that may arrive damaged: each names the file and why,
on files written by the libraries users write them with (json, safetensors)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from hpc.files import DamagedFile, damaged_safetensors, read_json, safetensors_damage


def test_read_json_names_the_file_and_what_it_is(tmp_path):
    good = tmp_path / "model_index.json"
    good.write_text(json.dumps({"_class_name": "X", "unet": ["a", "b"]}))
    assert read_json(good)["_class_name"] == "X"
    cut = tmp_path / "cut.json"
    cut.write_text(good.read_text()[:15])
    with pytest.raises(DamagedFile, match=r"cut\.json \(the index\) is not valid JSON"):
        read_json(cut, "the index")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="binary.json"):
        read_json(binary)


def write_weights(path):
    save_file({"a": torch.arange(600, dtype=torch.float32).reshape(20, 30),
               "b": torch.ones(7)}, str(path))
    return path


@pytest.mark.parametrize("keep, why", [
    (4, "shorter than its own header"),     # not even the header's length
    (40, "shorter than its own header"),    # the header itself cut
    (-4, "cut short"),                      # the last tensor's bytes cut
])
def test_safetensors_cut_anywhere_is_found(tmp_path, keep, why):
    whole = write_weights(tmp_path / "w.safetensors")
    assert safetensors_damage(whole) is None
    data = whole.read_bytes()
    cut = tmp_path / "sub" / "cut.safetensors"
    cut.parent.mkdir()
    cut.write_bytes(data[:keep])
    assert why in safetensors_damage(cut)
    found = damaged_safetensors(tmp_path)
    assert len(found) == 1 and found[0].startswith(str(cut))
    assert damaged_safetensors(cut) == found  # a file path is checked itself
    assert damaged_safetensors(whole) == []


def test_a_header_that_is_not_json_is_found(tmp_path):
    data = write_weights(tmp_path / "w.safetensors").read_bytes()
    length = int.from_bytes(data[:8], "little")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(data[:8] + b"\x00" * length + data[8 + length:])
    assert safetensors_damage(bad) == "its header is not JSON"


def test_a_header_that_is_json_but_no_table_is_found(tmp_path):
    text = b"[1, 2]  "
    odd = tmp_path / "odd.safetensors"
    odd.write_bytes(len(text).to_bytes(8, "little") + text)
    assert safetensors_damage(odd) == "its header is not a table of tensors"
