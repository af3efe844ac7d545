"""The Lua text every script runtime runs first (Lua 5.4), before any script.

It captures the standard functions the engine needs as locals (a script that redefines
``type`` or ``setmetatable`` changes nothing for the engine), removes every escape to
the host, installs the time-limit hook, and returns the engine's helpers:

- ``call(limit_s, fn, ...)``: calls ``fn`` under the time limit; returns ``true, ...``
  or ``false, message, kind`` with kind ``"error"``, ``"timeout"`` (message = the script
  line it was on) or ``"memory"``;
- ``call_on_frame(limit_s, fn, <frame fields>)``: ``ctx``, then ``call(limit_s, fn, ctx)``,
  with ``ctx = frame_view(...)`` built in the same call from Python;
- ``call_with_outputs(limit_s, fn, names, ctx, state, ...)``: ``call(limit_s, fn, outputs,
  ctx, state)``, the outputs table built here from the tensors after ``state``;
- ``readonly(t, what)``: a read-only view of ``t`` (also against ``rawset``);
- ``collect(full)``: one step, or a full cycle, of the garbage collector;
- ``wrap_host(fn)``: a Lua function calling a Python host function that returns
  ``ok, ...``; errors are raised at the script's calling line;
- ``compile(source, name)``: ``load`` of source text only (binary chunks refused);
- ``rawget``: reads without running the script's metamethods;
- ``mark_step(fn, spec)`` / ``step_of(fn)``: the built-in steps ``vp.steps`` makes (``engine/steps.py``).

The time limit: a count hook runs every ``HOOK_COUNT`` VM instructions, in the main
thread and in every coroutine. It reads the process CPU clock (cheap) and asks Python
for the wall time left only every ``CHECK_EVERY_S`` of CPU time. Once the time is up,
every later hook call raises again, and ``pcall``/``xpcall``/``coroutine.resume`` rethrow,
so no script can catch its way out. Hooks do not run inside one long C call: the
pattern functions refuse subjects too long for their pattern (worst-case cost), and
memory-bound calls (``string.rep``, ``table.concat``) are bounded by the memory limit.
"""

from __future__ import annotations

