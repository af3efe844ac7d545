-- Depth example: the nearest obstacle distance in each of 8 vertical sectors of a depth image,
-- as a robot's collision checker wants it. Run it on a depth topic with image_format 'native':
--
--   ros2 run ros_vision_pipe pipeline_node --ros-args -p config_file:=config/depth_sectors.lua \
--       -p "image_topics:=[/camera/depth/image_raw]" -p "image_format:=[native]"
--
-- 32FC1 depth (metres) and 16UC1 / mono16 depth (millimetres, unscaled) are both accepted; a
-- 0, negative or NaN pixel means "no return". Result (extra_json): { sectors = {d1, ..., d8},
-- nearest = d, nearest_sector = k } in metres, null where a sector has no return.
return {
  mode = "single",
  models = {
    { name = "depth_sectors", path = "models/depth_column_min.onnx", script = "scripts/depth_sectors.lua" },
  },
}
