"""Captions of a uint8 RGB store's images by a vision-language model folder, with
transformers and zarr alone.

    python vlm_captions_of_store.py STORE.zarr VLM_FOLDER PROMPT MAX_NEW_TOKENS BATCH

Reads the images with plain zarr, lays out one user turn (the image, then the prompt)
with the folder's chat template, pads batches on the left, generates greedily with
`model.generate`, and prints one JSON line: the decoded new tokens of every image.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
import zarr
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("vlm")
    parser.add_argument("prompt")
    parser.add_argument("max_new_tokens", type=int)
    parser.add_argument("batch", type=int)
    args = parser.parse_args()
    images = zarr.open_group(args.store, mode="r")["images"][:]
    processor = AutoProcessor.from_pretrained(args.vlm, local_files_only=True)
    processor.tokenizer.padding_side = "left"
    model = AutoModelForImageTextToText.from_pretrained(args.vlm, local_files_only=True).eval()
    turn = [{"role": "user", "content": [{"type": "image"},
                                         {"type": "text", "text": args.prompt}]}]
    text = processor.apply_chat_template(turn, add_generation_prompt=True)
    captions = []
    for lo in range(0, len(images), args.batch):
        batch = [Image.fromarray(x.transpose(1, 2, 0)) for x in images[lo:lo + args.batch]]
        inputs = processor(images=batch, text=[text] * len(batch), return_tensors="pt",
                           padding=True)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=args.max_new_tokens, do_sample=False)
        new = out[:, inputs["input_ids"].shape[1]:]
        captions += [c.strip() for c in processor.batch_decode(new, skip_special_tokens=True)]
    assert not any(name.split(".")[0] in ("galaxy_hpc", "hpc") for name in sys.modules)
    print(json.dumps({"captions": captions}))


if __name__ == "__main__":
    main()
