"""ilbot.demo: the sandbox demonstrator at work — performing, playing, recording, processes.

The demonstrator's policy (what it decides each tick) is `ilbot.sandbox.demonstrator`; this
package puts it to work through the same parts a person's recording and the live agent use,
which is why it sits above both the sandbox and the agent (it imports them; neither imports it):

- `perform.GesturePerformer`: a gesture's planned actions, performed at their due times through
  the agent's `PynputExecutor` (the one input path);
- `play`: `StateFeed` (a capture adapter polled on a thread) and `Demonstrator` (the
  decide-and-perform loop);
- `process`: the game as its own process (`ilbot sandbox`), started, awaited and ended;
- `record`: `record_session` / `record_sessions` — the game, the demonstrator and the real
  recorder writing ordinary `*.ilbot.sqlite` stores (`ilbot sandbox demo`,
  scripts/make_default_model.sh, `ilbot bench sandbox`);
- `virtual`: the same policy on the closed-loop evaluation's virtual clock (no X server);
- `takeover`: sessions where the demonstrator takes over the states a model led to;
- `commands`: adds `ilbot sandbox demo` (and `takeover`) to the `ilbot sandbox` command.
"""
