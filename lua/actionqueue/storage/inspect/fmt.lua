--- Small formatting helpers shared by the inspection views and the CLI:
-- unsigned u64 text, ISO 8601 dates, short ids, byte previews, durations, tables.
-- @module actionqueue.storage.inspect.fmt
local fmt = {}

--- A u64 (stored as the same 64-bit pattern in a Lua integer) as unsigned decimal text.
function fmt.u64(n)
  if math.type(n) ~= "integer" then return tostring(n) end
  return string.format("%u", n)
end

--- Unix seconds as ISO 8601 UTC (`2023-11-14T22:13:20Z`), or nil when out of range.
function fmt.iso(n)
  if math.type(n) ~= "integer" or n < 0 or n > 253402300799 then return nil end
  return os.date("!%Y-%m-%dT%H:%M:%SZ", n)
end

--- A timestamp with its date: `1700000000 (2023-11-14T22:13:20Z)`.
function fmt.timestamp(n)
  local iso = fmt.iso(n)
  if iso then return fmt.u64(n) .. " (" .. iso .. ")" end
  return fmt.u64(n)
end

--- First 8 hex digits of an id (what the tables print).
function fmt.short_id(id)
  if type(id) ~= "string" then return tostring(id) end
  return id:sub(1, 8)
end

--- The shortest prefix of every id that tells it apart from every other id of `ids`
-- (git style: at least `min` characters, default 8; a prefix never ends on a hyphen).
-- @tparam table ids list of id strings (duplicates allowed)
-- @treturn table id -> prefix, and the widest prefix length
function fmt.unique_prefixes(ids, min)
  min = min or 8
  local sorted, seen = {}, {}
  for _, id in ipairs(ids) do
    if not seen[id] then seen[id] = true; sorted[#sorted + 1] = id end
  end
  table.sort(sorted)
  local function common(a, b)
    local n = 0
    if not b then return 0 end
    while n < #a and a:byte(n + 1) == b:byte(n + 1) do n = n + 1 end
    return n
  end
  local out, width = {}, 0
  for i, id in ipairs(sorted) do
    local len = math.max(min, math.max(common(id, sorted[i - 1]), common(id, sorted[i + 1])) + 1)
    if id:sub(len, len) == "-" then len = len + 1 end
    len = math.min(len, #id)
    out[id] = id:sub(1, len)
    if len > width then width = len end
  end
  return out, width
end

--- The name of `names` that `word` most likely means: the same name in another case, else
-- the closest by edit distance (at most a third of the word), else one it is a prefix of.
-- @treturn string|nil the name, and true when it differs from `word` only in case
function fmt.closest(word, names)
  if type(word) ~= "string" then return nil end
  local lw = word:lower()
  for _, n in ipairs(names) do if n:lower() == lw then return n, true end end
  local function distance(a, b)
    local prev = {}
    for j = 0, #b do prev[j] = j end
    for i = 1, #a do
      local cur = { [0] = i }
      for j = 1, #b do
        local cost = a:byte(i) == b:byte(j) and 0 or 1
        cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      end
      prev = cur
    end
    return prev[#b]
  end
  local best, best_d
  for _, n in ipairs(names) do
    local d = distance(lw, n:lower())
    if not best_d or d < best_d then best, best_d = n, d end
  end
  if best and best_d <= math.max(1, #word // 3) then return best end
  for _, n in ipairs(names) do
    if #lw >= 2 and n:lower():sub(1, #lw) == lw then return n end
  end
  return nil
end

--- Parses a duration such as `90`, `90s`, `5m`, `1h`, `2d`, `1h30m` into seconds.
-- @treturn integer|nil seconds, or nil and an error text
function fmt.parse_duration(text)
  if math.type(text) == "integer" then return text end
  if type(text) ~= "string" or text == "" then return nil, "duration expected (e.g. 90s, 5m, 1h, 2d)" end
  if text:match("^%d+$") then return math.tointeger(tonumber(text)) end
  local total, pos = 0, 1
  local scale = { s = 1, m = 60, h = 3600, d = 86400, w = 604800 }
  while pos <= #text do
    local n, unit, after = text:match("^(%d+)%s*([smhdw])()", pos)
    if not n then return nil, string.format("bad duration %q (e.g. 90s, 5m, 1h, 2d, 1h30m)", text) end
    total = total + math.tointeger(tonumber(n)) * scale[unit]
    pos = after
  end
  return total
end

--- A duration in seconds as `3d4h`, `5m12s`, ... (negative durations get a minus sign).
function fmt.duration(secs)
  if math.type(secs) ~= "integer" then return "?" end
  local sign = ""
  if secs < 0 then sign, secs = "-", -secs end
  if secs < 60 then return sign .. secs .. "s" end
  local units = { { 86400, "d" }, { 3600, "h" }, { 60, "m" }, { 1, "s" } }
  local parts = {}
  for _, u in ipairs(units) do
    if secs >= u[1] and #parts < 2 then
      parts[#parts + 1] = (secs // u[1]) .. u[2]
      secs = secs % u[1]
    elseif #parts > 0 then
      break
    end
  end
  return sign .. table.concat(parts)
end

--- Byte string preview: printable text (others as `.`) plus hex, both truncated.
-- @tparam string s the bytes
-- @tparam[opt=48] integer max bytes to show
function fmt.bytes(s, max)
  max = max or 48
  local n = #s
  if n == 0 then return "(0 bytes)" end
  local head = s:sub(1, max)
  local text = head:gsub("[^\32-\126]", ".")
  local hex = head:gsub(".", function(c) return string.format("%02x", c:byte()) end)
  local more = n > max and " ..." or ""
  return string.format("%q%s (%d bytes) hex %s%s", text, more, n, hex, more)
end

local CELL_ESCAPES = { ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r" }

--- A table cell on one line: control characters as `\n`, `\t`, `\r` or `\xHH`.
function fmt.cell(s)
  return (tostring(s):gsub("%c", function(c) return CELL_ESCAPES[c] or string.format("\\x%02x", c:byte()) end))
end

--- Pads or truncates `s` to width `w` (display by bytes; ids and names are ASCII).
function fmt.pad(s, w)
  s = fmt.cell(s)
  if #s > w then return s:sub(1, w - 1) .. "~" end
  return s .. string.rep(" ", w - #s)
end

--- Renders rows (lists of strings) under `headers` as aligned text columns.
function fmt.table(headers, rows)
  local widths = {}
  for i, h in ipairs(headers) do widths[i] = #h end
  for _, row in ipairs(rows) do
    for i, cell in ipairs(row) do
      local len = #fmt.cell(cell)
      -- the last column is never cut (nothing follows it)
      if len > (widths[i] or 0) then widths[i] = i == #headers and len or math.min(len, 40) end
    end
  end
  local out = {}
  local function line(cells)
    local parts = {}
    for i = 1, #headers do parts[i] = fmt.pad(cells[i] or "", widths[i]) end
    out[#out + 1] = (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  line(headers)
  for _, row in ipairs(rows) do line(row) end
  return table.concat(out, "\n")
end

return fmt
