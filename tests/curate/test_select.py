"""`galaxy-hpc select`: the rows where a condition holds, as a store users' own zarr and h5py
read back; reruns, a killed run, 2 ranks == 1, and what is refused."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from support.stores import write_array_store

from galaxy_hpc.cli.main import main
from hpc.store import open_store

NUM = 40
LABELS = ["merging", "disturbed", "smooth", "spiral"]

# Run in a process that never imports galaxy_hpc: what plain zarr / h5py see in the source
# and in the selection.
PLAIN = r"""
import json, sys
import numpy as np
def read(path):
    if path.endswith(".zarr"):
        import zarr
        group = zarr.open_group(path, mode="r")
        return (group["images"][:], {k: group["columns"][k][:] for k in ("id", "redshift")},
                dict(group.attrs))
    import h5py
    with h5py.File(path, "r") as f:
        return (f["images"][()], {k: f["columns"][k][()] for k in ("id", "redshift")},
                {k: f.attrs[k] for k in f.attrs})
source, chosen = read(sys.argv[1]), read(sys.argv[2])
ids = [x.decode() if isinstance(x, bytes) else str(x) for x in chosen[1]["id"]]
all_ids = [x.decode() if isinstance(x, bytes) else str(x) for x in source[1]["id"]]
rows = [all_ids.index(i) for i in ids]
print(json.dumps({"rows": rows,
                  "images_equal": bool((chosen[0] == source[0][rows]).all()),
                  "redshift_equal": bool(np.array_equal(chosen[1]["redshift"],
                                                        source[1]["redshift"][rows])),
                  "attrs": sorted(chosen[2])}))
"""


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """40 galaxies (3 x 16 x 16 uint8, distinct), a redshift with NaN for every 7th, a label."""
    rng = np.random.default_rng(0)
    redshift = rng.uniform(0.01, 0.3, NUM)
    redshift[::7] = np.nan
    images = rng.integers(0, 256, (NUM, 3, 16, 16), dtype=np.uint8)
    path = tmp_path_factory.mktemp("select") / "catalog.zarr"
    write_array_store(path, images, {"id": [f"g{i}" for i in range(NUM)], "redshift": redshift,
                                     "label": [LABELS[i % 4] for i in range(NUM)]},
                      shard_size=8)
    return {"path": path, "redshift": redshift}


def select(store, out, where, *extra, capsys):
    assert main(["select", str(store), "--where", where, "--out", str(out), "--json",
                 *extra]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("ending", [".zarr", ".h5"])
def test_the_rows_where_it_holds_are_what_plain_readers_see(catalog, tmp_path, capsys,
                                                            ending):
    out = tmp_path / f"near{ending}"
    where = "finite(redshift) and redshift < 0.15 and label != 'smooth'"
    result = select(catalog["path"], out, where, capsys=capsys)
    z = catalog["redshift"]
    expected = [i for i in range(NUM) if np.isfinite(z[i]) and z[i] < 0.15 and i % 4 != 2]
    assert result["num_selected"] == len(expected) and result["num_items"] == NUM
    done = subprocess.run([sys.executable, "-c", PLAIN, str(catalog["path"]), str(out)],
                          capture_output=True, text=True, check=True)
    seen = json.loads(done.stdout)
    assert seen["rows"] == expected and seen["images_equal"] and seen["redshift_equal"]
    assert open_store(out).checksum == result["checksum"]
    assert open_store(out).attrs["selected_from"]["where"] == where
    assert list(open_store(out).read_column("label")) == [LABELS[i % 4] for i in expected]


def test_a_rerun_reports_another_filter_is_refused_overwrite_replaces(catalog, tmp_path,
                                                                       capsys):
    out = tmp_path / "z.zarr"
    first = select(catalog["path"], out, "finite(redshift)", capsys=capsys)
    assert first["num_selected"] == NUM - 6 and not first["already_complete"]
    again = select(catalog["path"], out, "finite(redshift)", capsys=capsys)
    assert again["already_complete"] and again["checksum"] == first["checksum"]
    assert main(["select", str(catalog["path"]), "--where", "redshift < 0.1", "--out",
                 str(out)]) == 1
    assert "where: 'finite(redshift)' != 'redshift < 0.1'" in capsys.readouterr().err
    assert open_store(out).checksum == first["checksum"]
    other = select(catalog["path"], out, "redshift < 0.1", "--overwrite", capsys=capsys)
    assert len(open_store(out)) == other["num_selected"] < first["num_selected"]


KILL_AFTER_ONE_SHARD = """
import os, sys
from hpc.store import writer
write = writer.StoreWriter.write_shard
def write_then_die(self, *args, **kwargs):
    write(self, *args, **kwargs)
    os._exit(9)
writer.StoreWriter.write_shard = write_then_die
from galaxy_hpc.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_run_resumes_to_the_store_an_unbroken_one_writes(catalog, tmp_path,
                                                                   capsys):
    argv = ["select", str(catalog["path"]), "--where", "finite(redshift)"]
    whole = select(catalog["path"], tmp_path / "whole.zarr", "finite(redshift)", capsys=capsys)
    out = tmp_path / "killed.zarr"
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_ONE_SHARD, *argv, "--out",
                             str(out)], capture_output=True, text=True)
    assert killed.returncode == 9
    with pytest.raises(ValueError, match="not finalized"):
        open_store(out)
    resumed = select(catalog["path"], out, "finite(redshift)", capsys=capsys)
    assert resumed["checksum"] == whole["checksum"]


def test_two_ranks_write_what_one_does(catalog, tmp_path, capsys, mpiexec, galaxy_hpc):
    one = select(catalog["path"], tmp_path / "one.h5", "label in ['spiral', 'merging']",
                 capsys=capsys)
    done = subprocess.run([mpiexec, "-n", "2", galaxy_hpc, "select", str(catalog["path"]),
                           "--where", "label in ['spiral', 'merging']", "--out",
                           str(tmp_path / "two.h5"), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    two = json.loads(done.stdout.strip().splitlines()[-1])
    assert two["num_ranks"] == 2 and two["checksum"] == one["checksum"]


def test_what_cannot_be_selected_is_one_line(catalog, tmp_path, capsys):
    for argv, message in [
        (["--where", "redshfit < 0.1"], "no column 'redshfit' (columns: id, redshift, "
                                        "label)"),
        (["--where", "redshift > 5"], "holds for none of the 40 items"),
        (["--where", "open('x')"], "only the functions finite, isnan, abs, log10"),
        (["--where", "finite(redshift)", "--out", str(catalog["path"])], "is the store itself"),
    ]:
        if "--out" not in argv:
            argv = [*argv, "--out", str(tmp_path / "x.zarr")]
        assert main(["select", str(catalog["path"]), *argv]) == 1
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x.zarr").exists()
