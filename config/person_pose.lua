-- Serial: person detector -> 33-keypoint body pose on every person box (spec 3.3).
-- Pose is skipped on frames without a person; its crops of one frame run in one call.
return {
  mode = "serial",
  models = {
    { name = "person", path = "../models/ssdlite_person.onnx", script = "scripts/ssd_person.lua" },
    { name = "pose", path = "../models/pose_landmark_full.onnx", script = "scripts/pose.lua" },
  },
  -- The node's annotated <ns>/debug_image draws these lines between keypoints (1-based indices;
  -- BlazePose's 33-point body topology). Not used by the engine.
  debug_image = {
    skeleton = {
      pose = {
        {1, 2}, {2, 3}, {3, 4}, {4, 8}, {1, 5}, {5, 6}, {6, 7}, {7, 9}, {10, 11},
        {12, 13}, {12, 14}, {14, 16}, {16, 18}, {16, 20}, {16, 22}, {18, 20},
        {13, 15}, {15, 17}, {17, 19}, {17, 21}, {17, 23}, {19, 21},
        {12, 24}, {13, 25}, {24, 25}, {24, 26}, {25, 27}, {26, 28}, {27, 29},
        {28, 30}, {29, 31}, {30, 32}, {31, 33}, {28, 32}, {29, 33},
      },
    },
  },
}
