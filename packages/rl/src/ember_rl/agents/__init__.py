"""The agents: one file per algorithm (its hyperparameters and its update), one shared loop."""

from ._base import OnPolicyAgent, get_schedule
from .a2c import A2C, A2CConfig
from .ppo import PPO, PPOConfig
from .reinforce import REINFORCE, REINFORCEConfig

ALGOS = {"ppo": PPO, "a2c": A2C, "reinforce": REINFORCE}
