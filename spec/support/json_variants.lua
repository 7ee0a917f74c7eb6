--- Non-canonical spellings of a JSON document, for the transcoding specs and benchmarks:
-- the same document (or a slightly different one the reference still accepts) written
-- with keys shuffled at every depth, whitespace, escapes, other UUID spellings, optional
-- fields left out, unknown fields, unit variants as `{"Name":null}` and records as arrays.
--
-- The parser keeps numbers and strings as their raw text (a u64 above 2^53 stays exact),
-- objects as ordered lists of {key, value}.
local M = {}

local function perr(_, i, what) error(("json_variants: %s at byte %d"):format(what, i), 0) end

local function skip_ws(s, i)
  return (s:find("[^ \t\r\n]", i)) or #s + 1
end

local parse_value

local function parse_string(s, i)   -- i at the opening quote; returns raw text without quotes
  local j = i + 1
  while true do
    local c = s:sub(j, j)
    if c == "" then perr(s, j, "unterminated string") end
    if c == '"' then return { str = s:sub(i + 1, j - 1) }, j + 1 end
    if c == "\\" then j = j + 2 else j = j + 1 end
  end
end

parse_value = function(s, i)
  i = skip_ws(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    local obj = { obj = {} }
    i = skip_ws(s, i + 1)
    if s:sub(i, i) == "}" then return obj, i + 1 end
    while true do
      i = skip_ws(s, i)
      if s:sub(i, i) ~= '"' then perr(s, i, "key expected") end
      local k
      k, i = parse_string(s, i)
      i = skip_ws(s, i)
      if s:sub(i, i) ~= ":" then perr(s, i, "colon expected") end
      local v
      v, i = parse_value(s, i + 1)
      obj.obj[#obj.obj + 1] = { k.str, v }
      i = skip_ws(s, i)
      local d = s:sub(i, i)
      if d == "}" then return obj, i + 1 end
      if d ~= "," then perr(s, i, "comma expected") end
      i = i + 1
    end
  elseif c == "[" then
    local arr = { arr = {} }
    i = skip_ws(s, i + 1)
    if s:sub(i, i) == "]" then return arr, i + 1 end
    while true do
      local v
      v, i = parse_value(s, i)
      arr.arr[#arr.arr + 1] = v
      i = skip_ws(s, i)
      local d = s:sub(i, i)
      if d == "]" then return arr, i + 1 end
      if d ~= "," then perr(s, i, "comma expected") end
      i = i + 1
    end
  elseif c == '"' then
    return parse_string(s, i)
  else
    local tok = s:match("^[%w%.%+%-]+", i)
    if not tok then perr(s, i, "value expected") end
    return { raw = tok }, i + #tok
  end
end

--- Parses `s`; returns the tree or nil, message.
function M.parse(s)
  local ok, v, i = pcall(parse_value, s, 1)
  if not ok then return nil, v end
  if skip_ws(s, i) <= #s then return nil, "trailing text" end
  return v
end

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

-- Escapes some plain characters of raw string text as \uXXXX (or `/` as `\/`).
local function escape_some(raw, rnd)
  local out, j = {}, 1
  while j <= #raw do
    local c = raw:sub(j, j)
    if c == "\\" then
      local n = raw:sub(j + 1, j + 1) == "u" and 6 or 2
      out[#out + 1] = raw:sub(j, j + n - 1)
      j = j + n
    else
      if c:byte() < 0x80 and rnd(3) == 1 then
        out[#out + 1] = c == "/" and "\\/" or ("\\u%04x"):format(c:byte())
      else
        out[#out + 1] = c
      end
      j = j + 1
    end
  end
  return table.concat(out)
end

local function respell_uuid(u, rnd)
  local k = rnd(4)
  if k == 1 then return u:upper() end
  if k == 2 then return "{" .. u .. "}" end
  if k == 3 then return "urn:uuid:" .. u end
  return (u:gsub("%-", ""))
end

--- Serialises `v` non-canonically. `opts`: `seed` (integer), and booleans `shuffle`,
-- `pretty`, `escape`, `uuids`, `drop_null`, `unknown`, `unit_objects`, `arrays`
-- (all on when `opts.all`); `defaulted`: the set of keys `drop_null` may also leave out
-- whatever their value (fields with a default).
function M.write(v, opts)
  local seed = opts.seed or 1
  local function on(k) return opts.all or opts[k] end
  -- a small LCG: the same variants on every Lua and every run
  local function rnd(n)
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n + 1
  end
  local out = {}
  local function ws(depth)
    if not on("pretty") then return end
    local k = rnd(4)
    if k == 1 then out[#out + 1] = "\n" .. ("  "):rep(depth)
    elseif k == 2 then out[#out + 1] = " "
    elseif k == 3 then out[#out + 1] = "\r\n\t" end
  end
  local emit
  local function emit_obj(o, depth, key)
    local items = {}
    for _, kv in ipairs(o.obj) do
      local drop = on("drop_null") and (kv[2].raw == "null" or (opts.defaulted or {})[kv[1]]) and rnd(2) == 1
      if not drop then items[#items + 1] = kv end
    end
    if on("arrays") and #o.obj >= 2 and #items == #o.obj and key ~= "task_spec" and rnd(5) == 1 then
      -- a record as an array of its fields in order (schema order: the input is canonical)
      out[#out + 1] = "["
      for i, kv in ipairs(items) do
        if i > 1 then out[#out + 1] = "," end
        ws(depth + 1)
        emit(kv[2], depth + 1, kv[1])
      end
      ws(depth)
      out[#out + 1] = "]"
      return
    end
    if on("shuffle") then
      for i = #items, 2, -1 do
        local j = rnd(i)
        items[i], items[j] = items[j], items[i]
      end
    end
    if on("unknown") and #o.obj >= 2 and rnd(4) == 1 then
      table.insert(items, rnd(#items + 1), { "zz_unknown", { raw = '{"a":[1,-2.5e3,{"b":null}],"c":"\\u00e9"}' } })
    end
    out[#out + 1] = "{"
    for i, kv in ipairs(items) do
      if i > 1 then out[#out + 1] = "," end
      ws(depth + 1)
      local k = kv[1]
      out[#out + 1] = '"' .. (on("escape") and rnd(4) == 1 and escape_some(k, rnd) or k) .. '"'
      ws(depth + 1)
      out[#out + 1] = ":"
      ws(depth + 1)
      emit(kv[2], depth + 1, k)
    end
    ws(depth)
    out[#out + 1] = "}"
  end
  emit = function(x, depth, key)
    if x.obj then return emit_obj(x, depth, key) end
    if x.arr then
      out[#out + 1] = "["
      for i, e in ipairs(x.arr) do
        if i > 1 then out[#out + 1] = "," end
        ws(depth + 1)
        emit(e, depth + 1, key)
      end
      ws(depth)
      out[#out + 1] = "]"
      return
    end
    if x.str then
      local s = x.str
      if on("uuids") and s:match(UUID) and rnd(2) == 1 then s = respell_uuid(s, rnd) end
      if on("unit_objects") and (key == "state" or key == "to" or key == "from") and s:match("^%a+$")
          and rnd(2) == 1 then
        out[#out + 1] = '{"' .. s .. '":null}'
        return
      end
      if on("escape") and rnd(3) == 1 then s = escape_some(s, rnd) end
      out[#out + 1] = '"' .. s .. '"'
      return
    end
    out[#out + 1] = x.raw
  end
  ws(0)
  emit(v, 0, nil)
  ws(0)
  return table.concat(out)
end

return M
