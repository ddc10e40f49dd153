#!/usr/bin/env python3
"""altup.cpp against its peer, llama.cpp, on the same GGUF files, measured in one run.

A dense (K = 1) model is exactly a Llama, so the real converter writes one model with random
weights as llama.cpp's "llama" architecture, once per dtype (f32, f16), at a size where the
weights dwarf the caches (default: d = 2048, 4 layers, ~370 MB at f16, ~740 MB at f32).
Then, round after round, `altup bench` and llama.cpp (through PyPI's llama-cpp-python, in a
fresh process each time, the way llama-bench measures: ppN = one N-token batch in an empty
context, tgN = N tokens one at a time, one warm-up run first) measure each file; the two
runtimes take turns going first, so machine noise falls on both alike. Before timing, both
generate greedily from the same prompt on the f32 file: the texts must agree, or the
comparison would not be of the same computation.

Prints a table (median tokens/s of each, their ratio, and the median of the per-round ratios),
and for decode the bytes of weights read per token (decode_bytes), the GB/s that makes for
each runtime and its fraction of this machine's read bandwidth (`bench_ops --bandwidth`,
measured before and after the rounds); writes OUT/results.json.

With --models LABEL=FILE ... the given files are measured instead (e.g. the Gemma 3n files of
bench/gemma3n_shapes.py); their greedy check compares token ids (altup.cpp through its Python
binding). -d N starts every test after N tokens of context, as llama-bench's -d does.

    bash scripts/bootstrap-compare.sh      # once: .venv-compare with llama-cpp-python
    .venv-compare/bin/python bench/compare.py [--dtypes f32 f16] [-p 512] [-n 128] [--rounds 5] [-t 2]
    .venv-compare/bin/python bench/compare.py --models q8_0=runs/e2b-q8_0.gguf -p 512 -n 64 -d 3968
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "converters"))

PROMPT = "And it came to pass"


class CompareError(Exception):
    pass


# --- the models ----------------------------------------------------------------------------

def make_models(out: Path, dtypes: list[str], d: int, layers: int, ffn: int, seed: int) -> dict[str, Path]:
    """One random dense model, written as 'llama' GGUF once per dtype (kept when present)."""
    import numpy as np
    from safetensors.numpy import save_file

    from altup_tools.config import AltUpConfig
    from altup_tools.convert import convert, tensor_map

    head_dim = 64
    c = AltUpConfig(vocab_size=2048, d=d, n_layers=layers, n_heads=d // head_dim, n_kv_heads=max(1, d // head_dim // 8),
                    head_dim=head_dim, ffn_dim=ffn, context_length=1024, K=1)
    c.validate()
    paths = {dt: out / f"dense-d{d}-l{layers}-{dt}.gguf" for dt in dtypes}
    todo = [dt for dt, p in paths.items() if not p.exists()]
    if not todo:
        return paths
    ckpt = out / f"dense-d{d}-l{layers}.safetensors"
    try:
        if not ckpt.exists():
            print(f"compare: making a random dense model, d = {d}, {layers} layers", flush=True)
            rng = np.random.default_rng(seed)
            t = {}
            for src, (_, shape) in tensor_map(c).items():
                t[src] = np.ones(shape, np.float32) if len(shape) == 1 else rng.standard_normal(shape, np.float32) * 0.02
            t["predict"] = np.ones((layers, 1, 1), np.float32)  # K = 1: AltUp is the identity
            t["correct"] = np.ones((layers, 1), np.float32)
            save_file(t, str(ckpt), metadata={"altup_config": json.dumps(c.to_dict())})
            del t
        for dt in todo:
            print(f"compare: converting to {paths[dt].name}", flush=True)
            convert(ckpt, ROOT / "demo" / "tokenizer.model", paths[dt], dt, progress=False, arch="llama")
    finally:
        ckpt.unlink(missing_ok=True)
    return paths


# --- the two runtimes ----------------------------------------------------------------------

def run_altup(altup: Path, model: Path, n_prompt: int, n_gen: int, threads: int, depth: int = 0) -> dict:
    cmd = [str(altup), "bench", "-m", str(model), "-p", str(n_prompt), "-n", str(n_gen), "-r", "1",
           "-t", str(threads), "-d", str(depth), "-o", "json"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise CompareError(f"altup bench failed ({' '.join(cmd)}):\n{r.stderr.strip()}")
    j = json.loads(r.stdout)
    return {"load_s": j["load_s"], "peak_rss_mib": j["peak_rss_mib"],
            **{t["test"]: t["tokens_per_s"]["median"] for t in j["tests"]}}


def decode_bytes(model: Path) -> int:
    """Bytes of weights one decode step reads, as the GGUF stores them (the `gguf` package's
    reader): every tensor once (of a mixture of experts' stacked "_exps" tensors, the k of E
    experts a token chooses), except embedding tables (names with "token_embd"), of which a
    token reads one row, unless the file has no "output.weight" and the token embedding is
    the output head too (tied), read whole. The KV cache and activations are not counted:
    at short contexts they are a small part."""
    from gguf import GGUFReader

    reader = GGUFReader(str(model))
    tensors = reader.tensors
    tied = not any(t.name == "output.weight" for t in tensors)
    # A mixture of experts reads the k chosen of its E stacked experts ("_exps" tensors).
    counts = {k.rsplit(".", 1)[-1]: int(f.parts[-1][0]) for k, f in reader.fields.items()
              if k.endswith((".expert_count", ".expert_used_count"))}
    total = 0
    for t in tensors:
        n = int(t.n_bytes)
        if t.name.endswith("_exps.weight") and counts.get("expert_count"):
            n = n * counts["expert_used_count"] // counts["expert_count"]
        if "token_embd" in t.name and not (tied and t.name == "token_embd.weight"):
            rows = int(t.shape[-1]) if len(t.shape) > 1 else 1  # gguf shapes: innermost first
            n //= max(rows, 1)
        total += n
    return total


def read_bandwidth(bench_ops: Path, threads: int) -> float | None:
    """This machine's read bandwidth (GB/s) as bench_ops measures it (`--bandwidth`: the better
    of one and four streams over 1 GiB), or None without bench_ops."""
    if not bench_ops.exists():
        return None
    r = subprocess.run([str(bench_ops), "--bandwidth", "-t", str(threads)], capture_output=True, text=True)
    for line in r.stdout.splitlines() if r.returncode == 0 else []:
        try:
            j = json.loads(line)
        except json.JSONDecodeError:
            continue
        if j.get("name") == "peak_read_bandwidth":
            return float(j["value"])
    return None


def run_peer(model: Path, n_prompt: int, n_gen: int, threads: int, depth: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--peer-worker", str(model), "-p", str(n_prompt), "-n", str(n_gen),
           "-t", str(threads), "-d", str(depth)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise CompareError(f"llama.cpp worker failed on {model}:\n{r.stderr.strip()[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


class Peer:
    """llama.cpp through llama-cpp-python's bindings of llama.h, used the way llama-bench does."""

    def __init__(self, model: Path, n_ctx: int, n_batch: int, threads: int):
        import llama_cpp as L

        self.L = L
        L.llama_backend_init()
        self.model = L.llama_model_load_from_file(str(model).encode(), L.llama_model_default_params())
        if not self.model:
            raise CompareError(f"llama.cpp cannot load {model}")
        cp = L.llama_context_default_params()  # the library's defaults otherwise (f16 KV cache)
        cp.n_ctx = n_ctx
        cp.n_batch = cp.n_ubatch = n_batch
        cp.n_threads = cp.n_threads_batch = threads
        self.ctx = L.llama_init_from_model(self.model, cp)
        if not self.ctx:
            raise CompareError("llama.cpp cannot create a context")
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self.bos, self.eos = L.llama_vocab_bos(self.vocab), L.llama_vocab_eos(self.vocab)

    def clear(self) -> None:
        self.L.llama_memory_clear(self.L.llama_get_memory(self.ctx), True)

    def keep(self, n: int) -> bool:
        """Drops every position from n on; False if the cache cannot (then clear and refill)."""
        return bool(self.L.llama_memory_seq_rm(self.L.llama_get_memory(self.ctx), -1, n, -1))

    def decode(self, tokens: list[int]) -> None:
        L = self.L
        arr = (L.llama_token * len(tokens))(*tokens)
        if L.llama_decode(self.ctx, L.llama_batch_get_one(arr, len(tokens))) != 0:
            raise CompareError("llama_decode failed")
        L.llama_synchronize(self.ctx)

    def greedy(self, prompt: str, n: int) -> tuple[list[int], list[int]]:
        import numpy as np

        L, raw = self.L, prompt.encode()
        buf = (L.llama_token * (len(raw) + 8))()
        k = L.llama_tokenize(self.vocab, raw, len(raw), buf, len(buf), True, False)
        if k < 0:
            raise CompareError("llama_tokenize failed")
        ids, out = list(buf[:k]), []
        self.clear()
        self.decode(ids)
        while len(out) < n:
            logits = np.ctypeslib.as_array(L.llama_get_logits_ith(self.ctx, -1), shape=(self.n_vocab,))
            nxt = int(np.argmax(logits))
            if nxt == self.eos:
                break
            out.append(nxt)
            self.decode([nxt])
        return ids, out

    def close(self) -> None:
        self.L.llama_free(self.ctx)
        self.L.llama_model_free(self.model)


