"""A generated hostile folder: many kinds of bad file mixed with good ones, for the test and the benchmark.

Every bad kind met in the reliability campaign is here, each many times over with different bytes: device
links, FIFOs, symlink loops and broken links, links to a secret outside the folder, DOCX zip bombs and zips
that promise too much, corrupt/truncated/not-a-PDF PDFs, binary and non-UTF-8 text, empty and oversized
files, hidden files. The good files each hold one unique fact, so their retrieval can be checked.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import docx

#: max_file_mb to ingest the corpus with (the oversized files are just above it).
MAX_FILE_MB = 1.0


@dataclass
class HostileCorpus:
    root: Path
    secret: Path  # outside root: must never be indexed
    bad: list[Path] = field(default_factory=list)  # each must be named in the report
    good: dict[Path, str] = field(default_factory=dict)  # path -> the unique fact it holds


def bomb_docx(uncompressed_mb: int, varied: bool = False) -> bytes:
    """A valid DOCX whose document.xml is `uncompressed_mb` MB of one-letter paragraphs (deflates ~1000x), or
    of numbered sentences that compress like real text (`varied`)."""
    base = io.BytesIO()
    docx.Document().save(base)
    src = zipfile.ZipFile(io.BytesIO(base.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for item in src.infolist():
            if item.filename != "word/document.xml":
                z.writestr(item, src.read(item))
                continue
            with z.open("word/document.xml", "w") as f:
                f.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w='
                        b'"http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>')
                written, i = 0, 0
                while written < uncompressed_mb << 20:
                    if varied:
                        block = b"".join(b"<w:p><w:r><w:t>Item %d costs %d euros in region %x.</w:t></w:r></w:p>"
                                         % (i + k, (i + k) * 7919 % 10007, (i + k) * 31) for k in range(4096))
                        i += 4096
                    else:
                        block = b"<w:p><w:r><w:t>a</w:t></w:r></w:p>" * (1 << 16)
                    f.write(block)
                    written += len(block)
                f.write(b"</w:body></w:document>")
    return out.getvalue()


def _declared_too_big() -> bytes:
    """A 600 KB zip whose directory says 300 MB (members stored, the ratio looks like 1): refused on the
    promise alone."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        for i in range(3):
            z.writestr(f"word/media/image{i}.bin", os.urandom(200_000))
    data = bytearray(out.getvalue())
    # Patch the central directory's uncompressed sizes to 100 MB each (the local headers keep the truth).
    pos = 0
    while (pos := data.find(b"PK\x01\x02", pos)) != -1:
        data[pos + 24 : pos + 28] = (100 << 20).to_bytes(4, "little")
        pos += 4
    return bytes(data)


def build(base: Path, copies: int = 60, good: int = 40) -> HostileCorpus:
    """`copies` of each bad kind (17 kinds: 17 * copies bad files) and `good` good files under base/docs."""
    root = base / "docs"
    root.mkdir(parents=True)
    secret = base / "secret.txt"
    secret.write_text("The vault combination outside the folder is 31-41-59.\n")
    corpus = HostileCorpus(root, secret)
    bomb = bomb_docx(48)
    declared = _declared_too_big()
    with open(Path(__file__).parent / "data" / "encrypted.pdf", "rb") as f:
        encrypted = f.read()
    for i in range(copies):
        d = root / f"batch{i:03d}"
        d.mkdir()
        bad: list[Path] = []

        def add(name: str, content: bytes | None = None, d: Path = d, bad: list[Path] = bad) -> Path:
            p = d / name
            if content is not None:
                p.write_bytes(content)
            bad.append(p)
            return p

        add("zero.txt").symlink_to("/dev/zero")
        add("random.md").symlink_to("/dev/urandom")
        os.mkfifo(add("pipe.txt"))
        add("loop.txt").symlink_to(d / "loop.txt")
        add("broken.md").symlink_to(d / "gone.md")
        add("passwd.txt").symlink_to(secret)
        add("bomb.docx", bomb + i.to_bytes(2, "little"))  # bytes after the zip keep each copy distinct
        add("promises.docx", declared)
        add("notzip.docx", b"this is not a zip archive %d" % i)
        add("corrupt.pdf", b"%PDF-1.7\n" + os.urandom(2048) + b"\n%%EOF\n")
        add("truncated.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + b"x" * i)
        add("encrypted.pdf", encrypted)
        add("binary.txt", b"\x00\x01\x02" + os.urandom(512))
        add("latin1.md", "# Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e %d\n".encode("latin-1") % i)
        add("empty.txt", b"")
        add("huge.txt", b"word " * int(MAX_FILE_MB * (1 << 20) / 5 + 100))
        add(".hidden.md", b"# Hidden\n\nNot to be indexed.\n")
        corpus.bad.extend(bad)
    for j in range(good):
        fact = f"Project {j:03d} is code-named KESTREL-{j * 7919 % 10007:05d}."
        p = root / f"batch{j % copies:03d}" / f"good-{j:03d}.md"
        p.write_text(f"# Project {j:03d}\n\n{fact} It ships in quarter {j % 4 + 1}.\n")
        corpus.good[p] = fact
    return corpus


def cleanup(base: Path) -> None:
    shutil.rmtree(base, ignore_errors=True)


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return total


def run_measured(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, str, int, float]:
    """Run `cmd`; (exit code, stdout, stderr, peak resident bytes of its process tree, seconds)."""
    import subprocess
    import threading
    import time

    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss(proc.pid))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop.set()
        sampler.join()
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err, peak[0], time.monotonic() - t0
