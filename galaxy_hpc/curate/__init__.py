"""Curating training sets: near-duplicate removal (`galaxy-hpc dedup`).

- config.py: the typed settings (kind `dedup`);
- embedders.py: images -> embeddings, from any extractor the evaluation supports, or the
  built-in `pixels` fingerprint;
- embed_pass.py: the embeddings of every item, split over MPI ranks by store shard and
  kept per shard on disk, so a killed job resumes;
- groups.py: exact duplicates by digest, then FAISS neighbours above a cosine threshold,
  joined into groups with one item kept by a stated rule;
- outputs.py: the CSV, the HTML page of thumbnails, and the clean (or marked) store;
- dedup.py: the job that runs them in order.
"""
