"""Catalog production: synthetic galaxies from a trained model into a store and a FITS
table, MPI-parallel, resumable, deterministic per object.

    config.py       the typed config (`kind: generate`)
    loader.py       the generator for `model.kind`, as galaxy_hpc/registry.py names it
                    (each family's own, e.g. galaxy_hpc/models/sd/generation.py)
    conditions/     where conditions come from: CSV/FITS tables, stores (oversampled, img2img)
    seeds.py        per-object seeds and the fixed batches objects are made in
    catalog.py      the store layout, the rows, provenance; makes any batch of objects
    job.py          the MPI job: shards from a work queue, resume, preemption
    single.py       one object regenerated alone, checked against the catalog
    fits_table.py   the FITS table beside the store
    progress.py     rank 0's progress bar over every rank's finished shards
"""
