"""CLIP score of a uint8 RGB store's images against its captions, with transformers and zarr.

    python clip_score_of_store.py STORE.zarr CLIP_FOLDER

Reads the images and the caption column with plain zarr, embeds each image with
`CLIPModel.get_image_features` and its caption with `get_text_features` (inputs made by
the folder's CLIPProcessor), and prints one JSON line: 100 x cosine per image, their mean
and their standard deviation (what torchmetrics' CLIPScore defines).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
import zarr
from transformers import CLIPModel, CLIPProcessor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("clip")
    args = parser.parse_args()
    group = zarr.open_group(args.store, mode="r")
    images = torch.from_numpy(group["images"][:])
    captions = [str(c) for c in group["columns/caption"][:]]
    model = CLIPModel.from_pretrained(args.clip).eval()
    processor = CLIPProcessor.from_pretrained(args.clip)
    scores = []
    for lo in range(0, len(images), 7):  # batches unlike the toolkit's: scores are per image
        inputs = processor(images=list(images[lo:lo + 7]), text=captions[lo:lo + 7],
                           return_tensors="pt", padding=True)
        with torch.no_grad():
            image = model.get_image_features(pixel_values=inputs["pixel_values"])
            text = model.get_text_features(input_ids=inputs["input_ids"],
                                           attention_mask=inputs["attention_mask"])
        image = getattr(image, "pooler_output", image)
        text = getattr(text, "pooler_output", text)
        cos = torch.nn.functional.cosine_similarity(image, text, dim=-1)
        scores += (100.0 * cos).tolist()
    values = torch.tensor(scores, dtype=torch.float64)
    assert not any(name.split(".")[0] in ("galaxy_hpc", "hpc") for name in sys.modules)
    print(json.dumps({"scores": scores, "mean": float(values.mean()),
                      "std": float(values.std(unbiased=False))}))


if __name__ == "__main__":
    main()
