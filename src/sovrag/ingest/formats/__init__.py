"""One parser per document format; `sovrag.ingest.loaders.load_document` picks the right one.

Each module exposes `parse(path, content) -> Parsed`: text formats receive decoded `str`, binary
formats (PDF, DOCX) receive `bytes`. They may raise any library exception; the loader wraps it.
"""
