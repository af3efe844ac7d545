-- Serial, three models: text detection -> line angle classification -> text recognition.
return {
  mode = "serial",
  models = {
    { name = "text", path = "pypkg://rapidocr/models/PP-OCRv6_det_small.onnx", script = "scripts/ocr_det.lua" },
    { name = "angle", path = "pypkg://rapidocr/models/ch_ppocr_mobile_v2.0_cls_mobile.onnx", script = "scripts/ocr_cls.lua" },
    { name = "rec", path = "pypkg://rapidocr/models/PP-OCRv6_rec_small.onnx", script = "scripts/ocr_rec.lua" },
  },
}
