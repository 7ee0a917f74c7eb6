-- Test data for the inspection specs: the bundled example queue, built into a complete
-- snapshot table (defaults filled) by snapshot.build, plus helpers to derive variants.
local fixtures = require "support.fixtures"

local data = {}

data.example_path = fixtures.repo .. "/examples/queue.lua"

--- A fresh raw table from examples/queue.lua (not built).
function data.source()
  return dofile(data.example_path)
end

--- A fresh, complete snapshot table (built, validated).
function data.snapshot()
  local build = require "actionqueue.storage.snapshot.build"
  return assert(build.build(data.source()))
end

--- Deep copy of plain data (drops metatables).
function data.copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = data.copy(x) end
  return t
end

return data
