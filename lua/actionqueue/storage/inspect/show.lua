--- Schema-aware pretty printer: renders any part of a document as indented text,
-- walking its schema type (fields in schema order, nothing hand-listed).
--
-- u64 values print unsigned; u64 fields that hold times (`timestamp`, `expiry`,
-- `*_at`) are annotated with their ISO 8601 date; byte strings print as a text preview
-- plus hex; long lists are truncated with a count.
-- @module actionqueue.storage.inspect.show
local fmt = require "actionqueue.storage.inspect.fmt"
local path = require "actionqueue.storage.inspect.path"

local show = {}

--- Default number of list entries printed before truncating.
show.MAX_ITEMS = 20

--- True when a u64 field of this name holds Unix seconds (a naming rule of the schema).
function show.is_time_field(name)
  return name == "timestamp" or name == "expiry" or (type(name) == "string" and name:match("_at$") ~= nil)
end

local function scalar_text(v, T, name)
  local k = T.kind
  if k == "u64" then
    if show.is_time_field(name) then return fmt.timestamp(v) end
    return fmt.u64(v)
  elseif k == "bytes" then return fmt.bytes(v)
  elseif k == "string" then return string.format("%q", v):gsub("\\\n", "\\n")
  elseif k == "bool" or k == "id" or T.min then   -- T.min: a bounded integer kind (dsl)
    return tostring(v)
  end
  return nil
end

local function is_simple(T)
  while T.kind == "option" do T = T.of end
  return T.kind ~= "record" and T.kind ~= "list" and not (T.kind == "enum" and T.variants and false)
end

local render

local function render_list(v, T, label, depth, out, opts)
  local pad = string.rep("  ", depth)
  if #v == 0 then out[#out + 1] = pad .. label .. "[]" return end
  local el = T.of
  if is_simple(el) and el.kind ~= "enum" or (el.kind == "enum" and type(v[1]) == "string") then
    local items = {}
    for i = 1, #v do
      items[i] = type(v[i]) == "table" and "{...}" or (scalar_text(v[i], el, nil) or tostring(v[i]))
    end
    local inline = "[" .. table.concat(items, ", ") .. "]"
    if #inline + #pad + #label <= 100 then out[#out + 1] = pad .. label .. inline return end
  end
  out[#out + 1] = pad .. label .. #v .. (#v == 1 and " entry" or " entries")
  local max = opts.max or show.MAX_ITEMS
  for i = 1, math.min(#v, max) do
    render(v[i], el, nil, "[" .. i .. "] ", depth + 1, out, opts)
  end
  if #v > max then
    out[#out + 1] = pad .. "  ... " .. (#v - max) .. " more (of " .. #v .. ")"
  end
end

function render(v, T, name, label, depth, out, opts)
  local pad = string.rep("  ", depth)
  while T.kind == "option" do
    if v == nil then out[#out + 1] = pad .. label .. "null" return end
    T = T.of
  end
  local text = scalar_text(v, T, name)
  if text then out[#out + 1] = pad .. label .. text return end
  if T.kind == "list" then return render_list(v, T, label, depth, out, opts) end
  if T.kind == "enum" then
    if type(v) == "string" then out[#out + 1] = pad .. label .. v return end
    local vname, payload = next(v)
    local variant = T.by_name[vname]
    if not variant or not variant.type then out[#out + 1] = pad .. label .. tostring(vname) return end
    local inner = scalar_text(payload, variant.type, nil)
    if inner then out[#out + 1] = pad .. label .. vname .. "(" .. inner .. ")" return end
    out[#out + 1] = pad .. label .. vname
    for _, f in ipairs(variant.type.fields or {}) do
      render(payload[f.name], f.type, f.name, f.name .. ": ", depth + 1, out, opts)
    end
    return
  end
  if T.kind == "record" then
    out[#out + 1] = pad .. label .. T.name
    for _, f in ipairs(T.fields) do
      render(v[f.name], f.type, f.name, f.name .. ": ", depth + 1, out, opts)
    end
    return
  end
  out[#out + 1] = pad .. label .. tostring(v)
end

--- Renders `value` of schema type `T` as text lines.
-- @param value the part to print
-- @tparam[opt] table T its schema type (guessed from the keys of a table when absent)
-- @tparam[opt] table opts `{max = 20, title = "runs[3]"}`
-- @treturn string the text (no trailing newline)
function show.render(value, T, opts)
  opts = opts or {}
  T = T or path.guess(value)
  local out = {}
  if not T then
    if type(value) == "table" then
      out[1] = "(not a schema part) " .. tostring(value)
    else
      out[1] = tostring(value)
    end
    return out[1]
  end
  local label = opts.title and (opts.title .. ": ") or ""
  render(value, T, opts.name, label, 0, out, opts)
  return table.concat(out, "\n")
end

return show
