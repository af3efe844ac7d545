-- config/scripts/ssd_person.lua plus pure-Lua work in preprocess and postprocess.
-- WORK (iterations) is calibrated by bench/bench_parallel.py so that pre + post ~ inference.
WORK = WORK or 500000

local function work(n)
  local x = 0
  for i = 1, n do x = x + math.sin(i) end
  return x
end

function preprocess(ctx)
  work(WORK)
  return vp.expand_dims(vp.resize(vp.image(ctx, "rgb8"), 300, 300), 1)
end

function postprocess(outputs, ctx)
  work(WORK)
  local scores = vp.squeeze(outputs["detection_scores:0"], 1)
  local boxes = vp.squeeze(outputs["detection_boxes:0"], 1)
  local classes = vp.squeeze(outputs["detection_classes:0"], 1)
  local keep = vp.where_above(scores, 0.5)
  local xyxy = vp.scale_boxes(vp.box_convert(vp.take(boxes, keep), "yxyx", "xyxy"), ctx.width, ctx.height)
  return { detections = vp.detections(xyxy, vp.take(scores, keep), vp.take(classes, keep), { "person" }) }
end
