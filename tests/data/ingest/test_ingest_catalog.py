"""A survey catalog joined on the record id (`--catalog`): how a folder of one's own
cutouts gets the redshift and stellar mass a conditional model trains on. Before, only
the galaxyCGAN NPY source could join a property table."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from astropy.table import Table
from ingest_helpers import noisy_fits_folder, rgb, write_csv, write_image

from galaxy_hpc.cli.main import EXIT_ERROR, EXIT_REJECTS, main

# Plain zarr + astropy, in a process that never imports galaxy_hpc: each stored galaxy's
# redshift and mass against the first catalog row of its id, and the reject list.
PLAIN = r"""
import csv, json, sys
import zarr
from astropy.table import Table
group = zarr.open_group(sys.argv[1], mode="r")
columns = group["columns"]
catalog = Table.read(sys.argv[2])
row = {}
for r in catalog:
    row.setdefault(str(r[sys.argv[3]]), r)  # an id's first row
ids = [str(i) for i in columns["id"][:]]
print(json.dumps({
    "ids": ids,
    "match": [abs(float(columns["redshift"][k]) - float(row[i]["Z"])) < 1e-12
              and abs(float(columns["log_stellar_mass"][k]) - float(row[i]["LOGM"])) < 1e-12
              for k, i in enumerate(ids)],
    "rejects": [dict(r) for r in csv.DictReader(open(sys.argv[1] + ".rejects.csv"))],
    "galaxy_hpc": "galaxy_hpc" in sys.modules}))
"""


def plain(store, catalog, id_column: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PLAIN, str(store), str(catalog), id_column],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    assert seen["galaxy_hpc"] is False
    return seen


def test_fits_cutouts_take_their_rows_of_a_csv_catalog(tmp_path, capsys):
    noisy_fits_folder(tmp_path / "cutouts", 4)  # obj0 ... obj3
    catalog = write_csv(tmp_path / "catalog.csv", ["OBJID", "Z", "LOGM", "SURVEY"], [
        ["obj0", 0.05, 10.1, "des"], ["obj1", 0.12, 10.9, "des"], ["obj2", 0.31, 11.2, "des"],
        ["obj1", 0.50, 9.0, "des"],  # a second row of obj1: prefer first keeps 0.12
        ["obj9", 0.20, 10.0, "des"]])  # a row no cutout asks for
    out = tmp_path / "mine.zarr"
    status = main(["ingest", str(tmp_path / "cutouts"), "--out", str(out), "--size", "32",
                   "--catalog", str(catalog), "--catalog-id", "OBJID",
                   "catalog.rename={Z: redshift, LOGM: log_stellar_mass}", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert status == EXIT_REJECTS and summary["num_ingested"] == 3
    assert summary["rejects_by_reason"] == {"no_catalog_row": 1}
    seen = plain(out, catalog, "OBJID")
    assert seen["ids"] == ["obj0", "obj1", "obj2"] and all(seen["match"])
    assert [(r["id"], r["reason"].split(":")[0]) for r in seen["rejects"]] == \
        [("obj3", "no_catalog_row")]
    assert "SURVEY" not in json.dumps(seen)  # text columns only when named


def test_class_folders_take_a_fits_catalog_named_in_a_config(tmp_path, capsys):
    for i, cls in enumerate(["spiral", "spiral", "elliptical"]):
        write_image(tmp_path / "sorted" / cls / f"g{i}.png", rgb(40, 40, i))
    ids = ["spiral/g0", "spiral/g1", "elliptical/g2"]
    catalog = tmp_path / "catalog.fits"
    Table({"name": ids, "Z": [0.1, 0.2, 0.3], "LOGM": [10.0, 10.5, 11.0],
           "SPECTYPE": ["GALAXY"] * 3}).write(catalog)
    config = tmp_path / "ingest.yaml"
    config.write_text(f"kind: ingest\nsource: {tmp_path / 'sorted'}\nout: {tmp_path / 's.zarr'}\n"
                      "size: 32\nfolder: {labels: true}\ncaptions: false\n"
                      f"catalog: {{table: {catalog}, id_column: name, columns: [Z, LOGM, "
                      "SPECTYPE], rename: {Z: redshift, LOGM: log_stellar_mass}}\n")
    assert main(["ingest", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_ingested"] == 3
    done = subprocess.run([sys.executable, "-c", "import sys, zarr, json\n"
                           "c = zarr.open_group(sys.argv[1], mode='r')['columns']\n"
                           "print(json.dumps({n: [str(v) for v in c[n][:]] for n in "
                           "('id', 'label', 'redshift', 'SPECTYPE')}))", str(tmp_path / "s.zarr")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    columns = json.loads(done.stdout)
    order = columns["id"]
    assert sorted(order) == sorted(ids)
    assert columns["redshift"] == [str({"spiral/g0": 0.1, "spiral/g1": 0.2,
                                        "elliptical/g2": 0.3}[i]) for i in order]
    assert columns["label"] == [i.split("/")[0] for i in order]
    assert columns["SPECTYPE"] == ["GALAXY"] * 3


def test_ids_that_match_nothing_stop_with_an_example_of_each(tmp_path, capsys):
    noisy_fits_folder(tmp_path / "cutouts", 2)
    catalog = write_csv(tmp_path / "catalog.csv", ["id", "Z"],
                        [["DES J0001", 0.1], ["DES J0002", 0.2]])
    out = tmp_path / "mine.zarr"
    assert main(["ingest", str(tmp_path / "cutouts"), "--out", str(out),
                 "--catalog", str(catalog)]) == EXIT_ERROR
    error = capsys.readouterr().err
    assert "none of the 2 record ids ('obj0', 'obj1' ...)" in error
    assert "'DES J0001'" in error and "catalog.id_column" in error and not out.exists()
    assert main(["ingest", str(tmp_path / "cutouts"), "--out", str(out), "--catalog",
                 str(catalog), "--catalog-id", "OBJID"]) == EXIT_ERROR
    assert "no id column 'OBJID'" in capsys.readouterr().err


def test_a_catalog_column_the_source_already_gives_is_refused(tmp_path, capsys):
    for i in range(2):
        write_image(tmp_path / "sorted" / "spiral" / f"g{i}.png", rgb(40, 40, i))
    catalog = write_csv(tmp_path / "catalog.csv", ["id", "label", "Z"],
                        [["spiral/g0", "Sb", 0.1], ["spiral/g1", "Sc", 0.2]])
    assert main(["ingest", str(tmp_path / "sorted"), "--labels", "--no-captions", "--out",
                 str(tmp_path / "s.zarr"), "--catalog", str(catalog),
                 "catalog.columns=[label, Z]"]) == EXIT_ERROR
    error = capsys.readouterr().err
    assert "column(s) label the store already has" in error and "catalog.rename" in error
    np.testing.assert_equal((tmp_path / "s.zarr").exists(), False)
