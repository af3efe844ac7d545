-- Body pose: BlazePose full (models/pose_landmark_full.onnx), 33 keypoints per person.
-- Runs after a person detector named "person": one square crop (x1.25) per person box,
-- all crops of a frame in one call (the model's batch is fixed at 1, so the engine
-- runs them one by one transparently), all persons' keypoints mapped back in one call.
-- Input  input_1 float32 RGB/255 [N, 256, 256, 3].
-- Output Identity [N, 195] = 39 x (x, y, z, visibility, presence) in crop pixels
--        (rows 34-39 are auxiliary points), Identity_1 [N, 1] pose presence (probability).
-- Result { detections = { {box, score = presence, label = "person",
--          keypoints = 33 x {x, y, z, score = sigmoid(visibility)}}, ... } }

local DETECTOR = "person"
local SIZE = 256
local CROP = { scale = 1.25, square = true, normalize = { scale = 1 / 255 } }

function preprocess(ctx)
  local people = ctx.results[DETECTOR]
  if people == nil or #people.detections == 0 then
    return nil -- nobody in the frame: pose is skipped (docs/execution-modes.md, Serial)
  end
  local boxes = vp.boxes(people.detections)
  local crops, transforms = vp.crop_batch(vp.image(ctx, "rgb8"), boxes, SIZE, SIZE, CROP)
  return crops, { boxes = boxes, transforms = transforms }
end

function postprocess(outputs, ctx, state)
  local n = outputs.Identity:dim(1)
  local landmarks = vp.slice(vp.reshape(outputs.Identity, { n, 39, 5 }), 2, 1, 33) -- [N, 33, 5]
  local points = vp.map_points(landmarks, state.transforms) -- person i through crop i's transform
  local visibility = vp.sigmoid(vp.slice(points, 3, 4, 4))
  local keypoints = vp.concat({ vp.slice(points, 3, 1, 3), visibility }, 3) -- [N, 33, 4]: x, y, z, score
  local presence = vp.squeeze(outputs.Identity_1, 2)
  local class_ids = vp.add(vp.zeros({ n }, "int64"), 1)
  return {
    detections = vp.detections(state.boxes, presence, class_ids, { "person" }, keypoints),
  }
end
