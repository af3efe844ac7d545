-- Benchmark: the SSDLite person detector alone (single mode).
return {
  mode = "single",
  models = {
    { name = "person", path = "../../models/ssdlite_person.onnx", script = "../../config/scripts/ssd_person.lua" },
  },
}
