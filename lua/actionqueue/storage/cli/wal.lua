--- `aqstore wal dump [--json] | verify | repair [--force] | stats | open FILE`.
--
-- Acceptance contract (keep exact):
-- * `wal dump --json FILE`: one compact JSON line per record, then
--   `END records=N valid_bytes=B` (exit 0) or `CORRUPT offset=O kind=K` (exit 1);
-- * `wal open --strict FILE` / `wal open --repair FILE` (reference TruncatePartial):
--   `OK next_sequence=S len=L` (exit 0) or `ERR <reference text>` (exit 1).
-- @module actionqueue.storage.cli.wal
local cli = require "actionqueue.storage.cli"

local M = {}

local function wal() return require "actionqueue.storage.wal" end

-- Every subcommand ends with the `--workflow` flag and the WAL file argument.
local function wal_file(sub, workflow_help)
  sub:flag("--workflow", workflow_help or "Accept Cron run policies.")
  sub:argument("file", "WAL file.")
end

--- Adds the `wal` command and its subcommands.
function M.register(parser)
  local cmd = cli.command(parser, "wal", "Write-ahead log (v5): dump, verify, repair, stats, open.")
  cmd:command_target("wal_command")
  cmd:require_command(true)
  local dump = cmd:command("dump", "Print every record (one line each) and the final status.")
  dump:flag("--json", "Reference JSON lines (serde form) instead of the readable listing.")
  wal_file(dump, "Accept Cron run policies (the reference's optional workflow build).")
  wal_file(cmd:command("verify", "Check integrity only (reader order)."))
  local rep = cmd:command("repair", "Safe repair: cut a damaged tail, keeping the cut bytes in FILE.cut-OFFSET.")
  rep:flag("--force", "Also cut mid-file corruption (drops every record after it).")
  rep:flag("--dry-run", "Only show what would be cut.")
  wal_file(rep)
  wal_file(cmd:command("stats", "Counts per variant, sizes, sequence range."))
  local open = cmd:command("open", "Open like the reference appender and print the next sequence.")
  open:mutex(open:flag("--strict", "Strict policy (default): refuse any corruption."),
             open:flag("--repair", "TruncatePartial: cut the file at the first bad record."))
  wal_file(open)
end

local out = io.stdout

local function u(n) return string.format("%u", n) end

local function status_line(s)
  if s.error and s.error.kind == "Corruption" then
    return string.format("CORRUPT offset=%d kind=%s", s.error.offset, s.error.reason), 1
  elseif s.error then
    return "ERR " .. s.error.message, 1
  end
  return string.format("END records=%d valid_bytes=%d", s.records, s.valid_bytes), 0
end

local function opts_of(args)
  return { workflow = args.workflow or nil }
end

