"""The live progress bar and the closing one-screen summary (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


class RunProgress:
    """`config`: the run's Config; `agent`: its agent (agents/base.py), which describes itself in the summary."""

    def __init__(self, config: Any, agent: Any, console: Console | None = None, enabled: bool = True, episode_length: int | None = None):
        self.config = config
        self.agent = agent
        self.episode_length = config.episode_length if episode_length is None else episode_length
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]train[/]"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[steps]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[score]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not enabled,
            transient=False,
        )
        self.task = None
        self._start_steps = None
        self._start_time = None

    def __enter__(self):
        self.progress.__enter__()
        total = self.config.num_epochs * self.config.env_steps_per_epoch
        self.task = self.progress.add_task("train", total=total, steps=_steps(0, total), rate="", score="compiling...")
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def update(self, env_steps: int, last_row: dict[str, float]) -> None:
        import time

        now = time.perf_counter()
        if self._start_time is None:  # the first epoch includes compilation; measure the rate after it
            self._start_time, self._start_steps = now, env_steps
            rate = ""
        else:
            rate = f"{(env_steps - self._start_steps) / max(now - self._start_time, 1e-9) / 1e3:,.1f}k steps/s"
        score = ""
        if last_row:
            score = f"success {last_row['eval/success']:.2f}  at goal {last_row['eval/time_at_goal']:.0f}/{self.episode_length}"
        total = self.progress.tasks[0].total
        self.progress.update(self.task, completed=env_steps, steps=_steps(env_steps, total), rate=rate, score=score)

    def summary(self, result: Any, seconds: float) -> None:
        """The closing table; printed also when the live bar is off (--no-progress)."""
        c = self.config
        table = Table(title=f"deepcrl run: {c.env}{'' if c.layout is None else ' ' + c.layout}", show_header=False)
        table.add_column("what", style="bold")
        table.add_column("value")
        last = result.metrics
        table.add_row("agent", self.agent.describe(c))
        table.add_row(
            "networks",
            f"actor depth {c.resolved_actor_depth} width {c.resolved_actor_width}; critic depth {c.resolved_critic_depth} width {c.resolved_critic_width}",
        )
        table.add_row("steps", f"{int(last['env_steps']):,} env steps, {int(last['sgd_steps']):,} SGD steps of batch {c.batch_size}")
        table.add_row("wall clock", f"{seconds:.0f} s")
        fs = result.final_score
        table.add_row(
            "last-5 evals",
            f"success {fs['eval/success']:.2f}, time at goal {fs['eval/time_at_goal']:.1f} / {self.episode_length}, final distance {fs['eval/final_distance']:.2f}",
        )
        if c.learner_depth is not None and "learner/eval/success" in fs:
            table.add_row(
                "learner",
                f"depth {c.learner_depth} width {c.learner_width or c.width}, from this run's buffer: success {fs['learner/eval/success']:.2f}, "
                f"time at goal {fs['learner/eval/time_at_goal']:.1f} / {self.episode_length} (policy: {result.run_dir}/learner)",
            )
        if c.num_seeds > 1:
            per_seed = ", ".join(f"{fs[f'eval/success/seed{s}']:.2f}" for s in range(c.seed, c.seed + c.num_seeds))
            table.add_row(
                "seeds",
                f"{c.seed} .. {c.seed + c.num_seeds - 1}: success {per_seed} (mean {fs['eval/success']:.2f} +- {fs['eval/success/se']:.2f} s.e.)",
            )
        for label, value in self.agent.summary_rows(last):
            table.add_row(label, value)
        table.add_row("run dir", str(result.run_dir))
        table.add_row("next", f"deepcrl eval {result.run_dir}")
        self.console.print(table)


def _steps(done: float, total: float) -> str:
    return f"{done / 1e6:.2f}M/{total / 1e6:.2f}M env steps"
