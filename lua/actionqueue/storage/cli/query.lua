--- `aqstore query FILE|DIR EXPR`: the REPL's queries from the shell.
--
-- EXPR is either a path (the language of `show`, `dump --path` and `s:get`, with `[*]`,
-- negative indexes and id prefixes: `runs[*].lease.owner`, `runs[-1]`, `runs[1f2e].attempts`)
-- or what you would type after `s:` in the REPL (`runs{state = "Running", older = "1h"}`,
-- `tasks{exhausted = true}`, `run("1f2e"):history()`, `events{variant = "LeaseAcquired"}`),
-- or any Lua expression over `s` and `aq` (`#s:runs{leased = true}`). A DIR is a data dir:
-- its recovered state, read-only, with its WAL events.
--
-- Text output is what the REPL prints; `--json` prints one document: lists and records
-- as schema JSON (u64 exact), texts such as a history as `text`.
-- Exit codes: 0 ok, 1 the file cannot be read, 2 a bad expression or path.
-- @module actionqueue.storage.cli.query
local cli = require "actionqueue.storage.cli"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "query",
    "Query a snapshot or data dir: a path (runs[*].lease.owner) or a REPL query (runs{state = \"Running\"}).",
    { "aqstore query snap.bin 'runs{state = \"Running\", older = \"1h\"}'",
      "aqstore query --json snap.bin 'tasks{exhausted = true}'",
      "aqstore query snap.bin 'runs[*].lease.owner'",
      "aqstore query data/ 'run(\"1f2e\"):history()'" })
  cmd:argument("file", "Snapshot file or data dir.")
  cmd:argument("expr", "A path, a query as typed after s: in the REPL, or a Lua expression over s.")
  cmd:option("--max", "Rows/entries shown before truncating (text output).", "20"):convert(tonumber)
  cli.json_flag(cmd)
end

--- True when `expr` is written in the path language (and not Lua).
function M.is_path(expr)
  local path = require "actionqueue.storage.inspect.path"
  if expr == "." or expr == "" then return true end
  local steps = path.parse(expr)
  return steps ~= nil and (steps[1] == nil or steps[1].field ~= nil)
end

--- The Lua source that evaluates `expr` with `s` in scope: `name{...}` / `name(...)`
-- become the method call `s:name...`.
function M.lua_source(expr)
  local name = expr:match("^%s*([%a_][%w_]*)%s*[{(\"']")
  if name and name ~= "s" and name ~= "aq" and not _G[name] then return "s:" .. expr:gsub("^%s+", "") end
  return expr
end

-- JSON of one REPL value: schema JSON for wrapped parts, `text` for printable texts.
local function value_json(v)
  local json = require "actionqueue.storage.inspect.json"
  local view = require "actionqueue.storage.inspect.view"
  local T = type(v) == "table" and view.type_of(v) or nil
  if T then return json.raw(json.encode_typed(v, T)) end
  local mt = getmetatable(v)
  if type(v) == "table" and mt and mt.__name == "aq.text" then
    if type(rawget(v, "data")) == "table" and rawget(v, "data").collections and rawget(v, "data").runs_by_state then
      return require("actionqueue.storage.inspect.stats").to_json(v.data)
    end
    return { text = v.text }
  end
  if type(v) == "table" and mt and mt.__name == "aq.missing" then return { error = rawget(v, "message") } end
  if v == nil then return json.null end
  return v
end

local function run_path(args, s)
  local path = require "actionqueue.storage.inspect.path"
  local show = require "actionqueue.storage.inspect.show"
  local json = require "actionqueue.storage.inspect.json"
  local matches, err = path.query(s, args.expr)
  if not matches then
    if args.json then cli.json({ file = args.file, query = args.expr, ok = false,
                                  error = { kind = "PathError", message = err } })
    else cli.err(err) end
    return cli.USAGE
  end
  if args.json then
    local list = json.array()
    for i, m in ipairs(matches) do
      list[i] = { path = m.path, value = m.value == nil and json.null or json.raw(json.encode_typed(m.value, m.type)) }
    end
    cli.json({ file = args.file, query = args.expr, ok = true, count = #matches, matches = list })
    return cli.OK
  end
  local wild = path.has_wildcard(args.expr)
  for _, m in ipairs(matches) do
    local title = wild and m.path or (args.expr ~= "." and args.expr or nil)
    cli.out(show.render(m.value, m.type, { max = args.max, title = title }))
  end
  return cli.OK
end

local function run_lua(args, s)
  local aq = require "actionqueue.storage"
  local repl = require "actionqueue.storage.inspect.repl"
  local view = require "actionqueue.storage.inspect.view"
  local env = setmetatable({ s = s, aq = aq }, { __index = _G })
  local src = M.lua_source(args.expr)
  local f, cerr = load("return " .. src, "=query", "t", env)
  if not f then
    if args.json then cli.json({ file = args.file, query = args.expr, ok = false,
                                  error = { kind = "SyntaxError", message = repl.error_text(cerr) } })
    else cli.err("query: ", repl.error_text(cerr)) end
    return cli.USAGE
  end
  local saved = view.MAX_ROWS
  view.MAX_ROWS = args.max or saved
  local results = table.pack(xpcall(f, function(e) return e end))
  view.MAX_ROWS = saved
  if not results[1] then
    local text = repl.error_text(results[2])
    if args.json then cli.json({ file = args.file, query = args.expr, ok = false,
                                  error = { kind = "QueryError", message = text } })
    else cli.err(text) end
    return cli.USAGE
  end
  local v = results[2]
  local missing = type(v) == "table" and getmetatable(v) and getmetatable(v).__name == "aq.missing"
  if args.json then
    local doc = { file = args.file, query = args.expr, ok = not missing, value = value_json(v) }
    if type(v) == "table" and view.kind(v) then doc.count = #v end
    cli.json(doc)
  else
    view.MAX_ROWS = args.max or saved
    local text = repl.result_text(src, env, table.pack(table.unpack(results, 2, results.n)))
    view.MAX_ROWS = saved
    cli.out(text)
  end
  return missing and cli.BAD or cli.OK
end

function M.run(args)
  local s, code = cli.open_snapshot(args.file, args.json)
  if not s then return code end
  if M.is_path(args.expr) then return run_path(args, s) end
  return run_lua(args, s)
end

return M
