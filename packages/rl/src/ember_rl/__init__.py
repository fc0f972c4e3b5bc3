"""Reinforcement learning for ember, the PyTorch-like library (CleanRL-style agents, SB3 names).

What will live here: ``agents`` (one readable file per algorithm: REINFORCE, A2C, PPO; later
SAC, TD3) exported as ``ember_rl.REINFORCE``, ``ember_rl.A2C`` and ``ember_rl.PPO``,
``policies`` (actor-critic nets for Discrete and Box spaces), ``buffers`` (rollouts, GAE),
``envs`` (Gymnasium vector envs, normalization wrappers, seeding), and the
``python -m ember_rl train|evaluate`` command line. It uses only ember's public API.
"""

__version__ = "0.1.0"
