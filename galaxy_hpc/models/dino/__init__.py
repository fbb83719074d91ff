"""DINOv2 vote-fraction regressor (Galaxy Sommelier's method, `kind: train_dino`).

A Dinov2Model backbone (a local folder in transformers layout such as dinov2-base, or a
tiny config built in memory) and a head predicting the 37 GZ2 answers, trained in two
stages as Sommelier does: `stage: head` with the backbone frozen, then `stage: full`
(or `stage: lora`) starting from the head stage's predictor (`init_from`).

- config.py: the typed config (no torch);
- tree.py: tree-aware outputs (a distribution per question) and the two losses;
- network.py: backbone, head, input normalisation, LoRA;
- family.py: the ModelFamily the training loop runs, with the held-out split;
- predictor.py: the exported folder and the VotePredictor that loads it;
- metrics.py: per-question and overall r, R^2, MAE, accuracy, and the PNG plot.
"""
