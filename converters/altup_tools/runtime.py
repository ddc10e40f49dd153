"""Python binding of altup.cpp's C API (include/altup.h) through ctypes: no compiler is
needed, only the shared library libaltup.so.

    from altup_tools.runtime import Model
    m = Model("demo/kjv-altup-k2.gguf", temperature=0)
    print(m.generate("And God said", max_tokens=32))
    for piece in m.stream("In the beginning", max_tokens=32):
        print(piece, end="", flush=True)
    logits = m.eval(m.tokenize("And God"))      # NumPy array [vocab]

The library is found through $ALTUP_LIBRARY, else this checkout's build/libaltup.so, else the
system's library path (an installed `meson install`). Errors raise AltupError with the
runtime's message.
"""
from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import queue
import threading
import weakref
from pathlib import Path
from typing import Iterator

import numpy as np

__all__ = ["AltupError", "Model", "load_library"]

_STATUS = {0: "ok", 1: "invalid argument", 2: "invalid handle", 3: "cannot read the file", 4: "invalid model",
           5: "out of memory", 6: "token id out of range", 7: "context full", 8: "buffer too small",
           9: "non-finite logits", 10: "no logits yet", 11: "internal error"}
_BUFFER_TOO_SMALL = 8
STOP_REASONS = {0: "length", 1: "end of text", 2: "context full", 3: "stopped"}


class AltupError(RuntimeError):
    """A call into the runtime failed; .status is the C status code, str() its message."""

    def __init__(self, status: int, message: str):
        super().__init__(message or _STATUS.get(status, f"status {status}"))
        self.status = status


class _Info(ctypes.Structure):
    _fields_ = [("architecture", ctypes.c_char_p), ("vocab_size", ctypes.c_int32), ("context_length", ctypes.c_int64),
                ("weight_bytes", ctypes.c_uint64), ("bos_token", ctypes.c_int32), ("eos_token", ctypes.c_int32),
                ("add_bos", ctypes.c_int32)]


class _Submodel(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("skip_layers", ctypes.c_char_p), ("ffn_widths", ctypes.c_char_p)]


class _Options(ctypes.Structure):
    _fields_ = [("context", ctypes.c_int64), ("threads", ctypes.c_int32), ("temperature", ctypes.c_float),
                ("top_k", ctypes.c_int32), ("top_p", ctypes.c_float), ("min_p", ctypes.c_float),
                ("repeat_penalty", ctypes.c_float), ("repeat_last_n", ctypes.c_int32), ("seed", ctypes.c_uint64),
                ("profile", ctypes.c_int32)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int32, ctypes.c_char_p, ctypes.c_void_p)
_lib = None
_INVALID_ARGUMENT = 1
_INT32_MAX = 2**31 - 1


