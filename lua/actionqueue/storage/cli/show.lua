--- `aqstore show FILE [PATH]` (or `--path PATH`): parts of a snapshot or data dir,
-- pretty-printed through the schema. PATH is the path language of `inspect.path`: dotted
-- fields, 1-based `[i]` indexes (`[-1]` = the last), `[*]` (every entry), `[id prefix]`;
-- `.` is the whole document. `dump` takes the same PATH the same two ways.
-- @module actionqueue.storage.cli.show
local cli = require "actionqueue.storage.cli"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "show", "Show parts of a snapshot or data dir (schema-aware pretty printer).",
    { "aqstore show snapshot.bin 'runs[3].attempts'", "aqstore show --json snapshot.bin engine",
      "aqstore show snapshot.bin 'runs[*].lease.owner'", "aqstore show --path 'runs[-1]' snapshot.bin" })
  cmd:argument("file", "Snapshot file or data dir.")
  cmd:argument("path", "Document path: fields, [i], [-i], [*], [id prefix] ('.' = everything)."):args("?")
  cmd:option("--path", "The path as an option (as for 'dump').")
    :target("path_option")
  cmd:option("--max", "List entries shown before truncating (text output).", "20"):convert(tonumber)
  cli.json_flag(cmd)
end

--- The PATH of `show`/`dump`: the operand or `--path` (both given: they must agree).
-- @return path text | nil, usage message
function M.path_arg(args, default)
  local operand, option = args.path, args.path_option
  if operand and option and operand ~= option then
    return nil, string.format("two paths given (%q and --path %q): give one", operand, option)
  end
  return operand or option or default
end

function M.run(args)
  local path = require "actionqueue.storage.inspect.path"
  local show = require "actionqueue.storage.inspect.show"
  local json = require "actionqueue.storage.inspect.json"
  local p, uerr = M.path_arg(args, ".")
  if not p then cli.err(uerr) return cli.USAGE end
  local steps, perr = path.parse(p)
  if not steps then cli.err(perr) return cli.USAGE end
  local s, code = cli.open_snapshot(args.file, args.json)
  if not s then return code end
  local matches, qerr = path.query(s, steps)
  if not matches then
    if args.json then
      cli.json({ file = args.file, path = p, ok = false, error = { kind = "PathError", message = qerr } })
    else
      cli.err(qerr)
    end
    return cli.USAGE
  end
  if path.has_wildcard(steps) then
    if args.json then
      local list = json.array()
      for i, m in ipairs(matches) do
        local value = m.value == nil and json.null or json.raw(json.encode_typed(m.value, m.type))
        list[i] = { path = m.path, value = value }
      end
      cli.json({ file = args.file, path = p, ok = true, count = #matches, matches = list })
    else
      for _, m in ipairs(matches) do cli.out(show.render(m.value, m.type, { max = args.max, title = m.path })) end
    end
    return cli.OK
  end
  local m = matches[1]
  if args.json then
    cli.json({ file = args.file, path = p, ok = true, type = m.type.name or m.type.kind,
               value = m.value == nil and json.null or json.raw(json.encode_typed(m.value, m.type)) })
  else
    cli.out(show.render(m.value, m.type, { max = args.max, title = (p ~= "." and p or nil) }))
  end
  return cli.OK
end

return M
