"""Galaxy data: ingest, Galaxy Zoo 2 labels and captions, synthetic galaxies, datasets."""