def _integer(name: str, value, lo: int, hi: int) -> int:
    """value as an int in [lo, hi], else an AltupError naming the parameter (never a wrapped C int)."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise AltupError(_INVALID_ARGUMENT, f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


class _Stream:
    """A stream() whose C call runs in a worker thread: what stopping it needs."""

    def __init__(self):
        self.queue: queue.Queue = queue.Queue(maxsize=64)
        self.halt = threading.Event()
        self.worker: threading.Thread | None = None

    def stop(self) -> None:
        """Asks the generation to stop at its next token and waits for the worker to end."""
        self.halt.set()
        while self.worker is not None and self.worker.is_alive():
            try:  # drain, so the callback never blocks on a full queue
                self.queue.get(timeout=0.05)
            except queue.Empty:
                pass
        if self.worker is not None:
            self.worker.join()


# Streams left half-read when the interpreter exits: their workers must finish their C call
# before Python finalizes, or the callback would run in a dying interpreter.
_open_streams: "weakref.WeakSet[_Stream]" = weakref.WeakSet()


@atexit.register
def _stop_open_streams() -> None:
    for s in list(_open_streams):
        s.stop()


def _candidates() -> list[str]:
    found = []
    if os.environ.get("ALTUP_LIBRARY"):
        found.append(os.environ["ALTUP_LIBRARY"])
    checkout = Path(__file__).resolve().parents[2] / "build" / "libaltup.so"
    if checkout.exists():
        found.append(str(checkout))
    system = ctypes.util.find_library("altup")
    if system:
        found.append(system)
    return found


def load_library(path: str | None = None) -> ctypes.CDLL:
    """Loads libaltup.so once (from `path`, or the search order in the module's docstring)."""
    global _lib
    if _lib is not None and path is None:
        return _lib
    tried = [path] if path else _candidates()
    if not tried:
        raise AltupError(3, "libaltup.so not found: build the project (scripts/build.sh), install it "
                            "(meson install), or set ALTUP_LIBRARY to its path")
    errors = []
    for p in tried:
        try:
            lib = ctypes.CDLL(p)
            break
        except OSError as e:
            errors.append(f"{p}: {e}")
    else:
        raise AltupError(3, "cannot load libaltup.so: " + "; ".join(errors))
    S, P, I32, SZ = ctypes.c_int, ctypes.c_void_p, ctypes.c_int32, ctypes.c_size_t
    sigs = {
        "altup_last_error": (ctypes.c_char_p, []),
        "altup_version": (ctypes.c_char_p, []),
        "altup_system_info": (ctypes.c_char_p, []),
        "altup_model_open": (S, [ctypes.c_char_p, ctypes.POINTER(P)]),
        "altup_model_open_submodel": (S, [ctypes.c_char_p, ctypes.POINTER(_Submodel), ctypes.POINTER(P)]),
        "altup_model_free": (S, [P]),
        "altup_model_get_info": (S, [P, ctypes.POINTER(_Info)]),
        "altup_tokenize": (S, [P, ctypes.c_char_p, SZ, S, ctypes.POINTER(I32), SZ, ctypes.POINTER(SZ)]),
        "altup_detokenize": (S, [P, ctypes.POINTER(I32), SZ, ctypes.c_char_p, SZ, ctypes.POINTER(SZ)]),
        "altup_session_default_options": (_Options, []),
        "altup_session_create": (S, [P, ctypes.POINTER(_Options), ctypes.POINTER(P)]),
        "altup_session_free": (S, [P]),
        "altup_eval": (S, [P, ctypes.POINTER(I32), SZ]),
        "altup_get_logits": (S, [P, ctypes.POINTER(ctypes.POINTER(ctypes.c_float)), ctypes.POINTER(I32)]),
        "altup_sample": (S, [P, ctypes.POINTER(I32)]),
        "altup_generate": (S, [P, ctypes.c_char_p, I32, _CALLBACK, P, ctypes.POINTER(S)]),
        "altup_session_position": (S, [P, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int64)]),
        "altup_reset": (S, [P]),
        "altup_truncate": (S, [P, ctypes.c_int64]),
        "altup_profile_json": (S, [P, ctypes.POINTER(ctypes.c_char_p)]),
        "altup_profile_clear": (S, [P]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    if path is None:
        _lib = lib
    return lib


class Model:
    """A model and one session on it (its KV cache, sampler and, optionally, profile).

    Sampling options are those of `altup run`; temperature 0 is greedy."""

    def __init__(self, path: str | os.PathLike, *, context: int = 0, threads: int = 0, temperature: float = 0.8,
                 top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05, repeat_penalty: float = 1.1,
                 repeat_last_n: int = 64, seed: int = 0, profile: bool = False, library: str | None = None,
                 submodel: str = "", skip_layers: str = "", ffn_widths: str | list[int] = ""):
        self._lib = load_library(library)
        self._model = ctypes.c_void_p()
        self._session = ctypes.c_void_p()
        self._stream: _Stream | None = None  # the stream() being read, if any
        # Integers the C options hold, checked here so that none wraps around.
        _integer("context", context, 0, 2**63 - 1)
        _integer("threads", threads, 0, _INT32_MAX)
        _integer("top_k", top_k, 0, _INT32_MAX)
        _integer("repeat_last_n", repeat_last_n, 0, _INT32_MAX)
        _integer("seed", seed, 0, 2**64 - 1)
        # A MatFormer sub-model, in the CLI's words (--submodel / --skip-layers / --ffn-widths);
        # ffn_widths may also be a list of ints.
        if not isinstance(ffn_widths, str):
            ffn_widths = ",".join(str(_integer("ffn_widths[]", w, 1, 2**62)) for w in ffn_widths)
        for what, v in (("submodel", submodel), ("skip_layers", skip_layers), ("ffn_widths", ffn_widths)):
            if not isinstance(v, str):
                raise TypeError(f"{what} must be a string, not {type(v).__name__}")
        sub = _Submodel(submodel.encode(), skip_layers.encode(), ffn_widths.encode())
        self._check(self._lib.altup_model_open_submodel(os.fsencode(path), ctypes.byref(sub), ctypes.byref(self._model)))
        o = self._lib.altup_session_default_options()
        o.context, o.threads, o.temperature, o.top_k = context, threads, temperature, top_k
        o.top_p, o.min_p, o.repeat_penalty, o.repeat_last_n = top_p, min_p, repeat_penalty, repeat_last_n
        o.seed, o.profile = seed, int(bool(profile))
        try:
            self._check(self._lib.altup_session_create(self._model, ctypes.byref(o), ctypes.byref(self._session)))
        except AltupError:
            self._lib.altup_model_free(self._model)
            self._model = ctypes.c_void_p()
            raise
        info = _Info()
        self._check(self._lib.altup_model_get_info(self._model, ctypes.byref(info)))
        self.info = {"architecture": info.architecture.decode(), "vocab_size": info.vocab_size,
                     "context_length": info.context_length, "weight_bytes": info.weight_bytes,
                     "bos_token": info.bos_token, "eos_token": info.eos_token, "add_bos": bool(info.add_bos)}

    # -- plumbing --
    def _check(self, status: int) -> None:
        if status != 0:
            raise AltupError(status, self._lib.altup_last_error().decode("utf-8", "replace"))

    def _idle(self, what: str) -> None:
        """One session runs one call at a time: refuse a call while a stream() is still open."""
        s = getattr(self, "_stream", None)
        if s is not None:
            raise AltupError(_INVALID_ARGUMENT, f"{what}: a stream() on this model is still open; read it to the "
                                                "end or close it (leave the loop, or call its close()) first")

    def close(self) -> None:
        """Frees the session and the model (also done when the object is collected); an open
        stream() is stopped first."""
        lib = getattr(self, "_lib", None)
        if lib is None:
            return
        if getattr(self, "_stream", None) is not None:
            self._stream.stop()
            self._stream = None
        if getattr(self, "_session", None):
            lib.altup_session_free(self._session)
            self._session = ctypes.c_void_p()
        if getattr(self, "_model", None):
            lib.altup_model_free(self._model)
            self._model = ctypes.c_void_p()

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- tokens --
    def tokenize(self, text: str, add_bos: bool = True) -> list[int]:
        raw = text.encode("utf-8")
        n = ctypes.c_size_t()
        cap = len(raw) + 2
        while True:
            buf = (ctypes.c_int32 * cap)()
            st = self._lib.altup_tokenize(self._model, raw, len(raw), int(add_bos), buf, cap, ctypes.byref(n))
            if st == _BUFFER_TOO_SMALL:
                cap = n.value
                continue
            self._check(st)
            return list(buf[:n.value])

    def detokenize(self, tokens) -> str:
        ids = (ctypes.c_int32 * len(tokens))(*tokens)
        n = ctypes.c_size_t()
        cap = 16 * len(tokens) + 16
        while True:
            buf = ctypes.create_string_buffer(cap)
            st = self._lib.altup_detokenize(self._model, ids, len(tokens), buf, cap, ctypes.byref(n))
            if st == _BUFFER_TOO_SMALL:
                cap = n.value + 1
                continue
            self._check(st)
            return buf.raw[:n.value].decode("utf-8")

    # -- the sequence --
    def eval(self, tokens) -> np.ndarray:
        """Appends tokens to the sequence; returns the last one's logits (a copy, float32 [vocab])."""
        self._idle("eval")
        ids = (ctypes.c_int32 * len(tokens))(*tokens)
        self._check(self._lib.altup_eval(self._session, ids, len(tokens)))
        return self.logits()

    def logits(self) -> np.ndarray:
        ptr = ctypes.POINTER(ctypes.c_float)()
        n = ctypes.c_int32()
        self._check(self._lib.altup_get_logits(self._session, ctypes.byref(ptr), ctypes.byref(n)))
        return np.ctypeslib.as_array(ptr, shape=(n.value,)).copy()

    def sample(self) -> int:
        self._idle("sample")
        t = ctypes.c_int32()
        self._check(self._lib.altup_sample(self._session, ctypes.byref(t)))
        return t.value

    @property
    def position(self) -> int:
        n = ctypes.c_int64()
        self._check(self._lib.altup_session_position(self._session, ctypes.byref(n), None))
        return n.value

    def reset(self) -> None:
        self._idle("reset")
        self._check(self._lib.altup_reset(self._session))

    def truncate(self, n_keep: int) -> None:
        self._idle("truncate")
        self._check(self._lib.altup_truncate(self._session, n_keep))

    # -- generation --
    def generate(self, prompt: str, max_tokens: int = 128, *, keep: bool = False) -> str:
        """The continuation of `prompt` (greedy with temperature=0), as `altup run` prints it
        after the prompt. The sequence starts afresh unless keep=True."""
        self._idle("generate")
        _integer("max_tokens", max_tokens, 0, _INT32_MAX)
        if not keep:
            self.reset()
        self.last_stop = None
        pieces: list[str] = []

        def collect(token, text, user):
            pieces.append(text.decode("utf-8", "replace"))
            return 0

        stop = ctypes.c_int()
        cb = _CALLBACK(collect)
        self._check(self._lib.altup_generate(self._session, prompt.encode("utf-8"), max_tokens, cb, None,
                                             ctypes.byref(stop)))
        self.last_stop = STOP_REASONS.get(stop.value)
        return "".join(pieces)

    def stream(self, prompt: str, max_tokens: int = 128, *, keep: bool = False) -> Iterator[str]:
        """Yields the continuation piece by piece as it is generated. Leaving the loop early
        stops the generation. While a stream is open, other calls on this model raise
        AltupError (a session runs one call at a time)."""
        self._idle("stream")
        _integer("max_tokens", max_tokens, 0, _INT32_MAX)
        return self._stream_pieces(prompt, max_tokens, keep)

    def _stream_pieces(self, prompt: str, max_tokens: int, keep: bool) -> Iterator[str]:
        self._idle("stream")  # (another stream may have started since stream() was called)
        if not keep:
            self.reset()
        self.last_stop = None
        # The C call runs in a worker thread (ctypes releases the GIL); its callback hands each
        # piece over a queue and learns from `halt` whether the consumer has gone.
        s = _Stream()
        result = {}

        def on_token(token, text, user):
            if s.halt.is_set():
                return 1
            s.queue.put(text.decode("utf-8", "replace"))
            return 0

        cb = _CALLBACK(on_token)

        def work():
            stop = ctypes.c_int()
            result["status"] = self._lib.altup_generate(self._session, prompt.encode("utf-8"), max_tokens, cb, None,
                                                        ctypes.byref(stop))
            result["error"] = self._lib.altup_last_error().decode("utf-8", "replace")  # this thread's
            result["stop"] = stop.value
            s.queue.put(None)

        s.worker = threading.Thread(target=work, daemon=True)
        self._stream = s
        _open_streams.add(s)
        s.worker.start()
        try:
            while (piece := s.queue.get()) is not None:
                yield piece
        finally:
            s.stop()
            _open_streams.discard(s)
            self._stream = None
        if result.get("status", 0) != 0:
            raise AltupError(result["status"], result["error"])
        self.last_stop = STOP_REASONS.get(result.get("stop"))

    # -- profile and system --
    def profile_json(self) -> str:
        """The per-layer / per-op profile of the calls so far (needs profile=True)."""
        self._idle("profile_json")
        s = ctypes.c_char_p()
        self._check(self._lib.altup_profile_json(self._session, ctypes.byref(s)))
        return s.value.decode("utf-8")

    @staticmethod
    def system_info(library: str | None = None) -> str:
        return load_library(library).altup_system_info().decode()
