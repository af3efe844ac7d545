"""Child process of ``test_hostile_scripts.py``: load one pipeline, run one frame, print the outcome.

Prints one JSON line: ``{"kind": "ok", "value": ...}`` or ``{"kind": "error", "type": ..., "message":
first line}``; a crash shows as a signal in the parent, never as output.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from ros_vision_pipe.engine.errors import EngineError
from ros_vision_pipe.engine.pipeline import Pipeline


def main(config: str) -> None:
    try:
        with Pipeline.from_config(config) as pipeline:
            result = pipeline.run(np.zeros((4, 6, 3), np.uint8))
            value = {"results": repr(result.results), "fused": repr(result.fused)}
            print(json.dumps({"kind": "ok", "value": value}), flush=True)
    except EngineError as error:
        first = str(error).partition("\n")[0]
        print(json.dumps({"kind": "error", "type": type(error).__name__, "message": first}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
