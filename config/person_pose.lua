-- Serial: person detector -> 33-keypoint body pose on every person box (spec 3.3).
-- Pose is skipped on frames without a person; its crops of one frame run in one call.
return {
  mode = "serial",
  models = {
    { name = "person", path = "../models/ssdlite_person.onnx", script = "scripts/ssd_person.lua" },
    { name = "pose", path = "../models/pose_landmark_full.onnx", script = "scripts/pose.lua" },
  },
}
