"""A tiny CLIP folder (CLIPModel + CLIPProcessor, save_pretrained) built offline: random
weights, a tokenizer that knows the words it is given, 32 px images."""

from __future__ import annotations

IMAGE_SIDE = 32


def tiny_clip(out: Path, captions: list[str], *, seed: int = 0):
    """A random tiny CLIP whose tokenizer knows every word of `captions`; saved at `out`."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from galaxy_hpc.models.sd.components import tiny_tokenizer

    tokenizer = tiny_tokenizer(list(captions))
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in
           (("bos", "<|startoftext|>"), ("eos", "<|endoftext|>"))}
    text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, vocab_size=len(tokenizer), max_position_embeddings=77,
                bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["eos"])
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=2, image_size=IMAGE_SIDE, patch_size=8)
    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": IMAGE_SIDE},
                                           crop_size={"height": IMAGE_SIDE,
                                                      "width": IMAGE_SIDE}),
        tokenizer=tokenizer)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return model, processor
