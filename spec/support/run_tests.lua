-- The `make test` driver: luacheck, then the busted suite, then one closing line
-- "N passed, N failed" that sums every check, so CI can read the result.
-- Exits non-zero when anything failed.
local function run(cmd)
  local out = {}
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  for line in p:lines() do
    print(line)
    out[#out + 1] = line
  end
  local ok, _, code = p:close()
  return ok, code, out
end

local passed, failed = 0, 0

-- luacheck counts as one check: a lint failure fails the run.
local lint_ok = run("luacheck -q lua spec scripts/aqstore bench")
if lint_ok then passed = passed + 1 else failed = failed + 1 end

local extra = os.getenv("BUSTED_ARGS") or ""
local _, _, out = run("busted --lua=lua5.4 " .. extra)
local seen = false
for i = #out, 1, -1 do
  -- busted's summary: "12 successes / 0 failures / 1 error / 0 pending : 0.5 seconds"
  local s, f, e = out[i]:gsub("\27%[[%d;]*m", ""):match("(%d+) successe?s? / (%d+) failures? / (%d+) errors?")
  if s then
    passed = passed + tonumber(s)
    failed = failed + tonumber(f) + tonumber(e)
    seen = true
    break
  end
end
if not seen then
  print("run_tests: busted printed no summary line")
  failed = failed + 1
end

print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