local function run_dump(args)
  local w = wal()
  local json, opts = args.json, opts_of(args)
  local buf, nbuf = {}, 0
  local function emit(line)
    nbuf = nbuf + 1
    buf[nbuf] = line
    if nbuf >= 512 then
      out:write(table.concat(buf, "\n", 1, nbuf), "\n")
      nbuf = 0
    end
  end
  local s = w.scan(args.file, opts, function(offset, ev, payload)
    if json then
      emit(w.to_json(ev))
    else
      local name, body = next(ev.event)
      local j = w.to_json({ sequence = ev.sequence, event = ev.event })
      local fields = j:match('^{"sequence":%d+,"event":{"[^"]+":(.*)}}$') or j
      emit(string.format("@%-8d #%-6s %-22s %4dB %s", offset, u(ev.sequence), name, #payload, fields))
      local _ = body
    end
  end)
  if nbuf > 0 then out:write(table.concat(buf, "\n", 1, nbuf), "\n") end
  local line, code = status_line(s)
  out:write(line, "\n")
  return code
end

local function run_verify(args)
  local s = wal().scan(args.file, opts_of(args))
  if not s.error then
    out:write(string.format("OK records=%d bytes=%d last_sequence=%s\n", s.records, s.valid_bytes,
      u(s.last_sequence)))
    return 0
  end
  local line = status_line(s)
  out:write(line, string.format(" (valid records before it: %d, valid bytes: %d)\n", s.records, s.valid_bytes))
  return 1
end

local function run_open(args)
  local a = require "actionqueue.storage.wal.appender"
  local w, err = a.open(args.file, { repair = args["repair"] and "truncate_partial" or "strict",
                                     sync = "none", workflow = args.workflow or nil })
  if not w then return cli.fail(false, err) end
  local line = string.format("OK next_sequence=%s len=%d", u(w:next_sequence()), w:size())
  w:close()
  out:write(line, "\n")
  return 0
end

local function run_repair(args)
  local r = require "actionqueue.storage.wal.repair"
  local plan, perr = r.plan(args.file, opts_of(args))
  if not plan then return cli.fail(false, perr) end
  if plan.ok then
    out:write(string.format("OK nothing to repair: records=%d len=%d next_sequence=%s\n",
      plan.records, plan.size, u(plan.next_sequence)))
    return 0
  end
  out:write(string.format(
    "found %s at offset %d (%s): keeping %d record(s) (%d bytes), dropping %d bytes " ..
    "incl. %d valid record(s) after the bad one\n",
    plan.kind, plan.offset, plan.tail and "damaged tail" or "mid-file corruption",
    plan.records, plan.offset, plan.dropped_bytes, plan.dropped_valid_records))
  if args.dry_run then return plan.tail and 0 or 1 end
  local res, err = r.run(args.file, { mode = "safe", force = args.force, workflow = args.workflow or nil })
  if not res then return cli.fail(false, err) end
  out:write(string.format("REPAIRED truncated to %d bytes; cut bytes saved to %s; next_sequence=%s\n",
    plan.offset, res.cut_file or "(not kept)", u(plan.next_sequence)))
  return 0
end

local function run_stats(args)
  local w = wal()
  local per, order = {}, {}
  local first, minp, maxp, total = nil, math.huge, 0, 0
  local min, max, backwards, gaps, prev = nil, nil, 0, 0, nil
  local opts = opts_of(args)
  opts.skim = true
  local s = w.scan(args.file, opts, function(_, _, payload, q, name)
    if not per[name] then per[name] = { n = 0, bytes = 0 }; order[#order + 1] = name end
    per[name].n = per[name].n + 1
    per[name].bytes = per[name].bytes + #payload
    first = first or q
    if not min or math.ult(q, min) then min = q end
    if not max or math.ult(max, q) then max = q end
    if prev then
      if not math.ult(prev, q) then backwards = backwards + 1
      elseif q ~= prev + 1 then gaps = gaps + 1 end
    end
    prev = q
    if #payload < minp then minp = #payload end
    if #payload > maxp then maxp = #payload end
    total = total + #payload
  end)
  out:write(string.format("file %s\nrecords %d\nvalid_bytes %d\n", args.file, s.records, s.valid_bytes))
  if s.records > 0 then
    out:write(string.format("payload_bytes total=%d min=%d max=%d avg=%.1f\n", total, minp, maxp,
      total / s.records))
    out:write(string.format("sequence first=%s last=%s min=%s max=%s gaps=%d non_increasing=%d\n",
      u(first), u(prev), u(min), u(max), gaps, backwards))
  end
  local schema = require "actionqueue.storage.schema.wal"
  out:write("variants:\n")
  for _, v in ipairs(schema.WalEventType.variants) do
    local p = per[v.name]
    if p then out:write(string.format("  %2d %-22s %8d records %10d bytes\n", v.index, v.name, p.n, p.bytes)) end
  end
  local line, code = status_line(s)
  out:write(line, "\n")
  return code
end

--- Runs the selected subcommand; returns the exit code.
function M.run(args)
  local sub = args.wal_command
  if sub == "dump" then return run_dump(args)
  elseif sub == "verify" then return run_verify(args)
  elseif sub == "open" then return run_open(args)
  elseif sub == "repair" then return run_repair(args)
  elseif sub == "stats" then return run_stats(args)
  end
  return 2
end

return M
