"""Training feedback: a tqdm bar with the episode reward and length on a terminal, a plain
line every few seconds elsewhere (a log file, a CI job, a ROS node's logger), and the
figures for the closing summary.

Episode figures come from the Monitor wrapper every kraby vector env has
(``model.ep_info_buffer``: the last 100 finished episodes).
"""

import sys
import time

from stable_baselines3.common.callbacks import BaseCallback


def episode_figures(model):
    """(mean episode reward, mean episode length [steps], episodes) over the model's buffer
    of recent episodes; (None, None, 0) before the first one ends."""
    infos = list(getattr(model, "ep_info_buffer", None) or [])
    if not infos:
        return None, None, 0
    return (sum(e["r"] for e in infos) / len(infos),
            sum(e["l"] for e in infos) / len(infos), len(infos))


def _figures_text(model):
    reward, length, n = episode_figures(model)
    if not n:
        return "no episode finished yet"
    return f"episode reward {reward:.2f}, length {length:.0f} steps (last {n})"


class Progress(BaseCallback):
    """Progress to ``total`` timesteps: a bar when ``bar`` is true (updated at most every
    ``refresh_s``), else one ``log`` line every ``every_s`` seconds."""

    def __init__(self, total: int, bar: bool, log=print, every_s: float = 10.0,
                 refresh_s: float = 0.5, out=None):
        super().__init__()
        self.total, self.use_bar, self.log = total, bar, log
        self.every_s, self.refresh_s = every_s, refresh_s
        self.out = out or sys.stderr
        self.bar = None
        self.start_steps = 0
        self.t0 = 0.0
        self._next = 0.0

    def _on_training_start(self):
        self.start_steps = self.model.num_timesteps
        self.t0 = time.monotonic()
        self._next = self.t0 + (self.refresh_s if self.use_bar else self.every_s)
        if self.use_bar:
            from tqdm import tqdm
            self.bar = tqdm(total=self.total, initial=self.start_steps, unit="step",
                            dynamic_ncols=True, file=self.out, desc="training")

    def _on_step(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return True
        if self.bar is not None:
            self._next = now + self.refresh_s
            self.bar.update(self.model.num_timesteps - self.bar.n)
            reward, length, n = episode_figures(self.model)
            if n:
                self.bar.set_postfix_str(f"ep_reward={reward:.2f} ep_len={length:.0f}")
        else:
            self._next = now + self.every_s
            self.log(self.line(now))
        return True

    def line(self, now=None):
        """One progress line: steps, share, rate, time left, episode figures."""
        now = time.monotonic() if now is None else now
        steps = self.model.num_timesteps
        rate = (steps - self.start_steps) / max(now - self.t0, 1e-9)
        left = (self.total - steps) / rate if rate > 0 else float("inf")
        return (f"training: {steps}/{self.total} steps ({100 * steps / self.total:.0f} %), "
                f"{rate:.0f} steps/s, about {_eta(left)} left; {_figures_text(self.model)}")

    def _on_training_end(self):
        if self.bar is not None:
            self.bar.update(self.model.num_timesteps - self.bar.n)
            self.bar.close()
            self.bar = None


def _eta(seconds: float) -> str:
    if seconds == float("inf"):
        return "? s"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 90:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def summary(model, run_dir: str, session_steps: int, elapsed_s: float) -> str:
    """The closing summary of a training session, naming the next command."""
    rate = session_steps / elapsed_s if elapsed_s > 0 else 0.0
    return (f"trained {run_dir}: {model.num_timesteps} steps in all, {session_steps} this "
            f"session in {elapsed_s:.0f} s ({rate:.0f} steps/s); {_figures_text(model)}. "
            f"Next: kraby export {run_dir} (writes {run_dir}/export), then "
            f"kraby eval {run_dir}/export")
