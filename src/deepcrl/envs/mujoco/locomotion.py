"""Locomotion to a goal position, in the open or in a maze: the shared part of the ant and humanoid tasks.

- Open field (`layout=None`): start at the origin with small noise, goal drawn by `_open_goal`
  (ant: uniform on the circle of radius 10 m, as in the paper's code).
- Maze (`layout` given): start in the layout's start cells with noise of `start_noise` cells; training
  goals uniform over the layout's goal cells, evaluation goals over its far goal cells, each with
  uniform noise of `goal_noise` cells around the cell centre. Walls come from `maze.walls_xml`.
- The goal is the torso's (x, y), or (x, y, z) with a fixed z for tasks that set `goal_height`.
- An episode fails when the torso's height leaves `healthy_z`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from deepcrl.envs.layouts import Layout
from deepcrl.envs.mujoco import maze
from deepcrl.envs.mujoco.base import MjxTask


class Locomotion(MjxTask):
    healthy_z: tuple[float, float]  # the episode fails when the torso height leaves this range
    goal_height: float | None = None  # fixed z of every goal (humanoid 1.25); None: goals are (x, y)
    reset_noise: float = 0.1  # uniform noise on the initial joint positions, normal std of velocities
    start_noise: float = 0.1  # uniform noise on the start position, in cells (mazes)
    goal_noise: float = 0.25  # uniform noise on goal positions around cell centres, in cells (mazes)

    def __init__(self, mj_model, layout: Layout | None, cell_size: float, **kwargs):
        self.layout = layout
        self.cell_size = cell_size
        super().__init__(mj_model, **kwargs)
        if layout is not None:
            self._start_centres = maze.cell_centres(layout.start_cells, cell_size)
            self._goal_centres = maze.cell_centres(layout.goal_cells, cell_size)
            self._eval_goal_centres = maze.cell_centres(layout.eval_goal_cells, cell_size)

    def _open_goal(self, key: jax.Array) -> jax.Array:
        """(x, y) of an open-field goal."""
        raise NotImplementedError

    def _with_height(self, xy: jax.Array) -> jax.Array:
        if self.goal_height is None:
            return xy
        return jnp.concatenate([xy, jnp.full((1,), self.goal_height, jnp.float32)])

    def _train_goal(self, key):
        if self.layout is None:
            return self._with_height(self._open_goal(key))
        return self._with_height(maze.sample_in_cells(key, self._goal_centres, self.goal_noise * self.cell_size))

    def _eval_goal(self, key):
        if self.layout is None:
            return self._train_goal(key)
        return self._with_height(maze.sample_in_cells(key, self._eval_goal_centres, self.goal_noise * self.cell_size))

    def _start(self, key):
        k_xy, k_q, k_v = jax.random.split(key, 3)
        nq, nv = self.mj_model.nq, self.mj_model.nv
        qpos = self._init_qpos + jax.random.uniform(k_q, (nq,), jnp.float32, -self.reset_noise, self.reset_noise)
        qvel = self.reset_noise * jax.random.normal(k_v, (nv,), jnp.float32)
        if self.layout is not None:
            xy = maze.sample_in_cells(k_xy, self._start_centres, self.start_noise * self.cell_size)
            qpos = qpos.at[:2].set(xy)
        qpos = qpos.at[3:7].set(self._init_qpos[3:7])  # keep the torso upright (no noise on the quaternion)
        return qpos, qvel

    def _failed(self, data, obs):
        z = data.qpos[2]
        return (z < self.healthy_z[0]) | (z > self.healthy_z[1])
