"""Nothing leaves the building: switch off every dependency's phone-home before any of them loads.

onnxruntime's official Linux wheels send usage events to Microsoft (1DS telemetry over HTTPS) from every
process that creates an inference session, unless `ORT_DISABLE_TELEMETRY=1` is in the environment when
onnxruntime initialises; `onnxruntime.disable_telemetry_events()` called later does not stop it. So this
module runs first, from `sovrag/__init__.py`, before any sovrag module can import onnxruntime, and the
embedder refuses to start in a process where onnxruntime was loaded earlier without the switch.

The other switches cover dependencies that sovrag or its optional extras may load: the Hugging Face hub
client (used by transformers/tokenizers for downloads; sovrag never downloads from a hub), ragas (dev
extra, `sovrag eval` parity tests), and the generic DO_NOT_TRACK convention. They are set only where the
user has not set them: an explicit choice in the environment wins, except for onnxruntime's, which has no
opt-in here (sovrag has no use for it).
"""

from __future__ import annotations

import os
import sys

#: Environment switches set for every sovrag process (and inherited by its subprocesses).
SWITCHES: dict[str, str] = {
    "ORT_DISABLE_TELEMETRY": "1",  # onnxruntime 1DS telemetry
    "HF_HUB_OFFLINE": "1",  # huggingface_hub: never reach a model hub
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "RAGAS_DO_NOT_TRACK": "true",  # ragas usage analytics
    "DO_NOT_TRACK": "1",  # the cross-tool convention (https://donottrack.sh)
    "ANONYMIZED_TELEMETRY": "False",  # chromadb and tools built on it, if a user's extra brings them in
}

#: True when onnxruntime was imported before sovrag without its telemetry switch: it is then already on.
ORT_LOADED_WITH_TELEMETRY = "onnxruntime" in sys.modules and os.environ.get("ORT_DISABLE_TELEMETRY") != "1"


def apply() -> None:
    for key, value in SWITCHES.items():
        if key == "ORT_DISABLE_TELEMETRY":
            os.environ[key] = value
        else:
            os.environ.setdefault(key, value)


apply()
