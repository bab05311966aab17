"""Self-contained HTML report pages: one file, no external assets, openable offline.

Shared by the reports of `sovrag bench` and `sovrag eval`: a page skeleton with a little CSS, tables whose
every cell is escaped, and matplotlib figures inlined as base64 PNG. Every text that reaches the page goes
through `esc` (report content comes from users' documents and questions), except what the helpers here
built themselves.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 62rem;
       padding: 0 1rem; color: #1d2330; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d8dce4; padding-bottom: .2rem; }
p.meta { color: #5b6475; margin-top: 0; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .92rem; }
th, td { border: 1px solid #d8dce4; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f2f4f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; border: 1px solid #e4e7ee; }
.note { color: #5b6475; font-size: .9rem; }
"""


def esc(value: Any) -> str:
    """Any value as escaped HTML text (None as an empty cell)."""
    return "" if value is None else html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 3) -> str:
    """A readable cell: floats to `digits` decimals (significant digits below 1), trailing zeros dropped."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value != value or value in (float("inf"), float("-inf")):  # shown as they are, never hidden
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    text = f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def table(headers: Sequence[str] | None, rows: Iterable[Sequence[Any]], digits: int = 3) -> str:
    """An HTML table; numbers are formatted with `fmt` and right-aligned, everything is escaped."""
    head = f"<thead><tr>{''.join(f'<th>{esc(h)}</th>' for h in headers)}</tr></thead>" if headers else ""
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{esc(fmt(v, digits))}</td>' if _is_num(v) else f"<td>{esc(fmt(v, digits))}</td>"
            for v in row
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table>{head}<tbody>{''.join(body)}</tbody></table>"


def key_values(items: Mapping[str, Any], digits: int = 3) -> str:
    """A two-column table of name -> value (machine info, settings)."""
    return table(None, ([k, v] for k, v in items.items()), digits)


def png_base64(fig: Any, dpi: int = 110) -> str:
    """A matplotlib figure as base64 PNG text (the figure is left open; the caller closes it)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def image(png_b64: str, alt: str) -> str:
    """An <img> holding the PNG inline, so the page needs no other file."""
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{png_b64}">'


def figure(fig: Any, alt: str, dpi: int = 110) -> str:
    return image(png_base64(fig, dpi), alt)


def section(title: str, *parts: str) -> str:
    """A titled section; `parts` are HTML already built by the helpers here (escape plain text with esc)."""
    return f"<h2>{esc(title)}</h2>\n" + "\n".join(parts)


def paragraph(text: str, css_class: str = "") -> str:
    cls = f' class="{esc(css_class)}"' if css_class else ""
    return f"<p{cls}>{esc(text)}</p>"


def page(title: str, body: str, subtitle: str = "") -> str:
    """The whole document; `body` is HTML built from the helpers above."""
    sub = f'<p class="meta">{esc(subtitle)}</p>' if subtitle else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n{sub}\n{body}\n</body>\n</html>\n"
    )
