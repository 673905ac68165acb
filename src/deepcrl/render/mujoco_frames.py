"""Frames of a MuJoCo task, drawn offscreen with MuJoCo's own OpenGL renderer (render/gl.py for the context).

The camera is a model camera (`camera="track"`, ...) or "free": a free camera fitted, per episode, to
everything the robot visits and the goal. The goal is a magenta sphere of the success radius with an
opaque dot at its centre.
"""

from __future__ import annotations

import copy
import math
from typing import Iterator

import numpy as np

from deepcrl.errors import ConfigError
from deepcrl.render.common import GOAL_RGB, TEXT_MIN_SIZE, caption
from deepcrl.render.gl import SOFTWARE_RENDERERS, gl_context, gl_renderer_name

FREE_CAMERA = "free"
FREE_ELEVATION = -60.0  # degrees; azimuth 90: x to the right, y up the screen
FREE_ELEVATION_MAZE = -80.0  # steeper in mazes, so that walls hide little of the corridors


class MujocoFrames:
    """Frames of a MuJoCo task, drawn offscreen with MuJoCo's OpenGL renderer."""

    def __init__(self, env, width: int, height: int, camera: str | None = None):
        import mujoco

        self.mujoco = mujoco
        self.env = env
        self.width, self.height = width, height
        self.model = copy.deepcopy(env.mj_model)  # a copy: the offscreen buffer is resized
        self.model.vis.global_.offwidth = max(width, self.model.vis.global_.offwidth)
        self.model.vis.global_.offheight = max(height, self.model.vis.global_.offheight)
        self.camera = self.resolve_camera(env, camera)
        self._ctx = gl_context(width, height)
        scale = mujoco.mjtFontScale.mjFONTSCALE_150 if min(width, height) >= 400 else mujoco.mjtFontScale.mjFONTSCALE_100
        self._text = width >= TEXT_MIN_SIZE[0] and height >= TEXT_MIN_SIZE[1]
        self._con = mujoco.MjrContext(self.model, scale.value)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._con)
        self._scene = mujoco.MjvScene(self.model, maxgeom=max(1000, 4 * self.model.ngeom + 100))
        self._option = mujoco.MjvOption()
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self._data = mujoco.MjData(self.model)
        self._pixels = np.empty((height, width, 3), np.uint8)
        self.gl_renderer = gl_renderer_name()
        if any(name in self.gl_renderer.lower() for name in SOFTWARE_RENDERERS):
            # A CPU rasteriser (Mesa llvmpipe: EGL or OSMesa without a GPU) spends most of a frame on
            # shadows (about 90 -> 20 ms at 480x480 on 2 cores); a GPU draws them for free.
            self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False

    @staticmethod
    def camera_names(model) -> list[str]:
        import mujoco

        names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
        return [n for n in names if n]

    @classmethod
    def resolve_camera(cls, env, camera: str | None) -> str:
        """The camera to use: FREE_CAMERA or a model camera's name; ConfigError for an unknown name."""
        names = cls.camera_names(env.mj_model)
        if camera is None:
            if hasattr(env, "layout") or not names:  # locomotion (open and mazes): fit robot and goal
                return FREE_CAMERA
            return names[0]
        if camera != FREE_CAMERA and camera not in names:
            allowed = ", ".join([FREE_CAMERA, *names])
            raise ConfigError(f"camera={camera!r} is not a camera of {env.name}: choose one of {allowed}")
        return camera

    def _set_state(self, data: dict, e: int, t: int) -> None:
        d = self._data
        d.qpos[:] = data["qpos"][e, t]
        if "mocap_pos" in data:
            d.mocap_pos[:] = data["mocap_pos"][e, t]
            d.mocap_quat[:] = data["mocap_quat"][e, t]
        self.mujoco.mj_forward(self.model, d)

    def _mjv_camera(self, data: dict, e: int, steps: np.ndarray):
        mujoco = self.mujoco
        cam = mujoco.MjvCamera()
        if self.camera != FREE_CAMERA:
            cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
            cam.fixedcamid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, self.camera)
            return cam
        # A free camera fitted to every body position of the episode and the goal marker.
        points = [self.env.goal_marker(data["goal"][e, 0])[None]]
        for t in steps:
            self._set_state(data, e, t)
            points.append(np.array(self._data.xpos[1:]))
        points = np.concatenate(points)
        lo, hi = points.min(0), points.max(0)
        span = float(np.max(hi[:2] - lo[:2]))
        maze = getattr(self.env, "layout", None) is not None
        margin = max(
            0.15 * span, 2 * float(self.env.goal_threshold), 0.3, 0.5 * float(getattr(self.env, "cell_size", 0.0)) if maze else 0.0
        )
        half = span / 2 + margin
        fovy = math.radians(float(self.model.vis.global_.fovy))
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        cam.lookat[:] = (lo + hi) / 2
        cam.distance = 1.1 * half / math.tan(fovy / 2) * max(1.0, self.height / self.width)  # fovy is vertical
        cam.azimuth = 90.0
        cam.elevation = FREE_ELEVATION_MAZE if maze else FREE_ELEVATION
        return cam

    def _add_sphere(self, pos, radius: float, rgba) -> None:
        scene = self._scene
        if scene.ngeom >= scene.maxgeom:
            return
        geom = scene.geoms[scene.ngeom]
        self.mujoco.mjv_initGeom(
            geom,
            self.mujoco.mjtGeom.mjGEOM_SPHERE,
            np.array([radius, 0.0, 0.0]),
            np.asarray(pos, np.float64),
            np.eye(3).ravel(),
            np.asarray(rgba, np.float32),
        )
        geom.emission = 0.4
        scene.ngeom += 1

    def episode(self, data: dict, e: int) -> Iterator[np.ndarray]:
        mujoco = self.mujoco
        steps = np.flatnonzero(data["drawn"][e])
        cam = self._mjv_camera(data, e, steps)
        goal = self.env.goal_marker(data["goal"][e, 0])
        radius = float(self.env.goal_threshold)
        for t in steps:
            self._set_state(data, e, t)
            self._ctx.make_current()
            mujoco.mjv_updateScene(self.model, self._data, self._option, None, cam, mujoco.mjtCatBit.mjCAT_ALL, self._scene)
            self._add_sphere(goal, radius, (*GOAL_RGB, 0.35))
            self._add_sphere(goal, 0.3 * radius, (*GOAL_RGB, 1.0))
            mujoco.mjr_render(self._rect, self._scene, self._con)
            if self._text:
                top, bottom = caption(data, e, int(t))
                mujoco.mjr_overlay(mujoco.mjtFont.mjFONT_NORMAL, mujoco.mjtGridPos.mjGRID_TOPLEFT, self._rect, top, bottom, self._con)
            mujoco.mjr_readPixels(self._pixels, None, self._rect, self._con)
            yield np.flipud(self._pixels).copy()

    def close(self) -> None:
        if self._con is not None:
            self._ctx.make_current()
            self._con.free()
            self._con = None
        if self._ctx is not None:
            self._ctx.free()
            self._ctx = None
