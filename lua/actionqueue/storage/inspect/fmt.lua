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

--- Pads or truncates `s` to width `w` (display by bytes; ids and names are ASCII).
function fmt.pad(s, w)
  s = tostring(s)
  if #s > w then return s:sub(1, w - 1) .. "~" end
  return s .. string.rep(" ", w - #s)
end

--- Renders rows (lists of strings) under `headers` as aligned text columns.
function fmt.table(headers, rows)
  local widths = {}
  for i, h in ipairs(headers) do widths[i] = #h end
  for _, row in ipairs(rows) do
    for i, cell in ipairs(row) do
      local len = #tostring(cell)
      if len > (widths[i] or 0) then widths[i] = math.min(len, 40) end
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
