--- `aqstore batch JOBFILE` / `aqstore batch --scan ROOT --kind K` / `aqstore batch merge REPORT...`
-- Exit codes: 0 every job succeeded (or was skipped), 1 a job failed, 2 bad job file or usage,
-- 130 / 143 interrupted by SIGINT / SIGTERM (one line says what was finished and how to resume).
-- @module actionqueue.storage.cli.batch
local M = {}

local EPILOG = [[
Job file (Lua returning a table, or JSON):
  return {
    defaults = {kind = "check", timeout = 30},
    jobs = {
      {input = "a/snapshot.bin"},
      {kind = "rewrite", input = "b.snap", output = "out/b.snap"},
    },
  }
Kinds:
%s
Relative paths are taken from the job file's directory.

Examples:
  aqstore batch jobs.lua -j 4 --report report.json
  aqstore batch --scan /var/lib/aq --kind verify --report r.json
  aqstore batch jobs.lua --report r.json --resume r.json     # after a crash
  aqstore batch jobs.lua --shard 2/3 --report r2.json        # one machine of three
  aqstore batch jobs.lua --shard auto --report r$SLURM_ARRAY_TASK_ID.json  # Slurm array
  aqstore batch merge r1.json r2.json r3.json -o all.json]]

--- Adds the `batch` command to the parser.
function M.register(parser)
  local cmd = parser:command("batch", "Run many snapshot jobs in parallel worker processes, "
    .. "with progress, a journaled report, resume and sharding.")
  local lines = {}
  for _, k in ipairs(require("actionqueue.storage.batch.kinds").list) do
    lines[#lines + 1] = string.format("  %-9s %s", k.name, k.does or "")
  end
  cmd:epilog(string.format(EPILOG, table.concat(lines, "\n")))
  cmd:argument("args", "JOBFILE, or `merge` followed by REPORT files."):args("*")
  cmd:option("-j --jobs", "Worker processes (default: number of cores; at most 4x the cores "
    .. "without --force)."):convert(tonumber)
  cmd:flag("--force", "Run -j workers even above 4x the cores.")
  cmd:option("--timeout", "Per-job time limit in seconds."):convert(tonumber)
  cmd:option("--report", "Write the JSON report here (journaled as jobs finish).")
  cmd:option("--resume", "Skip jobs an earlier report (or its journal) shows done and unchanged.")
  cmd:option("--shard", "Run only slice I/N of the job list (job k where (k-1) % N == I-1); "
    .. "auto (or auto/N): I and N from a Slurm array or Kubernetes Indexed Job.")
  cmd:option("--scan", "Make the job list from the snapshots and data directories under ROOT.")
  cmd:option("--kind", "Job kind for --scan.", "verify")
  cmd:option("--out-dir", "Output directory for --scan with rewrite/compact jobs.")
  cmd:option("-o --output", "merge: write the merged report here (default: stdout).")
  cmd:flag("-q --quiet", "No progress and no summary table.")
end

-- Failed entries grouped by kind and error text, in order of first occurrence.
local function failure_groups(entries)
  local groups, by_key = {}, {}
  for _, e in ipairs(entries) do
    if e.status == "failed" then
      local key = e.kind .. "\0" .. tostring(e.error)
      local g = by_key[key]
      if not g then
        g = { kind = e.kind, error = tostring(e.error), inputs = {} }
        by_key[key] = g
        groups[#groups + 1] = g
      end
      g.inputs[#g.inputs + 1] = e.input
    end
  end
  return groups
end

local MAX_GROUPS, MAX_NAMED = 20, 3

local function summary_table(res)
  local by_kind, kinds = {}, {}
  for _, e in ipairs(res.entries) do
    local k = by_kind[e.kind]
    if not k then
      k = { ok = 0, failed = 0, skipped = 0, bytes = 0, seconds = 0 }
      by_kind[e.kind] = k
      kinds[#kinds + 1] = e.kind
    end
    k[e.status] = (k[e.status] or 0) + 1
    -- bytes and job-seconds of the work done: a skipped job read nothing
    if e.status ~= "skipped" then
      k.bytes = k.bytes + (e.bytes or 0)
      k.seconds = k.seconds + (e.seconds or 0)
    end
  end
  table.sort(kinds)
  local out = { string.format("%-10s %8s %8s %8s %12s %10s", "kind", "ok", "failed", "skipped", "bytes", "job-s") }
  local tot = { ok = 0, failed = 0, skipped = 0, bytes = 0, seconds = 0 }
  for _, name in ipairs(kinds) do
    local k = by_kind[name]
    out[#out + 1] = string.format("%-10s %8d %8d %8d %12d %10.2f", name, k.ok, k.failed, k.skipped, k.bytes, k.seconds)
    for f in pairs(tot) do tot[f] = tot[f] + k[f] end
  end
  out[#out + 1] = string.format("%-10s %8d %8d %8d %12d %10.2f", "total", tot.ok, tot.failed, tot.skipped,
    tot.bytes, tot.seconds)
  -- identical failures once, with their count and the first inputs
  local groups = failure_groups(res.entries)
  for i = 1, math.min(#groups, MAX_GROUPS) do
    local g = groups[i]
    if #g.inputs == 1 then
      out[#out + 1] = string.format("FAILED %s %s: %s", g.kind, g.inputs[1], g.error)
    else
      local named = table.concat(g.inputs, ", ", 1, math.min(#g.inputs, MAX_NAMED))
      if #g.inputs > MAX_NAMED then named = named .. string.format(", and %d more", #g.inputs - MAX_NAMED) end
      out[#out + 1] = string.format("FAILED %s %d jobs (%s): %s", g.kind, #g.inputs, named, g.error)
    end
  end
  if #groups > MAX_GROUPS then
    out[#out + 1] = string.format("... and %d more kinds of failure (see the report)", #groups - MAX_GROUPS)
  end
  if res.seconds then
    local line = string.format("wall time %.2fs", res.seconds)
    if res.seconds > 0 and tot.bytes > 0 then
      line = line .. string.format(", %.1f MB/s over the jobs that ran", tot.bytes / res.seconds / 1e6)
    end
    out[#out + 1] = line
  end
  return table.concat(out, "\n")
end

local function shell_word(s)
  if s:match("^[%w%./_:=@%-]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- The command that resumes an interrupted batch: the same job source, shard and report.
local function resume_command(args)
  local parts = { "aqstore", "batch" }
  local function add(...)
    for _, w in ipairs({ ... }) do parts[#parts + 1] = shell_word(tostring(w)) end
  end
  if args.scan then
    add("--scan", args.scan, "--kind", args.kind)
    if args.out_dir then add("--out-dir", args.out_dir) end
  else
    add(args.args[1])
  end
  if args.shard then add("--shard", args.shard) end
  add("--report", args.report, "--resume", args.report)
  return table.concat(parts, " ")
end

-- The one line printed when a batch was interrupted (SIGINT / SIGTERM).
local function interrupted_line(err, args)
  local text = string.format("aqstore batch: interrupted by %s: %d of %d jobs finished", err.signal_name,
    err.finished, err.total)
  if args.report then
    return text .. string.format(", journaled in %s.journal; resume with: %s", args.report, resume_command(args))
  end
  return text .. "; nothing was journaled (no --report): run it again, with --report R to be able to resume"
end

--- Runs the command.
-- @treturn integer exit code
function M.run(args)
  local batch = require "actionqueue.storage.batch"
  local rest = args.args or {}
  if rest[1] == "merge" then
    local paths = table.move(rest, 2, #rest, 1, {})
    if #paths == 0 then
      io.stderr:write("aqstore batch merge: give at least one REPORT\n")
      return 2
    end
    local res, err = batch.merge(paths, args.output)
    if not res then
      io.stderr:write("aqstore batch merge: ", tostring(err), "\n")
      return 2
    end
    if not args.output then io.stdout:write(res.text) end
    if not args.quiet then io.stderr:write(summary_table(res), "\n") end
    return res.exit_code
  end
  if #rest > 1 then
    io.stderr:write("aqstore batch: expected one JOBFILE\n")
    return 2
  end
  if (rest[1] == nil) == (args.scan == nil) then
    io.stderr:write("aqstore batch: give either a JOBFILE or --scan ROOT\n")
    return 2
  end
  if args.jobs ~= nil and (math.type(args.jobs) ~= "integer" or args.jobs < 1) then
    io.stderr:write("aqstore batch: -j needs a positive integer\n")
    return 2
  end
  if args.timeout ~= nil and args.timeout <= 0 then
    io.stderr:write("aqstore batch: --timeout needs a positive number of seconds\n")
    return 2
  end
  local res, err, code = batch.run({
    jobfile = rest[1], scan = args.scan, kind = args.kind, out_dir = args.out_dir,
    workers = args.jobs, timeout = args.timeout, report = args.report, resume = args.resume,
    shard = args.shard, progress = not args.quiet and {} or false, force = args.force,
    on_warning = function(text) io.stderr:write("aqstore batch: warning: ", text, "\n") end,
  })
  if not res then
    if type(err) == "table" and err.kind == "Interrupted" then
      io.stderr:write(interrupted_line(err, args), "\n")
      return err.exit_code
    end
    io.stderr:write("aqstore batch: ", tostring(err), "\n")
    return code or 2
  end
  if args.scan and #res.entries == 0 then
    io.stderr:write(string.format("aqstore batch: warning: no %s job under %s: nothing there that --kind %s "
      .. "takes (aqstore help batch lists what each kind takes)\n", args.kind, args.scan, args.kind))
  end
  if not args.quiet then io.stdout:write(summary_table(res), "\n") end
  return res.exit_code
end

return M
