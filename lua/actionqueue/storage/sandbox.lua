--- Runs untrusted Lua chunks that describe data: batch job files and `.lua` build sources.
--
-- Such a file is data, so it must not reach anything of the process that loads it:
--
-- * a fresh environment per run whose library tables (`string`, `table`, `math`, `utf8`,
--   `os`) are copies, so patching `string.format` in a job file changes nothing outside;
-- * safe functions only: the copies above (`os` has `time`, `date` and `clock` only;
--   `math.randomseed` and `string.dump` are left out) and `assert`, `error`, `ipairs`,
--   `next`, `pairs`, `rawequal`, `rawget`, `rawlen`, `rawset`, `select`, `tonumber`,
--   `tostring`, `type`. No `load`, `require`, `dofile`, `io`, `os.execute`, `print`,
--   `pcall`, `setmetatable`/`getmetatable`, `collectgarbage`, `coroutine`, `debug`;
-- * method calls on strings (`("x"):rep(3)`) go through the string metatable, whose
--   `__index` is the process's real `string` table. While the chunk runs, `__index` is
--   a private table of the same safe functions that the chunk cannot reach (it has no
--   `getmetatable`), and it is restored when the chunk ends, on every path;
-- * a CPU budget: the chunk runs in its own coroutine with a count hook (the caller's
--   own hooks are untouched) that stops it after `opts.instructions` VM instructions;
--   library calls that loop in C without the hook seeing it (string patterns with
--   backtracking, `table.move`, empty `string.rep`) are bounded up front;
-- * a memory budget: the allocator is wrapped for the duration of the run
--   (`core.mem_budget`), so no single instruction or library call can allocate past
--   `opts.memory` net bytes;
-- * binary chunks are refused (`load` mode "t").
--
-- Exceeding a budget is an error naming the file:
-- `jobs.lua: CPU budget exceeded (more than 200000000 Lua instructions)`.
-- @module actionqueue.storage.sandbox
local core = require "actionqueue.storage.core"
local errors = require "actionqueue.storage.errors"

local sandbox = {}

--- Default budgets: generous for data files (building 100,000 tasks in a loop takes a
-- few million instructions and well under 256 MiB), small enough to stop a runaway.
sandbox.DEFAULT_INSTRUCTIONS = 200000000
sandbox.DEFAULT_MEMORY = 256 * 1024 * 1024
--- Work done in C between two hook calls is not counted as instructions: a loop of
-- `s .. "y"` on a 100 MB string, of big `string.rep`s or of costly pattern calls runs a
-- few instructions per iteration and for hours. Two more budgets bound it: CPU seconds
-- (checked by the hook and after every pattern call) and the gross bytes allocated
-- (each copy allocates its result, freed at once, so the net budget never trips).
sandbox.DEFAULT_SECONDS = 30
sandbox.DEFAULT_ALLOCATED = 8 * sandbox.DEFAULT_MEMORY

-- The hook runs every STEP instructions; the budget is checked at that granularity.
local STEP = 10000

-- The real functions, captured when this module loads: the guards below and the runner
-- never call through a table the chunk can reach or patch.
local sbyte, ssub, sfind, smatch, sgmatch, sgsub, srep, sformat =
  string.byte, string.sub, string.find, string.match, string.gmatch, string.gsub, string.rep, string.format
local tmove = table.move
local pairs_, type_, error_, select_, tointeger = pairs, type, error, select, math.tointeger
local cocreate, coresume, costatus = coroutine.create, coroutine.resume, coroutine.status
local sethook = debug.sethook
local clock = os.clock
local getmetatable_ = getmetatable

-- Pattern matching is C code the count hook cannot interrupt, and Lua patterns
-- backtrack: `s:find(("(.-)"):rep(8) .. "x")` on a few kilobytes would run for ever. A
-- pattern's worst case is about (n+1)^(q+1) steps for a subject of n bytes and q
-- backtracking items (`*`, `+`, `-`, `?`, `%b`); calls whose bound is above MAX_MATCH_WORK
-- are refused before they start.
local MAX_MATCH_WORK = 1e10

local PCT, LBRACKET, RBRACKET, CARET = 37, 91, 93, 94
local QUANT = { [42] = true, [43] = true, [45] = true, [63] = true } -- * + - ?

-- Index of the `]` closing the set that starts at `i` (the `[`); #p when unterminated
-- (the real matcher then reports the malformed pattern).
local function set_end(p, i)
  local n = #p
  local k = i + 1
  if sbyte(p, k) == CARET then k = k + 1 end
  if sbyte(p, k) == RBRACKET then k = k + 1 end -- a leading `]` is literal
  while k <= n do
    local c = sbyte(p, k)
    if c == PCT then k = k + 2
    elseif c == RBRACKET then return k
    else k = k + 1 end
  end
  return n
