"""Takeover sessions: the demonstrator corrects the agent, in the states the agent leads to.

Imitation learning trains on the player's own states; an agent that errs drifts into states the
data never shows and errs more (compounding error). Dataset aggregation fixes that by asking the
expert what to do in the states the *agent* visits. In the sandbox the expert is the scripted
demonstrator, and one takeover session interleaves the two on one seeded game:

    agent span (agent_ticks) ─► the demonstrator takes over (≥ demo_ticks, until its gesture is
    done) ─► hands back ─► agent span ─► …   (`ticks` ticks in all)

With `on_misclick` (the default) an agent tick that misclicks is undone (`SandboxEpisode.rewind`:
the game and the recording go back to the tick's start) and the demonstrator takes over from that
very state: the correction labels the state where the agent erred (clicking where a depleted node
was, say), which random hand-overs reach only by chance and then only after the mistake. The
agent's context keeps its undone tick, so it knows what it did.

The agent is a trained model through the one run assembly, on the in-process game and the virtual
clock (`SandboxEpisode`); during the demonstrator's spans the agent's context takes the
demonstrator's input in as history, so when it plays again it continues from what really
happened. The whole session — both players' input and every tick's state — is written as one
session store (`write_session`), with each span marked: `agent` (what not to imitate; a build
gives it weight 0) and `takeover` (the expert's labels for the agent's states). Each session thus
holds dozens of corrections, each from a state the agent led to, with the agent's own history in
its context. The model retrains on the demonstrator's sessions plus these
(`ilbot build --segment-weight agent=0 --segment-weight takeover=W`,
`scripts/make_default_model.sh`).

`ilbot sandbox takeover --model M --out DIR --sessions N` writes N such sessions, seeds SEED0...
"""

from __future__ import annotations

import random
from pathlib import Path


def record_takeover(model, path: Path, *, seed: int, ticks: int = 200, agent_ticks: tuple[int, int] = (2, 12),
                    demo_ticks: tuple[int, int] = (1, 3), on_misclick: bool = True, overwrite: bool = False) -> dict:
    """One takeover session (see the module docstring); a summary of what was written. Span
    lengths are drawn uniformly from the given [min, max] ranges with a generator seeded by `seed`."""
    from ..agent.sandbox_episode import SandboxEpisode
    from .virtual import VirtualDemonstrator, write_session

    rng = random.Random(seed)
    spans: list[tuple[str, int, int]] = []  # (who, first tick, end tick)

    def span(who: str, a: int, b: int) -> None:  # an empty one is skipped, one that goes on another is merged
        if spans and spans[-1][0] == who and spans[-1][2] == a:
            a = spans.pop()[1]
        if b > a:
            spans.append((who, a, b))

    with SandboxEpisode(model, seed=seed) as ep:
        demo = VirtualDemonstrator(ep.game, seed=seed, tick_ms=ep.run.tick_ms)
        k = missed = 0  # missed: agent ticks undone at a misclick
        while k < ticks:
            start, end = k, min(ticks, k + rng.randint(*agent_ticks))
            while k < end:
                mark = ep.mark() if on_misclick else None
                misclicks = ep.game.misclicks
                ep.tick()
                if on_misclick and ep.game.misclicks > misclicks:
                    ep.rewind(mark)  # the demonstrator plays this tick instead of the agent
                    missed += 1
                    break
                k += 1
            span("agent", start, k)
            start, least = k, k + rng.randint(*demo_ticks)
            while k < ticks and (k < least or demo.busy(k)):  # hand back only between gestures
                ep.tick(demo.play_tick)
                k += 1
            span("takeover", start, k)
    trace = ep.trace
    ns = trace.tick_ms * 1e6
    summary = write_session(trace, path, overwrite=overwrite,
                            notes=f"takeover: the agent and the demonstrator in turns; seed {seed}",
                            segments=[(who, int(round(a * ns)), int(round(b * ns)), {"seed": seed}) for who, a, b in spans])
    demo_ticks_played = sum(b - a for who, a, b in spans if who == "takeover")
    return {**summary, "seed": seed, "takeovers": sum(who == "takeover" for who, _, _ in spans),
            "demo_ticks": demo_ticks_played, "on_misclick": missed}


def record_takeovers(model, out_dir: Path, *, sessions: int, seed0: int = 1000, ticks: int = 200,
                     agent_ticks: tuple[int, int] = (2, 12), demo_ticks: tuple[int, int] = (1, 3),
                     on_misclick: bool = True, progress=print) -> list[dict]:
    from ..agent.assemble import load_model
    from ..data.paths import private_dir

    ckpt = load_model(model)  # once, for every session
    private_dir(Path(out_dir))
    out = []
    for i in range(sessions):
        seed = seed0 + i
        r = record_takeover(ckpt, Path(out_dir) / f"sandbox-takeover-seed{seed}.ilbot.sqlite", seed=seed,
                            ticks=ticks, agent_ticks=agent_ticks, demo_ticks=demo_ticks, on_misclick=on_misclick)
        out.append(r)
        progress(f"  takeover session {i + 1}/{sessions}: seed {seed}, {r['ticks']} ticks, {r['takeovers']} "
                 f"takeovers ({r['on_misclick']} from a misclick's state; {r['demo_ticks']} ticks of the "
                 f"demonstrator), {r['events']} events, {r['items']} items")
    return out
