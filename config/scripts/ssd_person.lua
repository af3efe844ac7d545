-- Person detector: SSDLite MobileNet (models/ssdlite_person.onnx; NMS is inside the graph).
-- Input  image_tensor:0  uint8 RGB [1, 300, 300, 3].
-- Output detection_boxes:0 [1, 100, 4] (ymin, xmin, ymax, xmax, normalised),
--        detection_scores:0 [1, 100], detection_classes:0 [1, 100] (always 1 = person).
-- Result { detections = { {box = {x1, y1, x2, y2}, score, class_id = 1, label = "person"}, ... } }
-- in original-image pixels.

local SCORE_THRESHOLD = 0.5
local LABELS = { "person" }

function preprocess(ctx)
  -- the camera image as the model's input in one call: 300x300 (bilinear), RGB, [1, 300, 300, 3]
  return vp.model_input(ctx.image, 300, 300, { src = ctx.encoding, dst = "rgb8" })
end

function postprocess(outputs, ctx)
  -- scores > threshold, best first; yxyx normalised -> xyxy pixels (vp.select_detections: the
  -- where_above / take / box_convert / scale_boxes / detections chain in one call)
  return {
    detections = vp.select_detections(outputs["detection_boxes:0"], outputs["detection_scores:0"], SCORE_THRESHOLD, {
      class_ids = outputs["detection_classes:0"], labels = LABELS, format = "yxyx", scale = { ctx.width, ctx.height },
    }),
  }
end
