"""The one training loop and what it keeps beside the model: EMA, schedule, logs, run folders."""