end

-- Number of backtracking items of pattern `p` and whether it is anchored.
local function pattern_shape(p)
  local q, i, n = 0, 1, #p
  local anchored = sbyte(p, 1) == CARET
  if anchored then i = 2 end
  while i <= n do
    local c = sbyte(p, i)
    local j -- last byte of a single-character class
    if c == PCT then
      local d = sbyte(p, i + 1)
      if d == 98 then -- %bxy
        q, i = q + 1, i + 4
      elseif d == 102 then -- %f[set]
        i = set_end(p, i + 2) + 1
      else
        j = i + 1
      end
    elseif c == LBRACKET then
      j = set_end(p, i)
    elseif c == 40 or c == 41 then -- ( )
      i = i + 1
    else
      j = i
    end
    if j then
      if QUANT[sbyte(p, j + 1)] then q, i = q + 1, j + 2 else i = j + 1 end
    end
  end
  return q, anchored
end

local function check_pattern(fname, s, p, plain)
  if plain or type_(s) ~= "string" and type_(s) ~= "number" then return end
  if type_(p) ~= "string" then return end
  local q, anchored = pattern_shape(p)
  local n = #tostring(s) + 1
  local work = n ^ (anchored and q or q + 1)
  if work > MAX_MATCH_WORK then
    error_(sformat("string.%s: pattern %q is too costly for a subject of %d bytes (%d backtracking items)",
      fname, #p > 40 and ssub(p, 1, 37) .. "..." or p, n - 1, q), 3)
  end
end

-- The guarded string library (fresh per run). `after_match` (optional) runs after every
-- pattern call: the run's CPU-time check.
local function string_lib(memory, after_match)
  after_match = after_match or function(...) return ... end
  local s = {}
  for k, v in pairs_(string) do s[k] = v end
  s.dump = nil
  s.find = function(str, p, init, plain)
    check_pattern("find", str, p, plain)
    return after_match(sfind(str, p, init, plain))
  end
  s.match = function(str, p, init)
    check_pattern("match", str, p)
    return after_match(smatch(str, p, init))
  end
  s.gmatch = function(str, p, init)
    check_pattern("gmatch", str, p)
    local step = sgmatch(str, p, init)
    return function() return after_match(step()) end
  end
  s.gsub = function(str, p, repl, n)
    check_pattern("gsub", str, p)
    return after_match(sgsub(str, p, repl, n))
  end
  s.rep = function(str, n, sep)
    -- An empty result of a huge count loops in C for ever without allocating; any other
    -- result is bounded by the memory budget.
    local k = tointeger(n)
    if type_(str) == "string" and k and (sep == nil or type_(sep) == "string") then
      local unit = #str + (sep and #sep or 0)
      if unit == 0 then return "" end
      if k > 0 and unit * (k + 0.0) > memory then
        error_("string.rep: resulting string too large for the memory budget", 2)
      end
    end
    return (srep(str, n, sep))
  end
  return s
end

-- Upper bound of elements `table.move` may copy in one call (it loops in C).
local MAX_MOVE = 10000000

local function table_lib()
  local t = {}
  for k, v in pairs_(table) do t[k] = v end
  t.move = function(a1, f, e, tpos, a2)
    local fi, ei = tointeger(f), tointeger(e)
    if fi and ei and ei >= fi and (ei + 0.0) - fi >= MAX_MOVE then
      error_("table.move: too many elements (at most " .. MAX_MOVE .. " per call)", 2)
    end
    return tmove(a1, f, e, tpos, a2)
  end
  return t
end

local function copy(src, leave_out)
  local c = {}
  for k, v in pairs_(src) do
    if not (leave_out and leave_out[k]) then c[k] = v end
  end
  return c
end

--- A fresh environment for one chunk.
-- @tparam[opt] integer memory the memory budget (bounds `string.rep` up front)
-- @treturn table env (its library tables are copies: the caller may hand it out)
-- @tparam[opt] function after_match called with the results of every pattern call (returns them)
function sandbox.environment(memory, after_match)
  memory = memory or sandbox.DEFAULT_MEMORY
  local env = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    rawequal = rawequal, rawget = rawget, rawlen = rawlen, rawset = rawset, select = select_,
    tonumber = tonumber, tostring = tostring, type = type, _VERSION = _VERSION,
    string = string_lib(memory, after_match),
    table = table_lib(),
    math = copy(math, { randomseed = true }),
    utf8 = copy(utf8),
    os = { time = os.time, date = os.date, clock = os.clock },
  }
  return env
end

local function fail(kind, name, detail, fields)
  local f = { file = name, detail = detail }
  for k, v in pairs_(fields or {}) do f[k] = v end
  return nil, errors.new(kind, f, name .. ": " .. detail)
end

local CPU = setmetatable({}, { __tostring = function() return "CPU budget exceeded" end })
local CPU_TIME = setmetatable({}, { __tostring = function() return "CPU time budget exceeded" end })

--- Runs a chunk of Lua source text in a fresh sandbox and returns its first result.
-- @tparam string text the chunk's source (binary chunks are refused)
-- @tparam string name the file name, used in messages (`@name` chunk name)
-- @tparam[opt] table opts `instructions` (CPU budget in VM instructions), `memory` (net
--   bytes), `seconds` (CPU time), `allocated` (gross bytes allocated)
-- @return the chunk's first result (any value), or `nil, err` with `err.kind` one of
--   `LoadError` (syntax), `RuntimeError`, `BudgetExceeded` (`err.budget` = "cpu" |
--   "memory"), and `err.file`, `err.message` naming the file
function sandbox.run(text, name, opts)
  assert(type(text) == "string", "sandbox.run: source text expected")
  name = name or "chunk"
  opts = opts or {}
  local max_instructions = opts.instructions or sandbox.DEFAULT_INSTRUCTIONS
  local memory = opts.memory or sandbox.DEFAULT_MEMORY
  local seconds = opts.seconds or sandbox.DEFAULT_SECONDS
  local allocated = opts.allocated or math.max(sandbox.DEFAULT_ALLOCATED, 8 * memory)
  local started = clock()
  local function after_match(...)
    if clock() - started > seconds then error_(CPU_TIME, 0) end
    return ...
  end
  local env = sandbox.environment(memory, after_match)
  local private_index = string_lib(memory, after_match)

  local chunk, lerr = load(text, "@" .. name, "t", env)
  if not chunk then
    -- syntax errors start with the chunk name ("name:3: ..."), a refused mode does not
    if ssub(lerr, 1, #name + 1) == name .. ":" then
      return nil, errors.new("LoadError", { file = name, detail = lerr }, lerr)
    end
    return fail("LoadError", name, lerr)
  end

  local count = 0
  local co = cocreate(chunk)
  sethook(co, function()
    count = count + STEP
    if count > max_instructions then error_(CPU, 0) end
    if clock() - started > seconds then error_(CPU_TIME, 0) end
  end, "", STEP)

  local smt = getmetatable_("")
  local real_index = smt.__index
  local budget = core.mem_budget(memory, allocated)
  smt.__index = private_index
  -- Nothing between here and the restoring lines may raise: resume is a protected call.
  local ok, res = coresume(co)
  budget:release()
  smt.__index = real_index
  local over_memory = budget:exceeded()
  local over_allocated = over_memory and budget:allocated() + memory > allocated

  if ok then
    if costatus(co) ~= "dead" then return fail("RuntimeError", name, "the chunk yielded") end
    return res
  end
  if res == CPU then
    return fail("BudgetExceeded", name,
      sformat("CPU budget exceeded (more than %d Lua instructions)", max_instructions), { budget = "cpu" })
  end
  if res == CPU_TIME then
    return fail("BudgetExceeded", name,
      sformat("CPU time budget exceeded (more than %g s)", seconds), { budget = "cpu" })
  end
  if over_allocated then
    return fail("BudgetExceeded", name,
      sformat("memory budget exceeded (more than %d MiB allocated in total)", allocated // (1024 * 1024)),
      { budget = "memory" })
  end
  if over_memory then
    return fail("BudgetExceeded", name,
      sformat("memory budget exceeded (more than %d MiB)", memory // (1024 * 1024)), { budget = "memory" })
  end
  local msg = tostring(res)
  -- runtime errors raised with a position already name the file ("@name:3: ...")
  if ssub(msg, 1, #name + 1) == name .. ":" then
    return nil, errors.new("RuntimeError", { file = name, detail = msg }, msg)
  end
  return fail("RuntimeError", name, msg)
end

--- Reads and runs a file (see `sandbox.run`).
-- @tparam string path
-- @tparam[opt] table opts budgets
-- @return value, or `nil, err`
function sandbox.run_file(path, opts)
  local f, oerr = io.open(path, "rb")
  if not f then return nil, errors.new("IoError", { file = path, detail = oerr }, tostring(oerr)) end
  local text, rerr = f:read("a")
  f:close()
  if not text then return nil, errors.new("IoError", { file = path, detail = rerr }, path .. ": " .. tostring(rerr)) end
  return sandbox.run(text, path, opts)
end

return sandbox
