"""Training sovrag's own small models on CPU (the optional `[train]` extra: torch, transformers, onnx).

One command per model, seeded and reproducible, recording its data sources, split, seed and metrics in a
manifest next to the artifact; artifacts are exported to ONNX and run on onnxruntime, so nothing here is
imported at run time.

    python -m sovrag.train verifier --out build/verifier     # the groundedness verifier (sovrag/verifier)

Modules: `sources` (the training data, from wheels, split by document), `perturb` (synthetic claims),
`verifier_data` (the verifier's examples), `crossencoder` (fine-tune, checkpoint/resume, ONNX export; shared
with the reranker), `verifier` (the recipe).
"""