PRELUDE = r"""
local require_source, print_impl, remaining, sample_handle, pattern_limit = ...

local type, error, tostring, select, next = type, error, tostring, select, next
local raw_setmetatable, getmetatable, rawget, raw_rawset = setmetatable, getmetatable, rawget, rawset
local raw_pcall, raw_xpcall, raw_collectgarbage, raw_load = pcall, xpcall, collectgarbage, load
local concat, min, huge = table.concat, math.min, math.huge
local clock, time = os.clock, os.time
local sethook, getinfo, traceback = debug.sethook, debug.getinfo, debug.traceback
local cocreate, coresume, coclose, costatus = coroutine.create, coroutine.resume, coroutine.close,
  coroutine.status
local sfind, smatch, sgmatch, sgsub, sbyte = string.find, string.match, string.gmatch, string.gsub,
  string.byte

local HOOK_COUNT = 1000
local CHECK_EVERY_S = 0.005

-- How a value is named in messages, without running any of the script's metamethods.
local function describe(value)
  local kind = type(value)
  if kind == "string" then return value end
  if kind == "number" or kind == "boolean" or kind == "nil" then return tostring(value) end
  return "a " .. kind
end

-- Time limit ---------------------------------------------------------------------------
local armed, expired, next_check = false, nil, huge

local function hook()
  if not armed then return end
  if expired then error(expired, 0) end
  local now = clock()
  if now < next_check then return end
  local left = remaining()
  if left > 0 then
    next_check = now + min(left, CHECK_EVERY_S)
    return
  end
  local info = getinfo(2, "Sl")
  if info and info.currentline and info.currentline > 0 then
    expired = info.short_src .. ":" .. info.currentline
  else
    expired = "?"
  end
  error(expired, 0)
end
sethook(hook, "", HOOK_COUNT)

local function recheck(...)
  if expired then error(expired, 0) end
  return ...
end

local function hooked(co)
  sethook(co, hook, "", HOOK_COUNT)
  return co
end

-- Escapes to the host ------------------------------------------------------------------
python = nil
os = { clock = clock, time = time }
io = nil
debug = nil
package = nil
load = nil
loadfile = nil
dofile = nil
string.dump = nil

-- Script-reachable functions that could defeat the limits ------------------------------
pcall = function(...) return recheck(raw_pcall(...)) end
-- A message handler runs before the error unwinds: for the hook's own error that is with
-- hooks still off, so the script's handler is skipped once the time is up.
xpcall = function(f, handler, ...)
  local function guarded_handler(e)
    if expired then return e end
    return handler(e)
  end
  return recheck(raw_xpcall(f, guarded_handler, ...))
end

coroutine.create = function(f) return hooked(cocreate(f)) end
coroutine.resume = function(...) return recheck(coresume(...)) end
coroutine.close = function(...) return recheck(coclose(...)) end
local function wrapped_result(co, ok, ...)
  if ok then return ... end
  if costatus(co) == "dead" then coclose(co) end
  error((...), 0)
end
coroutine.wrap = function(f)
  local co = hooked(cocreate(f))
  return function(...) return wrapped_result(co, recheck(coresume(co, ...))) end
end

setmetatable = function(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc metamethods are not allowed in scripts", 2)
  end
  local ok, result = raw_pcall(raw_setmetatable, t, mt)
  if not ok then error(result, 2) end
  return result
end

local GC_OPTIONS = { collect = true, count = true, step = true, isrunning = true }
collectgarbage = function(option, ...)
  if option ~= nil and not GC_OPTIONS[option] then
    error("collectgarbage: option '" .. tostring(option) .. "' is not allowed in scripts", 2)
  end
  return raw_collectgarbage(option, ...)
end

-- Pattern functions: Lua's matcher backtracks inside one C call, where no hook runs.
local repetitions_cache, cache_size = {}, 0
local function repetitions(p)
  local cached = repetitions_cache[p]
  if cached then return cached end
  local count, i, n = 0, 1, #p
  while i <= n do
    local c = sbyte(p, i)
    if c == 37 then -- '%': an escape, %b (a balance scan) or %f
      if sbyte(p, i + 1) == 98 then count = count + 1; i = i + 4 else i = i + 2 end
    elseif c == 91 then -- '[': a set, whose characters are literal
      i = i + 1
      if sbyte(p, i) == 94 then i = i + 1 end
      if sbyte(p, i) == 93 then i = i + 1 end
      while i <= n and sbyte(p, i) ~= 93 do
        if sbyte(p, i) == 37 then i = i + 1 end
        i = i + 1
      end
      i = i + 1
    else
      if c == 42 or c == 43 or c == 45 or c == 63 then count = count + 1 end -- * + - ?
      i = i + 1
    end
  end
  if cache_size > 512 then repetitions_cache, cache_size = {}, 0 end
  repetitions_cache[p], cache_size = count, cache_size + 1
  return count
end

local function guard(name, s, p, plain, can_anchor)
  if plain or type(p) ~= "string" then return end
  local count = repetitions(p)
  if count == 0 then return end
  local n = type(s) == "string" and #s or 64
  local exponent = (can_anchor and sbyte(p, 1) == 94) and count or count + 1
  if (n + 1) ^ exponent > pattern_limit then
    error(name .. ": pattern '" .. p .. "' has " .. count .. " repetition item(s): "
      .. "too slow in the worst case on a subject of " .. n .. " bytes (use plain find, "
      .. "or split the subject)", 3)
  end
end
string.find = function(s, p, init, plain)
  guard("string.find", s, p, plain, true)
  return sfind(s, p, init, plain)
end
string.match = function(s, p, init)
  guard("string.match", s, p, false, true)
  return smatch(s, p, init)
end
string.gmatch = function(s, p, init)
  guard("string.gmatch", s, p, false, false)
  return sgmatch(s, p, init)
end
string.gsub = function(s, p, repl, n)
  guard("string.gsub", s, p, false, true)
  return sgsub(s, p, repl, n)
end

-- Protected metatables: strings and the host's handles.
local string_meta = getmetatable("")
string_meta.__metatable = false
local handle_meta = getmetatable(sample_handle)
if type(handle_meta) == "table" then handle_meta.__metatable = false end

-- The global table: lupa looks up the global "debug" on every call from Python, outside
-- any time limit, so that name stays unset and the table's metatable stays the engine's.
local globals = _G
local RESERVED = { debug = true }
local function reserved(key)
  error("the global name " .. describe(key) .. " is reserved by the engine", 3)
end
raw_setmetatable(globals, {
  __newindex = function(t, key, value)
    if RESERVED[key] then reserved(key) end
    raw_rawset(t, key, value)
  end,
  __metatable = false,
})

-- Read-only views -----------------------------------------------------------------------
local readonly_names = raw_setmetatable({}, { __mode = "k" })

rawset = function(t, key, value)
  local what = readonly_names[t]
  if what then error(what .. " is read-only (tried to set " .. describe(key) .. ")", 2) end
  if t == globals and RESERVED[key] then reserved(key) end
  return raw_rawset(t, key, value)
end

local function readonly(t, what)
  local view = raw_setmetatable({}, {
    __index = t,
    __newindex = function(_, key)
      error(what .. " is read-only (tried to set " .. describe(key) .. ")", 2)
    end,
    __metatable = false,
  })
  readonly_names[view] = what
  return view
end

-- The read-only ``ctx`` a model's preprocess/postprocess gets (``Model.lua_context``), built here
-- in one call rather than field by field from Python.
-- ``metadata`` is the spec's {source, original_size}, made here from the fields it repeats.
local function frame_view(frame_id, timestamp, encoding, source, width, height, image, results)
  return readonly({
    frame_id = frame_id, timestamp = timestamp, encoding = encoding, source = source,
    original_size = { width, height }, width = width, height = height,
    results = results or {}, metadata = { source = source, original_size = { width, height } }, image = image,
  }, "ctx")
end

-- require and print ---------------------------------------------------------------------
local modules, loading = {}, {}
require = function(name)
  local module = modules[name]
  if module ~= nil then return module end
  local ok, source, chunk_name = require_source(name)
  if not ok then error(source, 2) end
  if loading[name] then error("require: circular require of '" .. name .. "'", 2) end
  local chunk, message = raw_load(source, "@" .. chunk_name, "t")
  if not chunk then error("require '" .. name .. "': " .. message, 2) end
  loading[name] = true
  local done, value = raw_pcall(chunk, name)
  loading[name] = nil
  recheck()
  if not done then
    if type(value) ~= "string" then value = describe(value) end
    error("require '" .. name .. "': " .. value, 2)
  end
  if value == nil then value = true end
  modules[name] = value
  return value
end

print = function(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  print_impl(concat(parts, "\t"))
end

-- The engine's helpers -----------------------------------------------------------------
local function handler(e)
  if expired then return expired end
  local kind = type(e)
  if kind == "string" then return traceback(e, 2) end
  if kind == "number" or kind == "userdata" then return traceback(tostring(e), 2) end
  return traceback("(error object is " .. describe(e) .. " value)", 2)
end

local function finish(ok, ...)
  armed = false
  if ok then return true, ... end
  if expired then return false, expired, "timeout" end
  local message = ...
  if message == "not enough memory" then return false, message, "memory" end
  return false, message, "error"
end

local function call(limit_s, fn, ...)
  expired = nil
  next_check = clock() + min(limit_s, CHECK_EVERY_S)
  armed = true
  return finish(raw_xpcall(fn, handler, ...))
end

-- ``call`` with the frame's ``ctx`` built in the same crossing from Python (one Lua call where
-- frame_view + call took two, and an empty results table is made here): returns ctx, then what
-- ``call`` returns.
local function call_on_frame(limit_s, fn, frame_id, timestamp, encoding, source, width, height, image, results)
  local ctx = frame_view(frame_id, timestamp, encoding, source, width, height, image, results)
  return ctx, call(limit_s, fn, ctx)
end
-- ``call(limit_s, fn, outputs, ctx, state)`` with the outputs table (by position and by
-- ``names[i]``) built here from the tensors passed after ``state``.
local function call_with_outputs(limit_s, fn, names, ctx, state, ...)
  local outputs = { ... }
  for i = 1, #outputs do
    local name = names[i]
    if name ~= nil then outputs[name] = outputs[i] end
  end
  return call(limit_s, fn, outputs, ctx, state)
end
local function collect(full)
  if full then raw_collectgarbage("collect") else raw_collectgarbage("step") end
end

local function check(ok, ...)
  if not ok then error((...), 2) end
  return ...
end
local function wrap_host(fn)
  -- Called in tail position, so level 2 is the script line that called the host function.
  return function(...) return check(fn(...)) end
end

local function compile(source, name)
  return raw_load(source, "@" .. name, "t")
end

-- Lazy list views (detections kept typed between models) --------------------------------
-- ``list_view(source, n, row)``: a read-only list of ``n`` items whose item i is ``row(source, i)``,
-- built on first access and kept; ``view_source(t)``: the source of a view, nil for anything else.
local views = raw_setmetatable({}, { __mode = "k" })
local tointeger = math.tointeger

local function list_view(source, n, row)
  local rows = {}
  local view = {}
  raw_setmetatable(view, {
    __index = function(_, key)
      local i = tointeger(key)
      local item = i and rows[i]
      if item == nil and i and i >= 1 and i <= n then
        item = row(source, i)
        rows[i] = item
      end
      return item
    end,
    __len = function() return n end,
    __pairs = function(t)
      return function(_, i)
        i = i + 1
        if i <= n then return i, t[i] end
      end, t, 0
    end,
    __newindex = function(_, key)
      error("detection list is read-only (tried to set " .. describe(key) .. ")", 2)
    end,
    __metatable = false,
  })
  readonly_names[view] = "detection list"
  views[view] = source
  return view
end

local function view_source(t)
  return views[t]
end

-- next(): a view's own table is empty (its rows live behind __index), so next walks the rows
-- 1..n as pairs does; everything else goes to Lua's next.
local raw_next = next
local raw_type = type
_G.next = function(t, key)
  if views[t] == nil then
    if raw_type(t) ~= "table" then
      error("bad argument #1 to 'next' (table expected, got " .. raw_type(t) .. ")", 2)
    end
    return raw_next(t, key)
  end
  local i = 1
  if key ~= nil then
    i = tointeger(key)
    if i == nil or i < 1 or i > #t then error("invalid key to 'next' of a detection list", 2) end
    i = i + 1
  end
  if i <= #t then return i, t[i] end
  return nil
end

-- Built-in steps (``vp.steps``): ``mark_step(fn, spec)`` records that Lua function ``fn`` is the
-- built-in step ``spec`` ({kind = ..., <arguments by name>}), with the script line that made it
-- (two levels up: the script's call of ``vp.steps.<kind>``); ``step_of(fn)``: that spec, nil for
-- any other value.
local steps = raw_setmetatable({}, { __mode = "k" })

local function mark_step(fn, spec)
  local info = getinfo(3, "Sl")
  if info and info.currentline and info.currentline > 0 then
    spec.where = info.short_src .. ":" .. info.currentline
  end
  steps[fn] = spec
  return fn
end

local function step_of(fn)
  return steps[fn]
end

return { call = call, call_on_frame = call_on_frame, call_with_outputs = call_with_outputs,
         readonly = readonly, frame_view = frame_view, collect = collect, wrap_host = wrap_host,
         compile = compile, rawget = rawget, list_view = list_view, view_source = view_source,
         mark_step = mark_step, step_of = step_of }
"""
