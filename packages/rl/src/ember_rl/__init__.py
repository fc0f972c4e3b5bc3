"""Reinforcement learning for ember, the PyTorch-like library (CleanRL-style agents, SB3 names).

``ember_rl.REINFORCE``, ``ember_rl.A2C`` and ``ember_rl.PPO`` (``agents/``: one file per
algorithm, its hyperparameter dataclass and its update, around one shared rollout loop) train on
Gymnasium envs. ``policies`` holds the actor-critic networks for Discrete, MultiDiscrete and
Box actions, ``buffers`` the rollout storage and GAE, ``envs`` vector envs, seeding and
VecNormalize-style normalisation; ``callbacks`` evaluation, checkpoints and early stopping
during ``learn``; ``plotting`` learning curves (matplotlib, the ``plot`` extra); ``python -m
ember_rl train|evaluate|plot`` is the command line. It uses only ember's public API.
"""

__version__ = "0.1.0"

from .agents import A2C, ALGOS, PPO, REINFORCE
from .buffers import RolloutBuffer, compute_gae
from .callbacks import (
    BaseCallback,
    CallbackList,
    CheckpointCallback,
    EvalCallback,
    StopTrainingOnRewardThreshold,
)
from .envs import Normalizer, RunningMeanStd, make_vec_env
from .policies import ActorCritic

__all__ = [
    "A2C",
    "ALGOS",
    "PPO",
    "REINFORCE",
    "ActorCritic",
    "BaseCallback",
    "CallbackList",
    "CheckpointCallback",
    "EvalCallback",
    "Normalizer",
    "RolloutBuffer",
    "RunningMeanStd",
    "StopTrainingOnRewardThreshold",
    "compute_gae",
    "make_vec_env",
]
