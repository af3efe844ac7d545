-- OCR text recogniser: PP-OCRv6 rec small (pypkg://rapidocr/models/PP-OCRv6_rec_small.onnx).
-- Runs after "text" (quads) and, when present, "angle" (lines to turn 180 degrees).
-- All lines of a frame go in one batch: crops of height 48, padded to the widest line.
-- Input  x float32 BGR (x/255 - 0.5)/0.5 [K, 3, 48, W].
-- Output [K, T, C] CTC probabilities; the character list is the model metadata "character".
-- Result { lines = { {text, score}, ... },
--          detections = { {box = line box, score, label = recognised text}, ... } }

local DETECTOR, ANGLE = "text", "angle"
local CHARSET = MODEL.metadata.character

function preprocess(ctx)
  local text = ctx.results[DETECTOR]
  if text == nil or #text.detections == 0 then return nil end
  local crops = vp.crop_quads(vp.image(ctx, "bgr8"), text.quads, 48, 960)
  local angle = ctx.results[ANGLE]
  if angle ~= nil then
    local flip = {}
    for i, a in ipairs(angle.angles) do
      if a == 180 then flip[#flip + 1] = i end
    end
    if #flip > 0 then crops = vp.rotate180(crops, flip) end
  end
  return vp.to_chw(vp.normalize(crops, { scale = 1 / 255, mean = 0.5, std = 0.5 }))
end

function postprocess(outputs, ctx)
  local texts, scores = vp.ctc_decode(outputs[1], CHARSET)
  local boxes = ctx.results[DETECTOR].detections
  local lines, detections = {}, {}
  for i, text in ipairs(texts) do
    lines[i] = { text = text, score = scores[i] }
    detections[i] = { box = boxes[i].box, score = scores[i], class_id = -1, label = text }
  end
  return { lines = lines, detections = detections }
end
