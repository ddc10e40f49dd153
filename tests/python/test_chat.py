"""`altup chat` and `altup run --chat`: Gemma's turn template built as the sentencepiece library
tokenizes it, one KV cache across turns (turn 2 prefills only its own tokens), and greedy
replies identical to evaluating the whole conversation from scratch with `altup eval`."""
import re
import subprocess
from pathlib import Path

import numpy as np
import sentencepiece as spm

ROOT = Path(__file__).resolve().parents[2]
ALTUP = ROOT / "build" / "cli" / "altup"
FIX = ROOT / "tests" / "fixtures"
MODEL = FIX / "gemma3n_k4_wide_f16.gguf"
SP = spm.SentencePieceProcessor(model_file=str(FIX / "gemma3n" / "k4_wide_f16" / "tokenizer.model"))
SOT, EOT = SP.piece_to_id("<start_of_turn>"), SP.piece_to_id("<end_of_turn>")
GREEDY = ["--temp", "0", "--repeat-penalty", "1", "-t", "1"]


def user_turn(message: str, system: str = "", first: bool = False) -> list[int]:
    """Gemma's template: <start_of_turn>user\\n{system\\n\\n}{message}<end_of_turn>\\n<start_of_turn>model\\n."""
    ids = ([SP.bos_id()] if first else []) + [SOT]
    ids += SP.encode("user\n" + (system + "\n\n" if system else "") + message)
    return ids + [EOT] + SP.encode("\n") + [SOT] + SP.encode("model\n")


def greedy_from_scratch(tmp_path: Path, seq: list[int], n: int) -> list[int]:
    out = []
    for _ in range(n):
        ids = tmp_path / "ids.txt"
        ids.write_text(" ".join(map(str, seq + out)))
        r = subprocess.run([str(ALTUP), "eval", "-m", str(MODEL), "--tokens", str(ids), "--logits-out",
                            str(tmp_path / "l.npy"), "-t", "1"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        out.append(int(np.load(tmp_path / "l.npy")[-1].argmax()))
    return out


def test_two_turns_reuse_the_cache_and_equal_a_fresh_evaluation(tmp_path):
    n = 5
    r = subprocess.run([str(ALTUP), "chat", "-m", str(MODEL), "-n", str(n), "--system", "Be brief.", *GREEDY],
                       input="Who was Moses?\nAnd his brother?\n", capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    turns = re.findall(r"\[turn (\d+): prefill (\d+) new tokens.*context (\d+) of", r.stderr)
    assert [t[0] for t in turns] == ["1", "2"]

    t1 = user_turn("Who was Moses?", "Be brief.", first=True)
    reply1 = greedy_from_scratch(tmp_path, t1, n)
    assert int(turns[0][1]) == len(t1)
    # Turn 2 feeds the cut-short reply's last token, closes the reply, and adds its own turn:
    # nothing of turn 1 is evaluated again.
    t2 = [reply1[-1], EOT] + SP.encode("\n") + user_turn("And his brother?")
    assert int(turns[1][1]) == len(t2)
    seq = t1 + reply1 + t2[1:]
    reply2 = greedy_from_scratch(tmp_path, seq, n)
    assert int(turns[1][2]) == len(seq) + n - 1
    assert r.stdout == SP.decode(reply1) + "\n" + SP.decode(reply2) + "\n"


def test_run_chat_is_one_turn_and_refuses_a_model_without_turn_markers(tmp_path):
    r = subprocess.run([str(ALTUP), "run", "--chat", "-m", str(MODEL), "-p", "Hello there", "-n", "4", *GREEDY],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    t = user_turn("Hello there", first=True)
    assert r.stdout == SP.decode(greedy_from_scratch(tmp_path, t, 4)) + "\n"
    r = subprocess.run([str(ALTUP), "run", "--chat", "-m", str(FIX / "model_k1_dense.gguf"), "-p", "hi"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "not a Gemma chat model" in r.stderr and r.stdout == ""
    r = subprocess.run([str(ALTUP), "chat", "-m", str(FIX / "model_k1_dense.gguf")], input="hi\n",
                       capture_output=True, text=True)
    assert r.returncode == 1 and "not a Gemma chat model" in r.stderr


def test_a_conversation_that_outgrows_the_context_is_refused_then_reset(tmp_path):
    r = subprocess.run([str(ALTUP), "chat", "-m", str(MODEL), "-n", "8", "--ctx", "48", *GREEDY],
                       input="one two three four five\nsix seven eight nine ten\n/reset\nagain\n",
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "this turn needs" in r.stderr and "/reset" in r.stderr
    assert "[a new conversation]" in r.stderr
    assert r.stderr.count("[turn 1:") == 2  # the first turn, and the first after /reset
