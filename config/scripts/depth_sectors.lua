-- Nearest obstacle per image sector from a depth image (config/depth_sectors.lua).
-- Input: ctx.image, H x W x 1, float32 metres (32FC1) or uint16 millimetres (16UC1, mono16),
-- as the node passes it with image_format 'native'. Model: column minimum (models/depth_column_min.onnx).
local SECTORS = 8
local MILLIMETRES = { ["16UC1"] = true, ["mono16"] = true }

function preprocess(ctx)
  if ctx.encoding ~= "32FC1" and not MILLIMETRES[ctx.encoding] then
    error("depth_sectors needs 32FC1 or 16UC1 depth (image_format 'native'), got " .. ctx.encoding)
  end
  local metres = vp.astype(ctx.image, "float32")
  if MILLIMETRES[ctx.encoding] then metres = vp.scale(metres, 0.001) end
  return { depth = vp.expand_dims(vp.to_chw(metres), 1) }   -- [1, 1, H, W]
end

function postprocess(outputs, ctx)
  local columns = outputs.column_min                       -- [1, W], +inf where no return
  local width = columns:dim(2)
  local sectors, nearest, nearest_sector = {}, math.huge, nil
  for s = 1, SECTORS do
    local first = math.floor((s - 1) * width / SECTORS) + 1
    local last = math.floor(s * width / SECTORS)
    local best = math.huge
    for c = first, last do
      local d = columns:at(1, c)
      if d < best then best = d end
    end
    if best < nearest then nearest, nearest_sector = best, s end
    sectors[s] = best                                      -- math.huge (no return) -> null in extra_json
  end
  return { sectors = sectors, nearest = nearest, nearest_sector = nearest_sector or 0 }
end
