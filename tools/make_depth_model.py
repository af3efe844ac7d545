#!/usr/bin/env python3
"""Write config/models/depth_column_min.onnx, the model of the depth example (config/depth_sectors.lua).

A hand-built graph, no training: depth [1, 1, H, W] float32 metres -> column_min [1, W], the
nearest valid depth of every image column (0, negative and NaN = no return -> +inf).
The Lua script turns columns into sectors. Run from the repository root:

    python tools/make_depth_model.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).resolve().parents[1] / "config" / "models" / "depth_column_min.onnx"


def build() -> onnx.ModelProto:
    """The graph: Where(IsNaN(d) or d <= 0, inf, d) -> ReduceMin over H -> [1, W]."""
    depth = helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, "H", "W"])
    out = helper.make_tensor_value_info("column_min", TensorProto.FLOAT, [1, "W"])
    consts = [numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
              numpy_helper.from_array(np.array(np.inf, np.float32), "inf"),
              numpy_helper.from_array(np.array([1, 2], np.int64), "axes")]
    nodes = [
        helper.make_node("IsNaN", ["depth"], ["nan"]),
        helper.make_node("LessOrEqual", ["depth", "zero"], ["not_positive"]),
        helper.make_node("Or", ["nan", "not_positive"], ["invalid"]),
        helper.make_node("Where", ["invalid", "inf", "depth"], ["valid"]),
        helper.make_node("ReduceMin", ["valid", "axes"], ["column_min"], keepdims=0),
    ]
    graph = helper.make_graph(nodes, "depth_column_min", [depth], [out], consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="ros_vision_pipe")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build(), OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size} B)")
