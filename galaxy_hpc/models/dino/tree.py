"""Tree-aware outputs and the two losses of the regressor, in torch.

The head gives 37 numbers per galaxy, one per GZ2 answer (Kaggle order). Read per
question they are the log-concentrations of a Dirichlet over that question's answers
(Zoobot's reading), bounded to [-LOG_BOUND, LOG_BOUND] so that no concentration
overflows. The predicted per-question fractions are the Dirichlet's mean, which for
alpha = exp(logits) is exactly the softmax within each question: every question's
prediction sums to 1 whatever the loss. Conversions to Kaggle cumulative values are
galaxy_hpc.data.gz2's (`fractions_to_kaggle`), on the numpy outputs.

Losses, per galaxy, summed over the 11 questions:
- Dirichlet-multinomial negative log-likelihood of the vote counts (when the store has
  them). A question nobody answered contributes exactly 0, and one answered by many
  volunteers weighs more: the tree is handled by the counts themselves.
- Otherwise cross-entropy of the predicted per-question distribution against the
  per-question fractions, each question weighted by the share of volunteers who
  reached it (gz2.question_reach of the target), so a deep question reached by 2% of
  volunteers barely counts and an unreached one (all zeros) not at all.
"""

from __future__ import annotations

import numpy as np
import torch

from galaxy_hpc.data.gz2 import ANSWERS, NUM_ANSWERS, NUM_QUESTIONS, QUESTIONS

LOG_BOUND = 8.0  # concentrations in [3e-4, 3e3]; logits of a softmax span e^16
QUESTION_SLICES: tuple[slice, ...] = tuple(q.columns for q in QUESTIONS)


def question_matrix(device: torch.device | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(37, 11) one-hot: x @ M sums per-answer terms into per-question ones."""
    m = np.zeros((NUM_ANSWERS, NUM_QUESTIONS), dtype=np.float32)
    m[np.arange(NUM_ANSWERS), [a.question - 1 for a in ANSWERS]] = 1.0
    return torch.from_numpy(m).to(device=device, dtype=dtype)


def bounded(raw: torch.Tensor) -> torch.Tensor:
    """The head's raw outputs -> log-concentrations in (-LOG_BOUND, LOG_BOUND): smooth,
    unlike a clamp, so nothing stops learning at the bound."""
    return LOG_BOUND * torch.tanh(raw / LOG_BOUND)


def _check(x: torch.Tensor, name: str) -> None:
    if x.ndim != 2 or x.shape[1] != NUM_ANSWERS:
        raise ValueError(f"{name} must be (N, {NUM_ANSWERS}) in Kaggle order, got "
                         f"{tuple(x.shape)}")


def log_tree_softmax(logits: torch.Tensor) -> torch.Tensor:
    """(N, 37) log of the per-question softmax."""
    _check(logits, "logits")
    return torch.cat([torch.log_softmax(logits[:, s], dim=1) for s in QUESTION_SLICES], dim=1)


def tree_softmax(logits: torch.Tensor) -> torch.Tensor:
    """(N, 37) per-question fractions: each question's 2-7 answers sum to 1."""
    return log_tree_softmax(logits).exp()


def dirichlet_multinomial_nll(logits: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """(N,) -log P(counts | alpha = exp(logits)), Dirichlet-multinomial per question, summed.

    Per question with counts k (n = sum k) and concentrations a (a0 = sum a):
        log P = lgamma(n + 1) - sum lgamma(k + 1)
              + lgamma(a0) - lgamma(n + a0) + sum [lgamma(k + a) - lgamma(a)]
    (the multinomial coefficient is kept, so this is a true probability of the counts).
    """
    _check(logits, "logits")
    _check(counts, "counts")
    logits, counts = logits.float(), counts.float()
    if bool((counts < 0).any()):
        raise ValueError("vote counts must be non-negative")
    m = question_matrix(logits.device)
    alpha = logits.exp()
    per_answer = torch.lgamma(counts + alpha) - torch.lgamma(alpha) - torch.lgamma(counts + 1)
    n, a0 = counts @ m, alpha @ m
    per_question = per_answer @ m + torch.lgamma(n + 1) + torch.lgamma(a0) - torch.lgamma(n + a0)
    return -per_question.sum(dim=1)


def tree_cross_entropy(logits: torch.Tensor, fractions: torch.Tensor,
                       reach: torch.Tensor) -> torch.Tensor:
    """(N,) -sum_q reach_q sum_a f_a log p_a, p the per-question softmax of logits."""
    _check(logits, "logits")
    _check(fractions, "fractions")
    if reach.shape != (fractions.shape[0], NUM_QUESTIONS):
        raise ValueError(f"reach must be (N, {NUM_QUESTIONS}), got {tuple(reach.shape)}")
    m = question_matrix(logits.device)
    per_question = (fractions.float() * log_tree_softmax(logits.float())) @ m
    return -(per_question * reach.float()).sum(dim=1)
