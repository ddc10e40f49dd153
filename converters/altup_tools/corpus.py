"""The training corpus: the King James Version of the Bible (public domain), from Debian's
bible-kjv package (apt-get install bible-kjv). One verse per line, references removed."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

VERSE_REF = re.compile(r"^\S+\d+:\d+ ")  # "Ge1:1 " at the start of each verse


def extract_kjv(out: Path) -> int:
    """Writes the whole KJV to `out` (one verse per line); returns the number of lines."""
    exe = shutil.which("bible")
    if not exe:
        raise RuntimeError("the 'bible' program is missing: apt-get install bible-kjv")
    # -f formats one verse per line; the wide width keeps each verse on one line.
    r = subprocess.run([exe, "-f", "-l100000", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True)
    lines = []
    for raw in r.stdout.splitlines():
        raw = raw.strip()
        if not raw:
            continue
        lines.append(VERSE_REF.sub("", raw, count=1))
    if len(lines) < 30000:
        raise RuntimeError(f"expected the whole KJV (31102 verses), got {len(lines)} lines")
    tmp = out.with_suffix(out.suffix + ".tmp")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out}: the folder {out.parent} does not exist")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return len(lines)
