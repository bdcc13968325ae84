"""The shipped tiny policy: loads like a Hub model, ids survive a reload, measured properties."""

import json

import pytest
import torch

from tracefactory.toyworld import POLICY_DIR, WEAK_POLICY_DIR, format_prompt, generate_problems
from tracefactory.toyworld.card import load_policy, measure_policy
from tracefactory.toyworld.tokenizer import build_tokenizer, save_tokenizer

TEXT = format_prompt("3+5*4-6=? (mod 7)") + "5*4=6, 3+6-6\n3+6=2, 2-6\n2-6=3\n</think>\n\\boxed{3}"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The machine is shared: more threads only spin."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def test_rows():
    return generate_problems(seed=0, count=60, split="test")


def test_autotokenizer_gives_the_built_ids_and_special_tokens():
    from transformers import AutoTokenizer

    built = build_tokenizer()
    shipped = AutoTokenizer.from_pretrained(POLICY_DIR)
    assert shipped(TEXT)["input_ids"] == built(TEXT)["input_ids"]
    assert shipped.decode(shipped(TEXT)["input_ids"]) == TEXT
    assert shipped.eos_token == "<eos>" and shipped.pad_token == "<pad>"
    for tag in ("<think>", "</think>"):
        assert len(shipped(tag, add_special_tokens=False)["input_ids"]) == 1


def test_token_ids_survive_save_and_reload(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = load_policy(POLICY_DIR)
    ids = tokenizer(TEXT)["input_ids"]
    model.save_pretrained(tmp_path)
    save_tokenizer(tokenizer, tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded(TEXT)["input_ids"] == ids
    assert reloaded.decode(ids) == TEXT
    assert type(AutoModelForCausalLM.from_pretrained(tmp_path)) is type(model)


@pytest.mark.parametrize("folder", [POLICY_DIR, WEAK_POLICY_DIR])
def test_card_is_shipped_beside_the_weights(folder):
    card = json.loads((folder / "card.json").read_text())
    assert 0.0 < card["test"]["pass@1"] < 1.0
    assert (folder / "README.md").exists() and (folder / "model.safetensors").exists()


def test_policy_pass_at_1_is_in_range_and_spread_over_problems(test_rows):
    measured = measure_policy(POLICY_DIR, test_rows, num_samples=4, seed=0)
    # Neither hopeless nor solved: majority vote and search keep room above pass@1.
    assert 0.30 <= measured["pass@1"] <= 0.85
    # Success rates are spread: neither all-or-nothing nor one rate for every problem.
    assert measured["success_rate_std"] > 0.2
    assert measured["share_problems_all_wrong"] + measured["share_problems_all_right"] < 0.8
    # Mistakes propagate to a wrong answer, and most are structural slips visible in the text
    # (a pair that is not in the line before, a +/- before a pending *, a miscopied rest).
    assert measured["lucky_hit_rate"] < 0.25
    first = measured["first_mistake_share_of_samples"]
    structural = first["wrong_operands"] + first["precedence"] + first["copy"]
    assert structural >= 0.7 * measured["share_samples_with_mistake"]
    assert first["fact"] < 0.1 * measured["share_samples_with_mistake"]
    # Most are precedence slips, which a value model can see from the text alone (the 1,000-step
    # policy's were mostly pairs missing from the expression, 0.38 of its mistakes precedence).
    assert first["precedence"] >= 0.6 * measured["share_samples_with_mistake"]


def test_weak_policy_is_weaker(test_rows):
    strong = json.loads((POLICY_DIR / "card.json").read_text())["test"]["pass@1"]
    weak = measure_policy(WEAK_POLICY_DIR, test_rows[:30], num_samples=4, seed=0)
    assert weak["pass@1"] < strong