def peer_worker(model: Path, n_prompt: int, n_gen: int, threads: int, greedy: int, depth: int = 0) -> int:
    """Runs in a process of its own: llama-bench's ppN and tgN, one warm-up each (as altup bench
    does), or with greedy > 0 the greedy continuation of PROMPT. Prints one JSON line."""
    import random
    import resource

    try:
        t_load = time.perf_counter()
        peer = Peer(model, depth + max(n_prompt, n_gen, 64), max(n_prompt, 64), threads)
        res = {"load_s": time.perf_counter() - t_load}
        if greedy > 0:
            ids, out = peer.greedy(PROMPT, greedy)
            print(json.dumps({"prompt_ids": ids, "ids": out}))
            return 0
        rnd = random.Random(42)
        batch = max(n_prompt, 64)
        fill = [peer.bos] + [rnd.randrange(3, peer.n_vocab) for _ in range(depth - 1)] if depth else []

        def start() -> None:  # an empty context, or `depth` tokens of one (refilled if need be)
            if depth == 0:
                peer.clear()
            elif not peer.keep(depth) or not start.filled:
                peer.clear()
                for i in range(0, depth, batch):
                    peer.decode(fill[i:i + batch])
                start.filled = True
        start.filled = False

        def pp() -> float:
            start()
            toks = ([] if depth else [peer.bos]) + [rnd.randrange(3, peer.n_vocab) for _ in range(n_prompt - (0 if depth else 1))]
            t0 = time.perf_counter()
            peer.decode(toks)
            return n_prompt / (time.perf_counter() - t0)

        def tg() -> float:
            start()
            tok, t0 = peer.bos, time.perf_counter()
            for _ in range(n_gen):
                peer.decode([tok])
                tok = rnd.randrange(3, peer.n_vocab)
            return n_gen / (time.perf_counter() - t0)

        for name, n, f in ((f"pp{n_prompt}", n_prompt, pp), (f"tg{n_gen}", n_gen, tg)):
            if n > 0:
                f()  # warm-up, not counted
                res[name] = f()
        res["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        peer.close()
    except CompareError as e:
        print(f"compare: {e}", file=sys.stderr)
        return 1
    print(json.dumps(res))
    return 0


def check_ids(model: Path, n: int, threads: int) -> dict:
    """The same check for any file: greedy token ids of PROMPT in altup.cpp (its Python binding)
    and in llama.cpp, after the same prompt ids."""
    import numpy as np

    from altup_tools.runtime import Model

    with Model(model, temperature=0, threads=threads) as m:
        ids = m.tokenize(PROMPT)
        logits, ours = m.eval(ids), []
        for _ in range(n):
            ours.append(int(np.argmax(logits)))
            logits = m.eval([ours[-1]])
    p = subprocess.run([sys.executable, __file__, "--peer-worker", str(model), "--greedy", str(n),
                        "-t", str(threads)], capture_output=True, text=True)
    if p.returncode != 0:
        raise CompareError(f"llama.cpp could not generate from {model}:\n{p.stderr.strip()[-2000:]}")
    j = json.loads(p.stdout.strip().splitlines()[-1])
    theirs = j["ids"]
    agree = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    return {"prompt": PROMPT, "prompt_ids_same": ids == j["prompt_ids"], "tokens": n, "altup": ours,
            "llama_cpp": theirs, "same": ids == j["prompt_ids"] and ours == theirs, "agree_first": agree}


def check_agreement(altup: Path, model: Path, n: int, threads: int) -> dict:
    """Greedy continuations of PROMPT from both runtimes on the same file must be the same text:
    otherwise the timings would not be of the same computation. llama.cpp's token ids are turned
    into text by the sentencepiece library (which altup's decoder is tested against)."""
    import sentencepiece as spm

    r = subprocess.run([str(altup), "run", "-m", str(model), "-p", PROMPT, "-n", str(n), "--temp", "0",
                        "--repeat-penalty", "1", "-t", str(threads)], capture_output=True, text=True)
    if r.returncode != 0:
        raise CompareError(f"altup run failed on {model}:\n{r.stderr.strip()}")
    ours = r.stdout.rstrip("\n")
    p = subprocess.run([sys.executable, __file__, "--peer-worker", str(model), "--greedy", str(n),
                        "-t", str(threads)], capture_output=True, text=True)
    if p.returncode != 0:
        raise CompareError(f"llama.cpp could not generate from {model}:\n{p.stderr.strip()[-2000:]}")
    j = json.loads(p.stdout.strip().splitlines()[-1])
    sp = spm.SentencePieceProcessor(model_file=str(ROOT / "demo" / "tokenizer.model"))
    theirs = sp.decode(j["prompt_ids"] + j["ids"])
    return {"prompt": PROMPT, "tokens": n, "altup": ours, "llama_cpp": theirs, "same": ours == theirs}


# --- the comparison ------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtypes", nargs="+", default=["f32", "f16"], choices=["f32", "f16", "bf16", "q8_0", "q4_0"])
    ap.add_argument("--d", type=int, default=2048, help="model width (default 2048)")
    ap.add_argument("--layers", type=int, default=4, help="(default 4)")
    ap.add_argument("--ffn", type=int, default=5632, help="FFN width (default 5632)")
    ap.add_argument("-p", "--n-prompt", type=int, default=512, help="prefill test length; 0 skips it (default 512)")
    ap.add_argument("-n", "--n-gen", type=int, default=128, help="decode test length; 0 skips it (default 128)")
    ap.add_argument("--rounds", type=int, default=5, help="measurements of each runtime and file (default 5)")
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count() or 1, help="(default: all cores)")
    ap.add_argument("--check-tokens", type=int, default=32, help="greedy tokens compared; 0 skips (default 32)")
    ap.add_argument("--allow-mismatch", action="store_true", help="measure even if the greedy texts differ")
    ap.add_argument("--altup", type=Path, default=ROOT / "build" / "cli" / "altup")
    ap.add_argument("--bench-ops", type=Path, default=ROOT / "build" / "bench" / "bench_ops",
                    help="measures the read bandwidth that decode speeds are set against")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "compare")
    ap.add_argument("--keep", action="store_true", help="keep the GGUF files (reused by the next run)")
    ap.add_argument("--models", nargs="+", metavar="LABEL=FILE", help="measure these files (kept) instead")
    ap.add_argument("-d", "--depth", type=int, default=0, help="tokens of context before each test (default 0)")
    ap.add_argument("--peer-worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--greedy", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer_worker:
        return peer_worker(args.peer_worker, args.n_prompt, args.n_gen, args.threads, args.greedy, args.depth)
    if args.rounds < 1 or args.n_prompt < 0 or args.n_gen < 0 or args.n_prompt + args.n_gen == 0 or args.threads < 1:
        print("compare: need --rounds >= 1, -t >= 1 and at least one of -p, -n above 0", file=sys.stderr)
        return 2
    try:
        import llama_cpp
    except ImportError:
        print("compare: llama_cpp is not importable by this Python: run scripts/bootstrap-compare.sh, then\n"
              "  .venv-compare/bin/python bench/compare.py", file=sys.stderr)
        return 1
    if not args.altup.exists():
        print(f"compare: {args.altup} is missing: build first (scripts/build.sh build)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    given = bool(args.models)
    if given:
        models = {}
        for spec in args.models:
            label, _, path = spec.partition("=")
            if not label or not path or not Path(path).is_file():
                print(f"compare: --models wants LABEL=FILE with an existing file, got {spec!r}", file=sys.stderr)
                return 2
            models[label] = Path(path)
        args.keep = True
    else:
        models = make_models(args.out, args.dtypes, args.d, args.layers, args.ffn, seed=7)
    tests = [t for t, n in ((f"pp{args.n_prompt}", args.n_prompt), (f"tg{args.n_gen}", args.n_gen)) if n > 0]
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "threads": args.threads,
               "llama_cpp_python": llama_cpp.__version__,
               "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode().strip(),
               "llama_cpp_settings": "library defaults: f16 KV cache, flash attention auto; n_batch = n_ubatch = -p",
               "altup_settings": "f32 KV cache; GEMV for decode, oneDNN matmul for prefill",
               "rounds": args.rounds, "depth": args.depth, "models": {}}
    try:
        if args.check_tokens > 0:
            ref = models["f32"] if "f32" in models else next(iter(models.values()))
            chk = (check_ids if given else lambda m, n, t: check_agreement(args.altup, m, n, t))(
                ref, args.check_tokens, args.threads)
            results["check"] = chk
            print(f"greedy check on {ref.name}: {'same text' if chk['same'] else 'DIFFERENT text'}")
            if not chk["same"]:
                print(f"  altup:     {chk['altup']!r}\n  llama.cpp: {chk['llama_cpp']!r}")
                if not args.allow_mismatch:
                    raise CompareError("the two runtimes disagree on the same file, so their timings would not be\n"
                                       "of the same computation (a near-tie between two logits can flip a random\n"
                                       "model's greedy choice: --allow-mismatch measures anyway)")
        runs = {(dt, who): [] for dt in models for who in ("altup", "llama.cpp")}
        bandwidth = [read_bandwidth(args.bench_ops, args.threads)]  # before the rounds and after
        if bandwidth[0] is None:
            print(f"compare: no {args.bench_ops}: decode is not set against the read bandwidth", file=sys.stderr)
        for r in range(args.rounds):
            for dt, path in models.items():
                order = ("altup", "llama.cpp") if r % 2 == 0 else ("llama.cpp", "altup")
                for who in order:
                    if who == "altup":
                        res = run_altup(args.altup, path, args.n_prompt, args.n_gen, args.threads, args.depth)
                    else:
                        res = run_peer(path, args.n_prompt, args.n_gen, args.threads, args.depth)
                    runs[(dt, who)].append(res)
                    print(f"round {r + 1}/{args.rounds} {dt:4s} {who:9s} " +
                          "  ".join(f"{t} {res[t]:8.2f} t/s" for t in tests), flush=True)
        bandwidth.append(read_bandwidth(args.bench_ops, args.threads))
    except CompareError as e:
        print(f"compare: {e}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            for p in models.values():
                p.unlink(missing_ok=True)

    rows = []
    measured = [bw for bw in bandwidth if bw is not None]
    bw = max(measured) if measured else None
    results["read_bandwidth_gbs"] = {"before": bandwidth[0], "after": bandwidth[-1], "used": bw}
    for dt, path in models.items():
        a, b = runs[(dt, "altup")], runs[(dt, "llama.cpp")]
        step_bytes = decode_bytes(path)
        for t in tests:
            ma, mb = statistics.median(x[t] for x in a), statistics.median(x[t] for x in b)
            # Each round measures both back to back, so a round's ratio sees the same machine
            # state: the median of those is the steadier figure when memory speed drifts.
            per_round = [x[t] / y[t] for x, y in zip(a, b)]
            row = {"dtype": dt, "test": t, "altup_tps": ma, "llama_cpp_tps": mb, "ratio": ma / mb,
                   "round_ratio_median": statistics.median(per_round), "round_ratio_min": min(per_round),
                   "round_ratio_max": max(per_round),
                   "altup_runs": [x[t] for x in a], "llama_cpp_runs": [x[t] for x in b]}
            if t.startswith("tg"):  # decode: the weights read per token, and how fast
                row["bytes_per_token"] = step_bytes
                row["altup_gbs"], row["llama_cpp_gbs"] = step_bytes * ma / 1e9, step_bytes * mb / 1e9
                if bw:
                    row["altup_of_bandwidth"], row["llama_cpp_of_bandwidth"] = row["altup_gbs"] / bw, row["llama_cpp_gbs"] / bw
            rows.append(row)
        results["models"][dt] = {
            "file": path.name, "mib": round(path.stat().st_size / 2**20, 1) if path.exists() else None,
            "altup_load_s": statistics.median(x["load_s"] for x in a),
            "llama_cpp_load_s": statistics.median(x["load_s"] for x in b),
            "altup_peak_rss_mib": max(x["peak_rss_mib"] for x in a),
            "llama_cpp_peak_rss_mib": max(x["peak_rss_mib"] for x in b)}
    results["rows"] = rows
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print("\n| dtype | test | altup.cpp t/s | llama.cpp t/s | altup / llama.cpp | per round: median (min-max) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['dtype']} | {row['test']} | {row['altup_tps']:.2f} | {row['llama_cpp_tps']:.2f} | "
              f"{row['ratio']:.2f}x | {row['round_ratio_median']:.2f}x ({row['round_ratio_min']:.2f}-"
              f"{row['round_ratio_max']:.2f}) |")
    decode = [row for row in rows if "bytes_per_token" in row]
    if decode:
        print(f"\ndecode, weights read per token (read bandwidth: "
              f"{f'{bw:.1f} GB/s, bench_ops --bandwidth, the better of before and after' if bw else 'not measured'}):")
        print("| dtype | MiB per token | altup.cpp GB/s (of bandwidth) | llama.cpp GB/s (of bandwidth) |")
        print("|---|---|---|---|")
        for row in decode:
            of = (lambda k: f" ({row[k]:.0%})" if k in row else "")
            print(f"| {row['dtype']} | {row['bytes_per_token'] / 2**20:.1f} | {row['altup_gbs']:.1f}{of('altup_of_bandwidth')} | "
                  f"{row['llama_cpp_gbs']:.1f}{of('llama_cpp_of_bandwidth')} |")
    for dt, m in results["models"].items():
        print(f"{dt}: load altup {m['altup_load_s']:.2f} s, llama.cpp {m['llama_cpp_load_s']:.2f} s; peak RSS altup "
              f"{m['altup_peak_rss_mib']:.0f} MiB, llama.cpp {m['llama_cpp_peak_rss_mib']:.0f} MiB (a Python process)")
    print(f"(medians of {args.rounds} interleaved rounds, {args.threads} threads"
          f"{f', each test after {args.depth} tokens of context' if args.depth else ''}; "
          f"wrote {args.out / 'results.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
