"""OpenGL for MuJoCo's renderer without a display: which backend works here, and a current context.

MuJoCo reads the `MUJOCO_GL` environment variable once, when `mujoco` is first imported (mujoco 4.0:
`mujoco/rendering/classic/gl_context.py`), and on Linux without it falls back to GLFW, which needs a
display. So the context is made here, whatever mujoco chose at import:

- `MUJOCO_GL` set (egl, osmesa, glfw): that backend is used, nothing else is tried.
- Not set: egl, then osmesa (or only the one `PYOPENGL_PLATFORM` names), each tried first in a short
  subprocess: PyOpenGL binds its platform once per process and a broken driver can crash the process,
  so a failed try must not happen here. The first that renders is used and written into `MUJOCO_GL`
  for the rest of the process (and its children).
- None works: `RenderBackendError`, one line naming the packages to install.
"""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys

from deepcrl.errors import RunError
from deepcrl.render.common import quiet_fork

SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "software")  # GL_RENDERER names of CPU rasterisers


class RenderBackendError(RunError):
    """No OpenGL backend for MuJoCo's renderer works in this process. One line: what was tried, what to install."""


_BACKEND_MODULES = {"egl": "mujoco.egl", "osmesa": "mujoco.osmesa", "glfw": "mujoco.glfw", "glx": "mujoco.glfw", "cgl": "mujoco.cgl"}
_INSTALL_HINT = (
    "install an OpenGL backend: on Debian/Ubuntu `apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri` (EGL; "
    "a GPU machine's NVIDIA driver ships its own) or `apt-get install libosmesa6` (OSMesa, software), "
    "or set MUJOCO_GL to a backend that works here (egl, osmesa, glfw with a display)"
)
_PROBE = r"""
import contextlib, importlib, io, os, sys
backend, module = sys.argv[1], sys.argv[2]
with contextlib.redirect_stdout(io.StringIO()):
    import mujoco
ctx = importlib.import_module(module).GLContext(16, 16)
ctx.make_current()
model = mujoco.MjModel.from_xml_string('<mujoco><worldbody><light pos="0 0 2"/><geom size="0.5"/></worldbody></mujoco>')
data = mujoco.MjData(model)
mujoco.mj_forward(model, data)
con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, con)
scene, cam = mujoco.MjvScene(model, maxgeom=100), mujoco.MjvCamera()
mujoco.mjv_updateScene(model, data, mujoco.MjvOption(), None, cam, mujoco.mjtCatBit.mjCAT_ALL, scene)
rect = mujoco.MjrRect(0, 0, 16, 16)
mujoco.mjr_render(rect, scene, con)
import numpy as np
pixels = np.zeros((16, 16, 3), np.uint8)
mujoco.mjr_readPixels(pixels, None, rect, con)
print("deepcrl-gl-ok")
"""

_chosen_backend: str | None = None


def _probe(backend: str, timeout: float = 120.0) -> str | None:
    """None when `backend` renders in a fresh subprocess, else the reason it does not (one short line)."""
    env = dict(os.environ, MUJOCO_GL=backend)
    if backend in ("egl", "osmesa"):
        env["PYOPENGL_PLATFORM"] = backend
    try:
        with quiet_fork():
            proc = subprocess.run(
                [sys.executable, "-c", _PROBE, backend, _BACKEND_MODULES[backend]], env=env, capture_output=True, text=True, timeout=timeout
            )
    except subprocess.TimeoutExpired:
        return f"no answer within {timeout:g} s"
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    if proc.returncode == 0 and "deepcrl-gl-ok" in proc.stdout:
        return None
    lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    reason = lines[-1] if lines else f"exit code {proc.returncode}"
    return reason if len(reason) <= 160 else reason[:157] + "..."


def gl_backend() -> str:
    """The OpenGL backend MuJoCo frames are rendered with: MUJOCO_GL if set, else the first of egl,
    osmesa that works (tried in subprocesses); raises RenderBackendError when none does."""
    global _chosen_backend
    wanted = os.environ.get("MUJOCO_GL", "").strip().lower()
    if _chosen_backend is not None and wanted in ("", _chosen_backend):
        return _chosen_backend
    if wanted:
        if wanted not in _BACKEND_MODULES:
            raise RenderBackendError(
                f"MUJOCO_GL={wanted!r} cannot render: choose one of egl, osmesa, glfw (or unset it to choose automatically)"
            )
        _chosen_backend = wanted
        return wanted
    if platform.system() == "Darwin":
        candidates = ["cgl", "glfw"]
    elif platform.system() != "Linux":
        candidates = ["glfw"]
    else:
        pyopengl = os.environ.get("PYOPENGL_PLATFORM", "").strip().lower()
        candidates = [pyopengl] if pyopengl in ("egl", "osmesa") else ["egl", "osmesa"]
    failures = []
    for backend in candidates:
        reason = _probe(backend)
        if reason is None:
            _chosen_backend = backend
            os.environ["MUJOCO_GL"] = backend
            return backend
        failures.append(f"MUJOCO_GL={backend}: {reason}")
    raise RenderBackendError(f"no OpenGL backend for MuJoCo rendering works here (tried {'; '.join(failures)}); {_INSTALL_HINT}")


def gl_context(width: int, height: int):
    """A current OpenGL context of the chosen backend (made here, whatever mujoco chose at import)."""
    backend = gl_backend()
    try:
        module = importlib.import_module(_BACKEND_MODULES[backend])
        ctx = module.GLContext(width, height)
        ctx.make_current()
    except Exception as e:  # ImportError (PYOPENGL_PLATFORM set otherwise, library missing), EGL/GLFW errors
        text = " ".join(f"{type(e).__name__}: {e}".split())
        raise RenderBackendError(f"MUJOCO_GL={backend} cannot render here ({text[:200]}); {_INSTALL_HINT}") from None
    return ctx


def gl_renderer_name() -> str:
    """GL_RENDERER of the current context ("llvmpipe (LLVM 15.0.6, 256 bits)", "NVIDIA H100/PCIe/SSE2", ...)."""
    try:
        from OpenGL import GL

        name = GL.glGetString(GL.GL_RENDERER)
        return name.decode(errors="replace") if isinstance(name, bytes) else str(name or "")
    except Exception:  # PyOpenGL missing or no function pointers: keep the default (full) quality
        return ""
