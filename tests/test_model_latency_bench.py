"""`ilbot bench latency`: runs end to end and prints the figures the README quotes."""

import json

from ilbot.cli import main
from ilbot.data.keys import KEY_VOCAB
from ilbot.model import ModelConfig, UnifiedEventModel, save_checkpoint


def test_bench_latency_json(tmp_path, capsys):
    cfg = ModelConfig(d_model=32, n_heads=2, n_context_layers=1, n_decoder_layers=1, n_slots=30)
    ck = save_checkpoint(tmp_path / "ck", UnifiedEventModel(cfg), spec_hash="h", key_vocab=KEY_VOCAB, stats={})
    assert main(["bench", "latency", "--json", "--ticks", "5", "--warmup", "1", "--checkpoint", str(ck), "--breakdown"]) == 0
    out = json.loads(capsys.readouterr().out)
    for k in ("p50_ms", "p99_ms", "worst_p99_ms", "params"):
        assert k in out
    assert out["params"] == UnifiedEventModel(cfg).num_params()
    assert out["worst_slots"] == 30 and out["ticks"] == 5
    assert 0 < out["min_step_ms"] < out["min_plan_1_ms"] <= out["min_plan_30_ms"]
    assert 0 < out["p50_ms"] <= out["p99_ms"] and out["worst_p50_ms"] <= out["worst_p99_ms"]


def test_bench_latency_default_model_text(capsys):
    assert main(["bench", "latency", "--ticks", "2", "--warmup", "0"]) == 0
    text = capsys.readouterr().out
    assert "p99_ms:" in text and "params: " in text
