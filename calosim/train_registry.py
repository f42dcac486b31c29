"""Kept for older callers: the run loop of every model type is calosim.train.train (``model_type=...``)."""

from __future__ import annotations


def train_model_type(model_type: str, out, **kwargs):
    """``calosim.train.train(out, model_type=model_type, **kwargs)``."""
    from calosim.train import train

    return train(out, model_type=model_type, **kwargs)
