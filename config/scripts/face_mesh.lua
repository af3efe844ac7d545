-- Face mesh: MediaPipe face landmark (models/face_landmark.onnx), 468 points per face.
-- Runs after a face detector named "face": one square crop (x1.5) per face box, all crops
-- in one call, all faces' points mapped back in one call.
-- Input  input_1 float32 RGB/255 [N, 192, 192, 3] (batch fixed at 1: run one by one).
-- Output conv2d_21 [N, 1, 1, 1404] = 468 x (x, y, z) in crop pixels, conv2d_31 [N, 1, 1, 1] face logit.
-- Result { detections = { {box = face box, score = sigmoid(logit), label = "face_mesh",
--          keypoints = 468 x {x, y, z}}, ... } }

local DETECTOR = "face"
local SIZE = 192
local CROP = { scale = 1.5, square = true, normalize = { scale = 1 / 255 } }

function preprocess(ctx)
  local faces = ctx.results[DETECTOR]
  if faces == nil or #faces.detections == 0 then return nil end
  local boxes = vp.boxes(faces.detections)
  local crops, transforms = vp.crop_batch(vp.image(ctx, "rgb8"), boxes, SIZE, SIZE, CROP)
  return crops, { boxes = boxes, transforms = transforms }
end

function postprocess(outputs, ctx, state)
  local n = outputs.conv2d_21:dim(1)
  local mesh = vp.map_points(vp.reshape(outputs.conv2d_21, { n, 468, 3 }), state.transforms) -- face i, crop i
  local scores = vp.sigmoid(vp.reshape(outputs.conv2d_31, { n }))
  return {
    detections = vp.detections(state.boxes, scores, nil, nil, mesh),
  }
end
