-- Person detector: SSDLite MobileNet (models/ssdlite_person.onnx; NMS is inside the graph).
-- Input  image_tensor:0  uint8 RGB [1, 300, 300, 3].
-- Output detection_boxes:0 [1, 100, 4] (ymin, xmin, ymax, xmax, normalised),
--        detection_scores:0 [1, 100], detection_classes:0 [1, 100] (always 1 = person).
-- Result { detections = { {box = {x1, y1, x2, y2}, score, class_id = 1, label = "person"}, ... } }
-- in original-image pixels.

local SCORE_THRESHOLD = 0.5
local LABELS = { "person" }

function preprocess(ctx)
  local rgb = vp.image(ctx, "rgb8")
  return vp.expand_dims(vp.resize(rgb, 300, 300), 1)
end

function postprocess(outputs, ctx)
  local scores = vp.squeeze(outputs["detection_scores:0"], 1)   -- [100], best first
  local boxes = vp.squeeze(outputs["detection_boxes:0"], 1)     -- [100, 4]
  local classes = vp.squeeze(outputs["detection_classes:0"], 1) -- [100]
  local keep = vp.where_above(scores, SCORE_THRESHOLD)         -- [K, 1], 1-based
  local xyxy = vp.box_convert(vp.take(boxes, keep), "yxyx", "xyxy")
  xyxy = vp.scale_boxes(xyxy, ctx.width, ctx.height)
  return {
    detections = vp.detections(xyxy, vp.take(scores, keep), vp.take(classes, keep), LABELS),
  }
end
