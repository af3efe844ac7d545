-- bench_parallel: the person detector with Lua work in preprocess and postprocess costing
-- about as much as its inference (a stand-in for a tracker or a heavy decoder).
return { mode = "single", models = {
  { name = "person", path = "../../models/ssdlite_person.onnx", script = "ssd_person_heavy.lua" },
} }
