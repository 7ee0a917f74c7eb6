--- Validation of seconds-first cron expressions (the reference's workflow-build
-- `CronPolicy` check, wal-format.md §8.4): 6 fields (sec min hour dom month dow) or 7
-- with a trailing year; classic 5-field expressions are rejected. Also the shorthands
-- `@yearly @annually @monthly @weekly @daily @midnight @hourly`.
-- @module actionqueue.storage.schema.cron
local cron = {}

local MONTHS = { jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6, jul = 7, aug = 8,
                 sep = 9, oct = 10, nov = 11, dec = 12 }
local DAYS = { sun = 1, mon = 2, tue = 3, wed = 4, thu = 5, fri = 6, sat = 7 }

local FIELDS = {
  { "seconds", 0, 59 }, { "minutes", 0, 59 }, { "hours", 0, 23 },
  { "days of month", 1, 31 }, { "months", 1, 12, MONTHS }, { "days of week", 1, 7, DAYS },
  { "years", 1970, 2100 },
}

local SHORTHANDS = { ["@yearly"] = true, ["@annually"] = true, ["@monthly"] = true,
  ["@weekly"] = true, ["@daily"] = true, ["@midnight"] = true, ["@hourly"] = true }

local function point(text, f)
  local n = text:match("^%d+$") and tonumber(text)
  if not n and f[4] then
    n = f[4][text:lower()]
  end
  if not n then return nil, "invalid value `" .. text .. "` in " .. f[1] end
  if n < f[2] or n > f[3] then
    return nil, string.format("%s value %d out of range %d-%d", f[1], n, f[2], f[3])
  end
  return n
end

local function specifier(text, f)
  local base, step = text:match("^([^/]+)/(%d+)$")
  if text:find("/", 1, true) and not base then return nil, "invalid step in " .. f[1] end
  if step and tonumber(step) == 0 then return nil, "step must be positive in " .. f[1] end
  base = base or text
  if base == "*" or base == "?" then return true end
  local a, b = base:match("^([^-]+)%-([^-]+)$")
  if a then
    local x, err = point(a, f)
    if not x then return nil, err end
    local y
    y, err = point(b, f)
    if not y then return nil, err end
    if x > y then return nil, "invalid range " .. base .. " in " .. f[1] end
    return true
  end
  local _, err = point(base, f)
  if err then return nil, err end
  return true
end

--- Checks an expression.
-- @treturn nil|string nil when valid, else the reason
function cron.check(expression)
  if type(expression) ~= "string" then return "cron expression must be a string" end
  local trimmed = expression:match("^%s*(.-)%s*$")
  if SHORTHANDS[trimmed:lower()] then return nil end
  local fields = {}
  for word in trimmed:gmatch("%S+") do fields[#fields + 1] = word end
  if #fields ~= 6 and #fields ~= 7 then
    return string.format("invalid cron expression `%s`: expected 6 or 7 fields, got %d", expression, #fields)
  end
  for i, text in ipairs(fields) do
    for part in (text .. ","):gmatch("([^,]*),") do
      if part == "" then return "invalid cron expression: empty list item in " .. FIELDS[i][1] end
      local ok, err = specifier(part, FIELDS[i])
      if not ok then return "invalid cron expression: " .. err end
    end
  end
  return nil
end

return cron
