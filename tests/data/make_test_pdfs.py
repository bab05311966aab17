"""Generate the small PDF fixtures in this folder (they are committed; rerun only to change them).

Needs fpdf2, which is not a sovrag dependency:
    python3 -m venv /tmp/genvenv && /tmp/genvenv/bin/pip install fpdf2
    /tmp/genvenv/bin/python tests/data/make_test_pdfs.py
RC4 encryption is used on purpose: pypdf can open it without the optional 'cryptography' package.
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF
from fpdf.enums import EncryptionMethod

HERE = Path(__file__).parent

PAGES = [
    "Alpha page. The first page talks about apples and orchards.",
    "Beta page. The second page talks about bridges and rivers.",
    "Gamma page. The third page talks about comets and telescopes.",
]


def _pdf(pages: list[str], title: str | None = None) -> FPDF:
    pdf = FPDF()
    pdf.set_compression(True)
    if title:
        pdf.set_title(title)
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return pdf


def main() -> None:
    three = _pdf(PAGES, title="Three Page Sample")
    three.output(str(HERE / "three-pages.pdf"))
    data = (HERE / "three-pages.pdf").read_bytes()
    (HERE / "truncated.pdf").write_bytes(data[: len(data) // 2])

    _pdf(["Untitled Report Heading\nBody text of a PDF without a metadata title."]).output(
        str(HERE / "untitled.pdf")
    )

    locked = _pdf(["This text is locked behind a password."])
    locked.set_encryption(owner_password="owner-secret", user_password="secret",
                          encryption_method=EncryptionMethod.RC4)
    locked.output(str(HERE / "encrypted.pdf"))

    owner_only = _pdf(["Anyone may read this text; only editing is restricted."])
    owner_only.set_encryption(owner_password="owner-secret", user_password="",
                              encryption_method=EncryptionMethod.RC4)
    owner_only.output(str(HERE / "encrypted-empty-password.pdf"))

    image_only = FPDF()
    image_only.add_page()
    image_only.set_fill_color(40, 40, 40)
    image_only.rect(20, 20, 120, 80, style="F")  # drawing, no text: what a scan looks like to a parser
    image_only.output(str(HERE / "image-only.pdf"))


if __name__ == "__main__":
    main()
