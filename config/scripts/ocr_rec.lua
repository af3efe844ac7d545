-- OCR text recogniser: PP-OCRv6 rec small (pypkg://rapidocr/models/PP-OCRv6_rec_small.onnx).
-- Runs after "text" (quads) and, when present, "angle" (lines to turn 180 degrees).
-- All lines of a frame go in one batch: crops of height 48, padded to the widest line.
-- A line the angle classifier turns is read both ways (turned, and as detected: one more crop
-- in the batch each) and the reading with the higher CTC score is kept: the classifier says
-- "180" above its 0.9 threshold on some upright lines (0.91-0.94 on line 5 of sample:page,
-- in rapidocr's pipeline too), and the turned crop then reads as noise (score ~0.5, against
-- ~0.99 upright). See docs/performance.md (OCR against rapidocr).
-- Input  x float32 BGR (x/255 - 0.5)/0.5 [K (+ turned lines), 3, 48, W].
-- Output [K, T, C] CTC probabilities; the character list is the model metadata "character".
-- Result { lines = { {text, score, angle = 0 | 180}, ... },
--          detections = { {box = line box, score, label = recognised text}, ... } }

local DETECTOR, ANGLE = "text", "angle"
local CHARSET = MODEL.metadata.character

-- 1-based indices of the lines the angle classifier turns (empty without a classifier).
local function turned(ctx)
  local flip = {}
  local angle = ctx.results[ANGLE]
  if angle ~= nil then
    for i, a in ipairs(angle.angles) do
      if a == 180 then flip[#flip + 1] = i end
    end
  end
  return flip
end

function preprocess(ctx)
  local text = ctx.results[DETECTOR]
  if text == nil or #text.detections == 0 then return nil end
  local crops = vp.crop_quads(vp.image(ctx, "bgr8"), text.quads, 48, 960)
  local flip = turned(ctx)
  if #flip > 0 then -- turned lines in place, and their crops as detected after the K lines
    crops = vp.concat({ vp.rotate180(crops, flip), vp.take(crops, flip) })
  end
  return vp.to_chw(vp.normalize(crops, { scale = 1 / 255, mean = 0.5, std = 0.5 }))
end

function postprocess(outputs, ctx)
  local texts, scores = vp.ctc_decode(outputs[1], CHARSET)
  local boxes = ctx.results[DETECTOR].detections
  local angles = {}
  for i = 1, #boxes do angles[i] = 0 end
  for j, i in ipairs(turned(ctx)) do -- keep the better of the two readings
    local upright = #boxes + j
    if scores[upright] >= scores[i] then
      texts[i], scores[i] = texts[upright], scores[upright]
    else
      angles[i] = 180
    end
  end
  local lines, detections = {}, {}
  for i = 1, #boxes do
    lines[i] = { text = texts[i], score = scores[i], angle = angles[i] }
    detections[i] = { box = boxes[i].box, score = scores[i], class_id = -1, label = texts[i] }
  end
  return { lines = lines, detections = detections }
end
