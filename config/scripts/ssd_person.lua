-- Person detector: SSDLite MobileNet (models/ssdlite_person.onnx; NMS is inside the graph).
-- Input  image_tensor:0  uint8 RGB [1, 300, 300, 3].
-- Output detection_boxes:0 [1, 100, 4] (ymin, xmin, ymax, xmax, normalised),
--        detection_scores:0 [1, 100], detection_classes:0 [1, 100] (always 1 = person).
-- Result { detections = { {box = {x1, y1, x2, y2}, score, class_id = 1, label = "person"}, ... } }
-- in original-image pixels.
--
-- Both functions are built-in steps (docs/lua_api.md, "Built-in steps"): the engine runs them itself,
-- without a call into Lua per frame. Each is the Lua function written out in its comment.

local SCORE_THRESHOLD = 0.5
local LABELS = { "person" }

-- function preprocess(ctx)
--   return vp.model_input(ctx.image, 300, 300, { src = ctx.encoding, dst = "rgb8" })
-- end
-- the camera image as the model's input: 300x300 (bilinear), RGB, [1, 300, 300, 3]
preprocess = vp.steps.model_input(300, 300, { dst = "rgb8" })

-- function postprocess(outputs, ctx)
--   return { detections = vp.select_detections(outputs["detection_boxes:0"], outputs["detection_scores:0"],
--     SCORE_THRESHOLD, { class_ids = outputs["detection_classes:0"], labels = LABELS, format = "yxyx",
--                        scale = { ctx.width, ctx.height } }) }
-- end
-- scores > threshold, best first; yxyx normalised -> xyxy pixels of the frame
postprocess = vp.steps.select_detections("detection_boxes:0", "detection_scores:0", SCORE_THRESHOLD, {
  class_ids = "detection_classes:0", labels = LABELS, format = "yxyx", scale = "image",
})
