--- Plain-table helpers shared by the layers above (no dependencies, lowest layer).
-- @module actionqueue.storage.tablex
local M = {}

--- A shallow copy of a table (raw fields, no metatable).
-- @tparam table t
-- @treturn table
function M.copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

--- A new list holding a shallow copy of each element of `list` (nil reads as empty).
-- @tparam[opt] table list
-- @treturn table
function M.copy_list(list)
  local c = {}
  if list then
    local copy = M.copy
    for i = 1, #list do c[i] = copy(list[i]) end
  end
  return c
end

return M
