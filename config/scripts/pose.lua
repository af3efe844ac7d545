-- Body pose: BlazePose full (models/pose_landmark_full.onnx), 33 keypoints per person.
-- Runs after a person detector named "person": one square crop (x1.25) per person box,
-- all crops of a frame in one call (the model's batch is fixed at 1, so the engine
-- runs them one by one transparently).
-- Input  input_1 float32 RGB/255 [N, 256, 256, 3].
-- Output Identity [N, 195] = 39 x (x, y, z, visibility, presence) in crop pixels
--        (rows 34-39 are auxiliary points), Identity_1 [N, 1] pose presence (probability).
-- Result { detections = { {box, score = presence, label = "person",
--          keypoints = 33 x {x, y, z, score = sigmoid(visibility)}}, ... } }

local DETECTOR = "person"
local SIZE = 256

function preprocess(ctx)
  local people = ctx.results[DETECTOR]
  if people == nil or #people.detections == 0 then
    return nil -- nobody in the frame: pose is skipped (spec 3.3)
  end
  local boxes = vp.boxes(people.detections)
  local crops, transforms = vp.crop_boxes(vp.image(ctx, "rgb8"), boxes, SIZE, SIZE,
                                          { scale = 1.25, square = true })
  return vp.normalize(crops, { scale = 1 / 255 }), { boxes = boxes, transforms = transforms }
end

function postprocess(outputs, ctx, state)
  local n = outputs.Identity:dim(1)
  local landmarks = vp.slice(vp.reshape(outputs.Identity, { n, 39, 5 }), 2, 1, 33) -- [N, 33, 5]
  local people = {}
  for i = 1, n do
    local points = vp.map_points(vp.squeeze(vp.take(landmarks, { i }), 1), state.transforms[i])
    local xyz = vp.slice(points, 2, 1, 3)
    local visibility = vp.sigmoid(vp.slice(points, 2, 4, 4))
    people[i] = vp.concat({ xyz, visibility }, 2) -- [33, 4]: x, y, z, score
  end
  local presence = vp.squeeze(outputs.Identity_1, 2)
  local class_ids = vp.add(vp.zeros({ n }, "int64"), 1)
  return {
    detections = vp.detections(state.boxes, presence, class_ids, { "person" }, vp.stack(people, 1)),
  }
end
