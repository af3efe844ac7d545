-- OCR text-line angle classifier: PP-OCR mobile cls (pypkg://rapidocr/models/ch_ppocr_mobile_v2.0_cls_mobile.onnx).
-- Runs after the text detector "text": one perspective crop per text quad, height 48, padded to 192.
-- Input  x float32 BGR (x/255 - 0.5)/0.5 [K, 3, 48, 192].
-- Output [K, 2] probabilities (0 degrees, 180 degrees).
-- Result { angles = {0 | 180 per line}, scores = {...} }

local DETECTOR = "text"
local FLIP_THRESHOLD = 0.9

function preprocess(ctx)
  local text = ctx.results[DETECTOR]
  if text == nil or #text.detections == 0 then return nil end
  local crops = vp.crop_quads(vp.image(ctx, "bgr8"), text.quads, 48, 192, 128, true)
  return vp.to_chw(vp.normalize(crops, { scale = 1 / 255, mean = 0.5, std = 0.5 }))
end

function postprocess(outputs, ctx)
  local probs = outputs[1]
  local angles, scores = {}, {}
  for i = 1, probs:dim(1) do -- per text line
    local upside_down = probs:at(i, 2)
    angles[i] = upside_down > FLIP_THRESHOLD and 180 or 0
    scores[i] = math.max(probs:at(i, 1), upside_down)
  end
  return { angles = angles, scores = scores }
end
