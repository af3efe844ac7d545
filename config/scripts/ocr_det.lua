-- OCR text detector: PP-OCRv6 det small (pypkg://rapidocr/models/PP-OCRv6_det_small.onnx).
-- Input  x float32 BGR (x/255 - 0.5)/0.5 [1, 3, H, W], H and W multiples of 32.
-- Output [1, 1, H, W] text probability; DB post-processing (threshold 0.3, box threshold
-- 0.5, unclip ratio 1.6) gives one quadrilateral per text line.
-- Result { quads = [K, 4, 2] corners (tl, tr, br, bl) in original pixels,
--          detections = { {box = bounding box of the quad, score, label = "text"}, ... } }

local MAX_SIDE = 960

local function round_32(x) return math.max(32, math.floor(x / 32 + 0.5) * 32) end

function preprocess(ctx)
  local s = math.min(1, MAX_SIDE / math.max(ctx.width, ctx.height))
  local image = vp.resize(vp.image(ctx, "bgr8"), round_32(ctx.width * s), round_32(ctx.height * s))
  local t = vp.normalize(image, { scale = 1 / 255, mean = 0.5, std = 0.5 })
  return vp.expand_dims(vp.to_chw(t), 1)
end

function postprocess(outputs, ctx)
  local quads, scores = vp.text_regions(outputs[1], {
    src_w = ctx.width, src_h = ctx.height, thresh = 0.3, box_thresh = 0.5, unclip_ratio = 1.6,
  })
  local boxes = {}
  for i = 1, quads:dim(1) do -- per text line, four corners each
    local x1, y1, x2, y2 = math.huge, math.huge, -math.huge, -math.huge
    for c = 1, 4 do
      local x, y = quads:at(i, c, 1), quads:at(i, c, 2)
      x1, y1, x2, y2 = math.min(x1, x), math.min(y1, y), math.max(x2, x), math.max(y2, y)
    end
    boxes[i] = { x1, y1, x2, y2 }
  end
  if #boxes == 0 then return { quads = quads, detections = {} } end
  return { quads = quads, detections = vp.detections(boxes, scores, nil, nil) }
end
