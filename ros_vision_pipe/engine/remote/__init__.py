"""Remote inference: a model's session on a KServe v2 / Triton inference server.

``backend = { kind = "kserve", url = "grpc://host:8001", model = "...", version = "1",
timeout_ms = 200 }`` in a model's configuration entry replaces its local ONNX Runtime
session with ``KServeSession``; the Lua scripts do not change. See docs/engine.md
("Remote models") and docs/deployment.md.
"""
