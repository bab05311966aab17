"""The shared HTML report helpers: escaped content, one self-contained file."""

from __future__ import annotations

import base64

from sovrag import htmlreport as H


def test_page_escapes_user_text_and_inlines_the_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [3, 1, 2])
    img = H.figure(fig, "a <plot>")
    plt.close(fig)
    body = H.section("Results <b>", H.table(["question", "ms"], [["<script>alert(1)</script>", 12.3456]]),
                     H.key_values({"cpu": "x & y", "cores": 2}), img)
    doc = H.page("bench on docs", body, subtitle="run 'x'")
    assert "<script>" not in doc and "&lt;script&gt;alert(1)&lt;/script&gt;" in doc
    assert "Results &lt;b&gt;" in doc and "x &amp; y" in doc and 'alt="a &lt;plot&gt;"' in doc
    assert '<td class="num">12.346</td>' in doc and '<td class="num">2</td>' in doc
    b64 = doc.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(b64).startswith(b"\x89PNG")
    assert "http://" not in doc and "https://" not in doc  # nothing fetched from elsewhere


def test_number_formatting():
    assert H.fmt(1234.7) == "1,235" and H.fmt(12345) == "12,345"
    assert H.fmt(12.5) == "12.5" and H.fmt(100.0) == "100" and H.fmt(0.012345) == "0.0123"
    assert H.fmt(float("nan")) == "nan" and H.fmt(None) == "" and H.fmt(True) == "True" and H.fmt(7) == "7"
    assert H.fmt(3.0, digits=0) == "3"
