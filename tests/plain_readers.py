"""What users' own tools see in our outputs: run as a script, never importing galaxy_hpc.

    python plain_readers.py fits TABLE.fits   astropy Table.read, astropy.io.fits, and the
                                              80-character cards read from the bytes
    python plain_readers.py zarr STORE.zarr   plain zarr: attributes of columns/<name>
    python plain_readers.py hdf5 STORE.h5     plain h5py: the same

Prints one JSON object. The tests run it in a subprocess (`run_plain`), so that nothing
of ours (no registry, no hpc.store) can stand between the file and the reader; it
refuses to answer if anything of ours got imported.
"""

from __future__ import annotations

import json
import sys
import warnings


def plain_cards(path: str) -> list[dict]:
    """Every header of the file, card by card, with no FITS library: a card is 80 ASCII
    characters, `KEYWORD = value / comment`; string values are quoted with '' for a quote;
    a string ending in & goes on in the next CONTINUE card (FITS 4.0 long strings), and
    such a group counts as one card, whose comment may sit on any part of it."""
    with open(path, "rb") as handle:
        data = handle.read()
    cards: list[dict] = []
    offset, hdu = 0, 0
    while offset < len(data):
        header: list[dict] = []
        while True:
            image = data[offset:offset + 80].decode("ascii")
            offset += 80
            key = image[:8].strip()
            if key == "END":
                break
            card = {**_parse(image, key), "hdu": hdu}
            if key == "CONTINUE" and header and header[-1]["value"].endswith("&"):
                header[-1]["value"] = header[-1]["value"][:-1] + card["value"]
                header[-1]["comment"] = " ".join(
                    filter(None, [header[-1]["comment"], card["comment"]]))
            elif image.strip():
                header.append(card)
        cards += header
        offset = _after_data(offset, header)
        hdu += 1
    return cards


def _after_data(offset: int, header: list[dict]) -> int:
    """Skip to the next 2880-byte block past this HDU's data."""
    values = {c["key"]: c["value"] for c in header}
    offset = -(-offset // 2880) * 2880
    naxis = int(values.get("NAXIS", "0"))
    size = 0
    if naxis:
        size = abs(int(values["BITPIX"])) // 8
        for axis in range(1, naxis + 1):
            size *= int(values[f"NAXIS{axis}"])
        size += int(values.get("PCOUNT", "0"))
    return offset + -(-size // 2880) * 2880


def _parse(image: str, key: str) -> dict:
    if key in ("COMMENT", "HISTORY", "") or (image[8:10] != "= " and key != "CONTINUE"):
        return {"key": key, "value": "", "comment": image[8:].strip()}
    rest = image[10:]
    if rest.lstrip().startswith("'"):
        text, position = rest.lstrip()[1:], 0
        value = []
        while position < len(text):
            char = text[position]
            if char == "'":
                if text[position + 1:position + 2] == "'":
                    value.append("'")
                    position += 2
                    continue
                break
            value.append(char)
            position += 1
        after = text[position + 1:]
        comment = after.split("/", 1)[1] if "/" in after else ""
        return {"key": key, "value": "".join(value).rstrip(), "comment": comment.strip()}
    value, _, comment = rest.partition("/")
    return {"key": key, "value": value.strip(), "comment": comment.strip()}


def read_fits(path: str) -> dict:
    from astropy.io import fits
    from astropy.table import Table

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy warns on units its FITS parser lacks
        table = Table.read(path)
    with fits.open(path) as hdul:
        header = hdul[1].header
        columns = {header[f"TTYPE{n}"]: {"TUNIT": header.get(f"TUNIT{n}"),
                                         "TCOMM": header.get(f"TCOMM{n}")}
                   for n in range(1, header["TFIELDS"] + 1)}
        cards = {key: [header[key], header.comments[key]]
                 for key in header if key not in ("COMMENT", "HISTORY", "")}
    plain = plain_cards(path)
    table_cards = {c["key"]: c["value"] for c in plain if c["hdu"] == 1}
    return {
        "plain": plain,
        # every card with a value or commentary text of its own needs words beside it
        "uncommented": [f"{c['hdu']}:{c['key']}" for c in plain if not c["comment"]],
        "plain_columns": {table_cards[f"TTYPE{n}"]: {"TUNIT": table_cards.get(f"TUNIT{n}"),
                                                     "TCOMM": table_cards.get(f"TCOMM{n}")}
                          for n in range(1, int(table_cards["TFIELDS"]) + 1)},
        "astropy": {name: {"unit": None if table[name].unit is None else str(table[name].unit),
                           "description": table[name].description}
                    for name in table.colnames},
        "astropy_header": columns,
        "astropy_cards": cards,
    }


def read_store(kind: str, path: str) -> dict:
    if kind == "zarr":
        import zarr

        group = zarr.open_group(path, mode="r")["columns"]
        return {name: dict(array.attrs) for name, array in group.arrays()}
    import h5py

    with h5py.File(path, "r") as master:
        return {name: {k: str(v) for k, v in dataset.attrs.items()}
                for name, dataset in master["columns"].items()}


def run_plain(kind: str, path) -> dict:
    """For the tests: this script's JSON for `path`, from a fresh interpreter."""
    import subprocess
    from pathlib import Path

    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), kind, str(path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def main() -> None:
    kind, path = sys.argv[1], sys.argv[2]
    out = read_fits(path) if kind == "fits" else read_store(kind, path)
    ours = sorted(name for name in sys.modules if name.split(".")[0] in ("galaxy_hpc", "hpc"))
    if ours:
        raise SystemExit(f"plain_readers imported {', '.join(ours)}")
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
