-- bench_parallel: the SSDLite person detector alone, one inference thread.
return { mode = "single", models = {
  { name = "person", path = "../../models/ssdlite_person.onnx", script = "../../config/scripts/ssd_person.lua", intra_op_threads = 1 },
} }
