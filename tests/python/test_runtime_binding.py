"""The Python binding (altup_tools.runtime, ctypes over libaltup.so): its greedy text equals
`altup run --temp 0`'s, streaming gives the same pieces and can stop early, logits come as
NumPy arrays that agree with the golden fixtures' own runtime, and errors are exceptions
carrying the runtime's message."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from altup_tools.runtime import AltupError, Model

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "kjv-altup-k2.gguf"
ALTUP = ROOT / "build" / "cli" / "altup"
FIXTURE = ROOT / "tests" / "fixtures" / "model_k2_alternating_widened.gguf"


@pytest.mark.parametrize("prompt", ["And God said", "In the beginning", "Blessed are"])
def test_greedy_text_equals_altup_run(prompt):
    run = subprocess.run([str(ALTUP), "run", "-m", str(DEMO), "-p", prompt, "-n", "40", "--temp", "0", "-t", "1"],
                         capture_output=True, text=True, check=True)
    with Model(DEMO, temperature=0, threads=1) as m:
        text = m.generate(prompt, max_tokens=40)
        assert m.last_stop in ("length", "end of text")
    assert run.stdout == prompt + text + "\n"


def test_stream_yields_the_same_pieces_and_stops_when_left():
    with Model(DEMO, temperature=0) as m:
        whole = m.generate("And it came to pass", max_tokens=24)
        pieces = list(m.stream("And it came to pass", max_tokens=24))
        assert "".join(pieces) == whole
        assert len(pieces) >= 20
        taken = []
        for piece in m.stream("And it came to pass", max_tokens=1000):
            taken.append(piece)
            if len(taken) == 5:
                break
        assert taken == pieces[:5]
        assert m.position < 40  # the generation stopped instead of running to 1000 tokens
        assert m.generate("And it came to pass", max_tokens=24) == whole  # still usable


def test_logits_are_numpy_and_tokens_round_trip():
    with Model(FIXTURE, temperature=0) as m:
        assert m.info["architecture"] == "altup" and m.info["vocab_size"] == 320
        ids = m.tokenize("And God said")
        assert ids[0] == m.info["bos_token"]
        assert m.detokenize(ids) == "And God said"
        logits = m.eval(ids)
        assert isinstance(logits, np.ndarray) and logits.dtype == np.float32 and logits.shape == (320,)
        assert m.sample() == int(np.argmax(logits))
        # The same prompt again after a reset gives the same logits, bit for bit.
        m.reset()
        assert np.array_equal(m.eval(ids), logits)
        # Truncating to all but the last token and evaluating it alone (a decode step instead of
        # part of a prefill: the same math, summed in another order).
        m.truncate(len(ids) - 1)
        np.testing.assert_allclose(m.eval(ids[-1:]), logits, rtol=1e-5, atol=1e-5 * np.abs(logits).max())


def test_errors_are_exceptions_with_the_runtimes_message(tmp_path):
    with pytest.raises(AltupError, match="No such file or directory") as e:
        Model(tmp_path / "missing.gguf")
    assert e.value.status == 3
    with Model(FIXTURE, context=8) as m:
        with pytest.raises(AltupError, match="token id 320 is outside the vocabulary"):
            m.eval([1, 320])
        with pytest.raises(AltupError, match="do not fit the context of 8"):
            m.eval(list(range(3, 12)))
        with pytest.raises(AltupError, match="nothing has been evaluated"):
            m.logits()
    with pytest.raises(AltupError, match="top_p must be in"):
        Model(FIXTURE, top_p=0)


def test_profile_and_system_info():
    with Model(FIXTURE, temperature=0, profile=True) as m:
        m.generate("And", max_tokens=3)
        assert '"attn_q"' in m.profile_json()
    assert "kernel table" in Model.system_info()


def test_a_half_read_stream_at_exit_ends_the_interpreter_cleanly(tmp_path):
    script = tmp_path / "half.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'converters')!r})\n"
        "from altup_tools.runtime import Model\n"
        f"m = Model({str(DEMO)!r}, temperature=0, threads=1)\n"
        "it = m.stream('And it came to pass', max_tokens=100000)\n"
        "print(next(it), flush=True)\n"
        "keep = (m, it)  # both alive when the interpreter exits\n")
    for _ in range(3):
        r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "exception not rethrown" not in r.stderr and "Abort" not in r.stderr


def test_one_call_at_a_time_while_a_stream_is_open():
    with Model(DEMO, temperature=0, threads=1) as m:
        whole = m.generate("And God said", max_tokens=12)
        it = m.stream("In the beginning", max_tokens=1000)
        next(it)
        for call in (lambda: m.generate("And God said", max_tokens=12), lambda: m.eval([1, 2]),
                     lambda: next(m.stream("x", max_tokens=3)), m.reset, lambda: m.truncate(0), m.sample):
            with pytest.raises(AltupError, match="a stream\\(\\) on this model is still open"):
                call()
        it.close()
        assert m.generate("And God said", max_tokens=12) == whole  # usable again, and not mixed up
        m.close()  # closing with a stream open stops it first
    with Model(DEMO, temperature=0, threads=1) as m:
        it = m.stream("And", max_tokens=1000)
        next(it)
        m.close()


def test_parameters_out_of_range_are_named_not_wrapped():
    with Model(DEMO, temperature=0, threads=1) as m:
        for bad in (10**12, -1, 2**31, 1.5):
            with pytest.raises(AltupError, match=r"max_tokens must be an integer in \[0, 2147483647\]"):
                m.generate("And", max_tokens=bad)
            with pytest.raises(AltupError, match="max_tokens"):
                m.stream("And", max_tokens=bad)
    with pytest.raises(AltupError, match="threads must be an integer"):
        Model(DEMO, threads=2**40)
    with pytest.raises(AltupError, match="context must be 0"):
        Model(DEMO, context=10**12)


def test_errors_speak_of_the_context_length_not_a_command_line_flag():
    with Model(DEMO, temperature=0, threads=1, context=8) as m:
        with pytest.raises(AltupError) as e:
            m.eval(list(range(5, 20)))
        assert "context" in str(e.value) and "--ctx" not in str(e.value)
