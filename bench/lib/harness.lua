--- Shared helpers of the benchmarks (bench/*.lua): whole-process measurement with
-- /usr/bin/time and callgrind, and the parsing of their reports (spec/bench_harness_spec.lua
-- checks the parsing; timings are never tested).
--
-- Not a benchmark itself: `make bench` runs bench/*.lua only, this file is bench/lib/.
local H = {}

--- Quotes `s` for /bin/sh.
function H.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- True when `path` can be opened for reading.
function H.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

--- Runs `cmd` with its output captured: ok, output (stdout and stderr).
function H.sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = p:read("a")
  local ok = p:close()
  return ok == true, out
end

-- "h:mm:ss" or "m:ss.ss" (the "Elapsed (wall clock)" line of `time -v`) in seconds.
local function clock_seconds(text)
  local h, m, s = text:match("^(%d+):(%d+):([%d.]+)$")
  if not h then
    h, m, s = 0, text:match("^(%d+):([%d.]+)$")
  end
  if not m then return nil end
  return tonumber(h) * 3600 + tonumber(m) * 60 + tonumber(s)
end

--- Parses the report of `/usr/bin/time -v`.
-- @tparam string out the report (other lines may surround it)
-- @treturn table|nil `{wall = s, user = s, sys = s, cpu = user + sys, rss_mib = peak RSS in
--   MiB, status = exit status}`, or nil when the report is not there
function H.parse_time_v(out)
  local wall = out:match("Elapsed %(wall clock%) time %(h:mm:ss or m:ss%): ([%d:.]+)")
  local user = out:match("User time %(seconds%): ([%d.]+)")
  local sys = out:match("System time %(seconds%): ([%d.]+)")
  local rss = out:match("Maximum resident set size %(kbytes%): (%d+)")
  wall = wall and clock_seconds(wall)
  if not (wall and user and sys and rss) then return nil end
  local r = { wall = wall, user = tonumber(user), sys = tonumber(sys), rss_mib = tonumber(rss) / 1024,
              status = tonumber(out:match("Exit status: (%d+)")) or 0 }
  r.cpu = r.user + r.sys
  return r
end

--- Parses callgrind's report: the instruction count of the whole process.
-- @tparam string out valgrind's stderr (`==PID== Collected : N` or `I   refs: N,NNN`)
-- @treturn number|nil
function H.parse_callgrind(out)
  local n = out:match("Collected : (%d+)")
  if not n then
    n = out:match("I%s+refs:%s+([%d,]+)")
    n = n and n:gsub(",", "")
  end
  return n and tonumber(n)
end

--- Lines a benchmark child prints about itself: `AQS_BENCH key=value ...` (numbers).
-- @treturn table key -> number (from the last such line)
function H.parse_child(out)
  local r = {}
  for line in out:gmatch("[^\n]+") do
    local rest = line:match("^AQS_BENCH%s+(.*)$")
    if rest then
      r = {}
      for k, v in rest:gmatch("([%w_]+)=([-%d.e+]+)") do r[k] = tonumber(v) end
    end
  end
  return r
end

--- Measures `cmd` as whole processes: `runs` times under `/usr/bin/time -v`
-- (`prepare()` before each). The command's stdout is kept (for AQS_BENCH lines).
-- @treturn table|nil `{wall = best, cpu = CPU of that run, rss_mib = max, walls = {...},
--   children = {parse_child of each run}}`, or nil, message when a run failed
function H.measure(cmd, runs, prepare)
  local best
  local walls, children, peak = {}, {}, 0
  for _ = 1, runs or 3 do
    if prepare then prepare() end
    local ok, out = H.sh("/usr/bin/time -v " .. cmd)
    local t = H.parse_time_v(out)
    if not ok or not t or t.status ~= 0 then return nil, out end
    walls[#walls + 1] = t.wall
    children[#children + 1] = H.parse_child(out)
    if t.rss_mib > peak then peak = t.rss_mib end
    if not best or t.wall < best.wall then best = t end
  end
  return { wall = best.wall, cpu = best.cpu, rss_mib = peak, walls = walls, children = children }
end

--- The child figures (parse_child) of the run where `key` was least.
function H.best_child(children, key)
  local best
  for _, c in ipairs(children) do
    if c[key] and (not best or c[key] < best[key]) then best = c end
  end
  return best or {}
end

--- True when valgrind can be run.
function H.have_valgrind()
  return (H.sh("valgrind --version"))
end

--- The instruction count of one whole process `cmd` under callgrind (nil when it failed).
function H.instructions(cmd, prepare)
  if prepare then prepare() end
  local _, out = H.sh("valgrind --tool=callgrind --callgrind-out-file=/dev/null " .. cmd)
  return H.parse_callgrind(out)
end

--- `measured / reference` and whether it is within `limit` (nil when either is missing).
-- @treturn number|nil ratio
-- @treturn boolean|nil met
function H.ratio(measured, reference, limit)
  if not measured or not reference or reference == 0 then return nil end
  local r = measured / reference
  return r, limit == nil or r <= limit
end

--- "0.42x (<= 0.7 met)" / "1.30x (<= 1.0 NOT met)"; "-" when there is no ratio.
function H.ratio_text(measured, reference, limit)
  local r, met = H.ratio(measured, reference, limit)
  if not r then return "-" end
  if not limit then return ("%.2fx"):format(r) end
  return ("%.2fx (<= %s %s)"):format(r, H.num(limit), met and "met" or "NOT met")
end

--- A short number: 0.7, 1, 1.5.
function H.num(x)
  return (("%.2f"):format(x):gsub("0+$", ""):gsub("%.$", ""))
end

--- Instructions in millions: "247M" ("-" for nil).
function H.mega(n)
  return n and ("%.0fM"):format(n / 1e6) or "-"
end

--- Issue 15 item 6's input for snapshot.build: `n` tasks + `n` runs as friendly tables
-- (a payload, a Once or Repeat policy, constraints, metadata; one run per task).
function H.friendly_snapshot(n)
  local f = { timestamp = 1700000000, tasks = {}, runs = {} }
  for i = 1, n do
    f.tasks[i] = {
      payload = "payload of task " .. i,
      run_policy = i % 2 == 0 and "Once" or { Repeat = { count = 3, interval_secs = 60 } },
      constraints = { max_attempts = 3, timeout_secs = 30, concurrency_key = "k" .. i % 10 },
      metadata = { priority = i % 5, tags = { "bench" } },
    }
    f.runs[i] = { task = i, state = i % 3 == 0 and "Ready" or "Scheduled" }
  end
  return f
end

return H
