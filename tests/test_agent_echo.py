"""`AgentEcho`: the agent's own injected input, told from the person's when the listeners see it
late (ilbot.agent.human_input). No display: the noted times are moved back by hand, as a listener
on a busy machine would see them."""

from __future__ import annotations

from ilbot.agent.human_input import AgentEcho


def _aged(echo: AgentEcho, ms: float) -> None:
    """Every noted action as if performed `ms` earlier."""
    echo._recent = type(echo._recent)(((t - int(ms * 1e6), *rest) for t, *rest in echo._recent),
                                      maxlen=echo._recent.maxlen)


def test_a_late_echo_is_still_the_agents_and_each_action_is_claimed_once():
    echo = AgentEcho()
    echo.note("key", (5, 1), -1, -1)
    echo.note("move", None, 100, 200)
    _aged(echo, 250)  # the listeners saw them 250 ms later (a loaded machine)
    assert echo.claim("key", (5, 1), -1, -1) and echo.claim("move", None, 101, 199)
    assert not echo.claim("key", (5, 1), -1, -1)  # claimed once: the person's repeat is the person's
    echo.note("key", (5, 1), -1, -1)
    assert not echo.claim("key", (5, 2), -1, -1) and not echo.claim("move", None, 100, 200)  # other action, kind


def test_an_echo_older_than_the_window_or_elsewhere_is_the_persons():
    echo = AgentEcho(echo_ms=500)
    echo.note("press", 1, 100, 200)
    assert not echo.claim("press", 1, 103, 200)  # 3 px away: not the agent's click
    _aged(echo, 600)
    assert not echo.claim("press", 1, 100, 200)  # past the window: a person's click on that pixel
