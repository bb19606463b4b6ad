"""experiments/sft.py and experiments/dpo.py in quick mode: every stage runs and reports."""

from experiments import dpo, sft
from jdl.data import pydoc_vocab


def test_quick_sft_then_dpo_from_its_checkpoints(tmp_path):
    r = sft.run(str(tmp_path / "sft"), quick=True)
    runs, acc = r["runs"], r["accuracy"]
    assert list(runs) == ["pre-trained", "SFT full", "SFT LoRA r=2", "SFT LoRA r=2 + LN/emb", "SFT full, k-shot data"]
    # LoRA trains r·(d_in + d_out) numbers per adapted Dense: 1 block × (4 attention
    # projections 32→32 and the MLP's 32→128, 128→32) at r = 2
    assert runs["SFT LoRA r=2"]["trainable"] == 1 * (4 * 2 * 64 + 2 * 2 * 160)
    assert runs["SFT LoRA r=2"]["total"] == runs["SFT full"]["total"] + runs["SFT LoRA r=2"]["trainable"]
    # + LN/emb: also wte (V × 32), wpe (64 × 32) and 3 LayerNorms' γ, β (2 per block and ln_f)
    v = pydoc_vocab().size
    assert runs["SFT full"]["total"] == 1 * (4 * 33 * 32 + 33 * 128 + 129 * 32 + 4 * 32) + 2 * 32 + (v + 64) * 32
    assert runs["SFT LoRA r=2 + LN/emb"]["trainable"] == runs["SFT LoRA r=2"]["trainable"] + (v + 64) * 32 + 3 * 64
    assert all(runs[m]["final_loss"] < 4.6 for m in list(runs)[1:])  # below log V = 4.64 after a few steps
    for model in runs:
        assert set(acc[model]) == {"0", "1"} and set(acc[model]["0"]) == {"reverse", "upper", "mean"}
    assert (tmp_path / "sft" / "results.json").exists() and (tmp_path / "sft" / "sft.png").exists()

    d = dpo.run(str(tmp_path / "dpo"), quick=True, sft_workdir=str(tmp_path / "sft"))
    assert d["pairs"]["pairs"] > 0 and d["dpo"]["steps"] == dpo.QUICK.steps
    before, after = d["before"]["mean"], d["after"]["mean"]
    assert before["kl"] == 0.0 and before["win_rate"] == 0.5  # the reference against itself
    assert after["kl"] != 0.0 and set(after) == {"greedy", "sampled", "win_rate", "kl"}
