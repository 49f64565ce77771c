"""Takeover sessions: the demonstrator corrects the agent, from the states the agent led to.

Imitation learning trains on the player's own states; an agent that errs drifts into states the
data never shows and errs more (compounding error). Dataset aggregation fixes that by asking the
expert what to do in the states the *agent* visits. In the sandbox the expert is the scripted
demonstrator, so each takeover session is: the agent (a trained model, through the one run
assembly, on the in-process game and the virtual clock) plays `agent_ticks` ticks of a seeded
game; then the demonstrator takes over that very game — its state, its cursor — and plays
`demo_ticks` ticks, which are recorded as a session store (`write_session`) marked as one
`takeover` segment. The model retrains on the demonstrator's sessions plus these, weighted with
`ilbot build --segment-weight takeover=W` (`scripts/make_default_model.sh`, its takeover round).

`ilbot sandbox takeover --model M --out DIR --sessions N` writes N such sessions, seeds SEED0..,
with the agent's share drawn per session from [agent_min, agent_max] ticks.
"""

from __future__ import annotations

import random
from pathlib import Path


def record_takeover(model, path: Path, *, seed: int, agent_ticks: int, demo_ticks: int,
                    overwrite: bool = False) -> dict:
    """One takeover session (see the module docstring); a summary of what was written."""
    from ..agent.sandbox_episode import play_episode
    from ..data.store import mark_segment
    from ..sandbox.logic import GameConfig, SandboxGame
    from .virtual import play_demo_episode, write_session

    game = SandboxGame(GameConfig(seed=seed))
    if agent_ticks > 0:
        play_episode(model, seed=seed, ticks=agent_ticks, game=game)
    trace = play_demo_episode(seed=seed, ticks=demo_ticks, game=game)
    summary = write_session(trace, path, overwrite=overwrite,
                            notes=f"takeover: agent {agent_ticks} ticks, then the demonstrator; seed {seed}")
    end_ns = int(round(len(trace.states) * trace.tick_ms * 1e6))
    mark_segment(path, "takeover", 0, end_ns, {"agent_ticks": agent_ticks, "seed": seed})  # weighted by the build
    return {**summary, "seed": seed, "agent_ticks": agent_ticks}


def record_takeovers(model, out_dir: Path, *, sessions: int, seed0: int = 1000, agent_min: int = 10,
                     agent_max: int = 120, demo_ticks: int = 60, progress=print) -> list[dict]:
    from ..agent.assemble import load_model
    from ..data.paths import private_dir

    ckpt = load_model(model)  # once, for every session
    private_dir(Path(out_dir))
    rng = random.Random(seed0)
    out = []
    for i in range(sessions):
        seed = seed0 + i
        r = record_takeover(ckpt, Path(out_dir) / f"sandbox-takeover-seed{seed}.ilbot.sqlite", seed=seed,
                            agent_ticks=rng.randint(agent_min, agent_max), demo_ticks=demo_ticks)
        out.append(r)
        progress(f"  takeover {i + 1}/{sessions}: seed {seed}, agent {r['agent_ticks']} ticks, then the "
                 f"demonstrator {r['ticks']} ticks ({r['events']} events, {r['items']} items)")
    return out
