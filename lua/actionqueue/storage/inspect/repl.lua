--- The REPL of `aqstore repl`: a Lua 5.4 read-eval-print loop in which every value prints
-- through the schema, errors are one line, and (on a terminal, with Debian's lua-readline)
-- the line editor completes from the schema and keeps a history across sessions.
--
-- * Input: `readline` (the `readline` module of lua-readline) when standard input and
--   output are terminals; otherwise lines from standard input, echoed after the prompt so
--   that a piped session reads like a transcript.
-- * Each input is compiled like `lua5.4 -i` does: first as `return <line>`, then as a
--   statement; an incomplete chunk asks for more lines (`>>`).
-- * Errors print as one line (`error: ...`) on standard error, without a traceback; a
--   position inside the package is dropped (it says nothing to the user). When input is
--   not a terminal, the session exits with status 1 if any line raised an error.
-- * History: `$XDG_STATE_HOME/actionqueue-storage/history` (default
--   `~/.local/state/actionqueue-storage/history`), the last 1000 lines; each line is
--   appended when entered.
--
-- Plain `lua5.4 -i` with `require "actionqueue.storage"` keeps working; this loop only
-- adds the line editor, the one-line errors and the exit status.
-- @module actionqueue.storage.inspect.repl
local view = require "actionqueue.storage.inspect.view"
local path = require "actionqueue.storage.inspect.path"
local show = require "actionqueue.storage.inspect.show"
local help = require "actionqueue.storage.inspect.help"

local repl = {}

--- Lines kept in the history file.
repl.HISTORY_LINES = 1000

--- The history file: `$XDG_STATE_HOME/actionqueue-storage/history`, XDG's default state
-- dir `~/.local/state` when unset (nil when neither variable is set).
function repl.history_path(getenv)
  getenv = getenv or os.getenv
  local base = getenv("XDG_STATE_HOME")
  if not base or base == "" or base:sub(1, 1) ~= "/" then
    local home = getenv("HOME")
    if not home or home == "" then return nil end
    base = home .. "/.local/state"
  end
  return base .. "/actionqueue-storage/history"
end

local PACKAGE_FILE = "actionqueue/storage/"

--- The one-line text of an error value: its `__tostring` or `message`, or the first line
-- of a string without a position inside the package.
function repl.error_text(e)
  local mt = getmetatable(e)
  if type(e) == "table" then
    if mt and mt.__tostring then return (tostring(e):match("^[^\n]*")) end
    if e.message then return (tostring(e.message):match("^[^\n]*")) end
  end
  local text = tostring(e):match("^[^\n]*")
  local file, rest = text:match("^([^:]-%.lua):%d+: (.*)$")
  if file and file:find(PACKAGE_FILE, 1, true) then text = rest end
  return text
end

-- Scalars reached by a path from a wrapped value print through the schema too: `s.timestamp`
-- shows its date, a u64 above 2^63-1 prints unsigned, bytes print as a preview.
local function schema_scalar(expr, env, v)
  if type(v) ~= "number" and type(v) ~= "string" then return nil end
  local root, rest = expr:match("^%s*([%a_][%w_]*)(.*)$")
  if not root then return nil end
  rest = rest:gsub("%s+$", "")
  local base = rawget(env, root)
  local T = base ~= nil and view.type_of(base) or nil
  if not T or rest == "" then return nil end
  rest = rest:gsub("^%.", "")
  if rest:find("[^%w_%.%[%]%-]") then return nil end
  local ok, value, Ty = pcall(path.resolve, base, rest, T)
  if not ok or type(Ty) ~= "table" or value ~= v then return nil end
  local K = Ty
  while K.kind == "option" do K = K.of end
  if K.kind ~= "u64" and K.kind ~= "bytes" then return nil end
  return show.render(v, Ty, { name = rest:match("([%a_][%w_]*)$") })
end

--- The text the REPL prints for the results of `expr`.
function repl.result_text(expr, env, results)
  local parts = {}
  -- a failed lookup prints its reason once (its message is also the second result)
  if results.n == 2 and not view.found(results[1]) and results[1] ~= nil then results.n = 1 end
  for i = 1, results.n do
    local v = results[i]
    local text = i == 1 and results.n == 1 and schema_scalar(expr, env, v) or nil
    if not text then
      local mt = getmetatable(v)
      if type(v) == "table" and not (mt and mt.__tostring) and view.type_of(v) == nil then
        local T = path.guess(v)
        text = T and show.render(v, T) or tostring(v)
      else
        text = tostring(v)
      end
    end
    parts[i] = text
  end
  -- several results: tab-separated like lua5.4 -i, one per line when any spans lines
  local multiline = false
  for _, t in ipairs(parts) do if t:find("\n") then multiline = true end end
  return table.concat(parts, multiline and "\n" or "\t")
end

-- Completion ---------------------------------------------------------------------------

local function sorted_keys(t, out)
  out = out or {}
  if type(t) ~= "table" then return out end
  for k in pairs(t) do if type(k) == "string" and k:match("^[%a_][%w_]*$") then out[#out + 1] = k end end
  return out
end

-- The names offered after `x.` or `x:`.
local function member_names(x, sep)
  local names = {}
  if sep == ":" then
    names = help.methods(x)
    if view.is_snapshot(x) then
      for _, f in ipairs(view.type_of(x).fields) do
        if f.type.kind == "list" then names[#names + 1] = f.name end
      end
    elseif type(x) == "string" then
      names = sorted_keys(string)
    end
    return names
  end
  local T = view.type_of(x)
  while T and T.kind == "option" do T = T.of end
  if T and T.kind == "record" then
    for i, f in ipairs(T.fields) do names[i] = f.name end
  elseif T and T.kind == "enum" and type(x) == "table" then
    names[1] = next(x)
  elseif type(x) == "table" and not (T and T.kind == "list") then
    names = sorted_keys(x)
    local mt = getmetatable(x)
    if mt and type(rawget(mt, "modules")) == "table" then sorted_keys(rawget(mt, "modules"), names) end
  end
  return names
end

local function uniq_sorted(list)
  table.sort(list)
  local out, last = {}, nil
  for _, x in ipairs(list) do if x ~= last then out[#out + 1] = x; last = x end end
  return out
end

--- Completions for the word `line:sub(from, to)` (each a full replacement of the word).
-- Knows: methods after `x:`, schema fields after `x.` (and table keys), enum variant
-- names inside a string after `state = "`, `policy = "`, `variant = "` ..., and globals.
-- @tparam string line the whole input line
-- @tparam integer from first character of the word
-- @tparam integer to last character of the word
-- @tparam table env the session's globals
-- @treturn table the candidates
function repl.complete(line, from, to, env)
  local word = line:sub(from, to)
  local before = line:sub(1, from - 1)
  local out = {}
  local key = before:match("([%a_][%w_]*)%s*=%s*[\"']$")
  if key or before:match("[\"']$") then
    local enum = key and view.criterion_enum(key)
    if not enum then return out end
    for _, v in ipairs(enum.variants) do
      if v.name:lower():sub(1, #word) == word:lower() then out[#out + 1] = v.name end
    end
    return out
  end
  local prefix, sep, partial = word:match("^(.*)([%.:])([%w_]*)$")
  local names
  if prefix and prefix ~= "" then
    -- evaluate only plain paths: names, fields, [index] and ["key"], no calls
    if prefix:find("[^%w_%.%[%]\"'%-]") then return out end
    local f = load("return " .. prefix, "=complete", "t", env)
    if not f then return out end
    local ok, x = pcall(f)
    if not ok or x == nil then return out end
    names = member_names(x, sep)
  else
    prefix, sep, partial = "", "", word
    names = sorted_keys(env)
    if getmetatable(env) and type(getmetatable(env).__index) == "table" then
      sorted_keys(getmetatable(env).__index, names)
    end
  end
  for _, n in ipairs(names) do
    if n:sub(1, #partial) == partial then out[#out + 1] = prefix .. sep .. n end
  end
  return uniq_sorted(out)
end

-- Line input -----------------------------------------------------------------------------

local function is_tty(file)
  local ok, term = pcall(require, "term")
  return ok and term.isatty and term.isatty(file) or false
end

-- Keeps the last `max` lines of the history file.
local function trim_history(file, max)
  local f = io.open(file, "r")
  if not f then return end
  local lines = {}
  for l in f:lines() do lines[#lines + 1] = l end
  f:close()
  if #lines <= max then return end
  local out = io.open(file, "w")
  if not out then return end
  out:write(table.concat(lines, "\n", #lines - max + 1, #lines), "\n")
  out:close()
end

-- readline() with Ctrl-C that never ends the session. lua5.4's SIGINT handler works once: the
-- first Ctrl-C at the prompt raises "interrupted!" when readline returns (the line is
-- discarded), after which a Ctrl-C would kill the process. From then on the prompt waits with
-- SIGINT/SIGTERM taken by a signalfd (core.proc_signal_watch): a Ctrl-C while typing discards
-- the line when Enter is pressed (false), SIGTERM exits 143. (Debian lua-readline's callback
-- interface, which could discard at once, closes its stream before readline uses it.)
local function interruptible_reader(RL)
  local core = require "actionqueue.storage.core"
  local handler_spent = false
  return function(prompt)
    if not handler_spent then
      local ok, line = pcall(RL.readline, prompt)
      if ok then return line end
      handler_spent = true
      error(line, 0)
    end
    local watch = core.proc_signal_watch()
    if not watch then return RL.readline(prompt) end
    local ok, line = pcall(RL.readline, prompt)
    local sig = watch:read()
    watch:close()
    if sig == 15 then os.exit(143) end
    if not ok then error(line, 0) end
    if sig then return false end
    return line
  end
end

-- A line reader: readline on a terminal, else standard input echoed after the prompt.
local function line_reader(opts, env)
  local interactive = opts.interactive
  if interactive == nil then interactive = is_tty(io.stdin) and is_tty(io.stdout) end
  if interactive then
    local ok, RL = pcall(require, "readline")
    if ok and type(RL) == "table" and RL.readline then
      local hist = opts.history or repl.history_path()
      local rl_opts = { keeplines = repl.HISTORY_LINES, completion = true, histfile = "" }
      if hist and require("actionqueue.storage.fsutil").mkdir_p(hist:match("^(.*)/[^/]*$")) then
        trim_history(hist, repl.HISTORY_LINES)
        rl_opts.histfile = hist   -- read now; lines are appended as they are entered
      end
      RL.set_options(rl_opts)
      if RL.set_readline_name then RL.set_readline_name("aqstore") end
      RL.set_complete_function(function(text, from, to)
        RL.set_completion_append_character("")
        local ok2, list = pcall(repl.complete, text, from, to, env)
        return ok2 and list or {}
      end)
      local read_line = interruptible_reader(RL)
      return {
        interactive = true,
        read = function(prompt)
          local line = read_line(prompt)
          -- appended at once, so the history survives a session that is killed
          if line and line:match("%S") and rl_opts.histfile ~= "" then
            local f = io.open(rl_opts.histfile, "a")
            if f then f:write(line, "\n") f:close() end
          end
          return line
        end,
        close = function() end,
      }
    end
  end
  return {
    interactive = interactive,
    read = function(prompt)
      local line = io.stdin:read("L")
      if not line then return nil end
      line = line:gsub("\r?\n$", "")
      if not interactive then io.stdout:write(prompt, line, "\n") else io.stdout:write(prompt) end
      return line
    end,
    close = function() end,
  }
end

-- Runs one compiled line. On a terminal Ctrl-C is read from a signalfd by a count hook
-- (core.proc_signal_watch) instead of lua5.4's handler, which works once and then lets the
-- next Ctrl-C kill the session: every Ctrl-C raises "interrupted!" in the line, SIGTERM ends
-- the session with 143. (Processes the line starts inherit the blocked mask.)
local function call_line(f, interactive)
  local function keep(e) return e end
  local watch = interactive and require("actionqueue.storage.core").proc_signal_watch()
  if not watch then return xpcall(f, keep) end
  debug.sethook(function()
    local sig = watch:read()
    if sig == 15 then watch:close() os.exit(143) end
    if sig then error("interrupted!", 0) end
  end, "", 100000)
  local results = table.pack(xpcall(f, keep))
  debug.sethook()
  watch:close()
  return table.unpack(results, 1, results.n)
end

-- Compiles one input: `return <chunk>` first, then the chunk; "incomplete" when more
-- lines could finish it.
local function compile(chunk, env)
  local f = load("return " .. chunk, "=stdin", "t", env)
  if f then return f end
  local err
  f, err = load(chunk, "=stdin", "t", env)
  if f then return f end
  if err:match("<eof>$") then return nil, "incomplete" end
  return nil, err
end

--- Runs the loop until end of input.
-- @tparam[opt] table opts `env` (globals, default a table over _G), `banner` (text to show
--   first), `interactive` (default: stdin and stdout are terminals), `history` (file)
-- @treturn integer the exit status: 1 when input was not a terminal and a line raised an
--   error, else 0
function repl.run(opts)
  opts = opts or {}
  local env = opts.env or setmetatable({}, { __index = _G })
  env.help = env.help or function(x) return help.text(x) end
  local input = line_reader(opts, env)
  if opts.banner then io.stderr:write(opts.banner, "\n") end
  local failed = false
  while true do
    io.stdout:flush()
    local ok_read, line = pcall(input.read, "> ")
    if not ok_read then
      io.stderr:write("\n")
      line = ""
    end
    if line == nil then break end
    local chunk = line or ""   -- false: Ctrl-C discarded the line
    local f, err = compile(chunk, env)
    while not f and err == "incomplete" do
      local ok_more, more = pcall(input.read, ">> ")
      if not ok_more then io.stderr:write("\n") more = false end
      if more == nil then break end
      if more == false then chunk, f, err = "", nil, nil break end   -- Ctrl-C drops the chunk
      chunk = chunk .. "\n" .. more
      f, err = compile(chunk, env)
    end
    if not f then
      if chunk:match("%S") then
        failed = true
        io.stdout:flush()
        local text = err == "incomplete" and "input ended inside an unfinished chunk (a missing 'end' or bracket?)"
          or repl.error_text(err)
        io.stderr:write("error: ", text, "\n")
      end
    else
      local results = table.pack(call_line(f, input.interactive))
      if results[1] then
        if results.n > 1 then
          local shown = table.pack(table.unpack(results, 2, results.n))
          local ok, text = pcall(repl.result_text, chunk, env, shown)
          io.stdout:write(ok and text or ("(cannot print: " .. repl.error_text(text) .. ")"), "\n")
        end
      else
        failed = true
        io.stdout:flush()
        io.stderr:write("error: ", repl.error_text(results[2]), "\n")
      end
    end
  end
  input.close()
  if input.interactive then io.stdout:write("\n") end
  io.stdout:flush()
  return (failed and not input.interactive) and 1 or 0
end

return repl
