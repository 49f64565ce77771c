"""ilbot.sandbox: the practice game and its scripted demonstrator's policy (DESIGN §8; docs/sandbox.md).

The game talks to the agent only through the json-dir (and optional HTTP) state a real game
client's plugin would publish; by default into `ilbot.data.paths.sandbox_state_dir()`, where the
`sandbox` capture source reads. The package imports nothing from the agent or the safety layer:
the demonstrator's recording and process plumbing, which perform through the agent's executor,
are `ilbot.demo`.
"""

from pathlib import Path

SHIPPED_MODEL = Path(__file__).resolve().parent / "assets" / "model"  # the default model, made by scripts/make_default_model.sh
SHIPPED_DATASET = Path(__file__).resolve().parent / "assets" / "dataset"  # the windows it was trained on (rehearsed when fine-tuning it)
