"""Training: one loop for every model type (loop), its checkpoints (checkpoint) and validation score
(validation)."""

from calosim.training.loop import (
    BEST,
    CHECKPOINT,
    LAST,
    LOG,
    RUN_JSON,
    Reporter,
    TrainResult,
    initial_model,
    resolve_model_path,
    train,
)

__all__ = ["BEST", "CHECKPOINT", "LAST", "LOG", "RUN_JSON", "Reporter", "TrainResult", "initial_model",
           "resolve_model_path", "train"]
