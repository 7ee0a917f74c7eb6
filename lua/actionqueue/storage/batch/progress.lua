--- Progress display for batches.
-- On a TTY: one line redrawn in place (`\r` + ANSI erase): done/total, failures so far,
-- MB/s over the inputs processed (skipped jobs left out) and an ETA. Not on a TTY: a plain line at every 10% of
-- the jobs (and at the end), so logs stay short.
-- @module actionqueue.storage.batch.progress
local core = require "actionqueue.storage.core"

local progress = {}

local function fmt_eta(s)
  if s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%dh%02dm", s // 3600, (s % 3600) // 60) end
  if s >= 60 then return string.format("%dm%02ds", s // 60, s % 60) end
  return string.format("%ds", s)
end

--- Creates a progress display.
-- @tparam integer total number of jobs
-- @tparam[opt] table opts `stream` (default io.stderr), `tty` (default: isatty(2)),
--   `quiet` (no output at all)
-- @treturn table with `update(result)` and `finish()`
function progress.new(total, opts)
  opts = opts or {}
  local stream = opts.stream or io.stderr
  local tty = opts.tty
  if tty == nil then tty = core.proc_isatty(2) end
  local p = { total = total, done = 0, worked = 0, failed = 0, bytes = 0, started = core.proc_clock() }
  local last_draw, next_mark = 0, 0.1

  -- MB/s and the ETA count only the jobs that ran: a skipped job (resume) reads no input
  -- and takes no time, and counting it would inflate the rate and shrink the ETA.
  local function line()
    local elapsed = core.proc_clock() - p.started
    local rate = elapsed > 0 and p.bytes / elapsed / 1e6 or 0
    local eta = p.worked > 0 and (elapsed / p.worked) * (p.total - p.done) or (p.done == p.total and 0 or math.huge)
    return string.format("[%d/%d] failed %d  %.1f MB/s  ETA %s", p.done, p.total, p.failed, rate, fmt_eta(eta))
  end

  --- Records one finished job.
  function p.update(result)
    p.done = p.done + 1
    if result.status == "failed" then p.failed = p.failed + 1 end
    if result.status ~= "skipped" then
      p.worked = p.worked + 1
      p.bytes = p.bytes + (tonumber(result.bytes) or 0)
    end
    if opts.quiet then return end
    if tty then
      local now = core.proc_clock()
      if now - last_draw >= 0.1 or p.done == p.total then
        last_draw = now
        stream:write("\r\27[K", line())
        stream:flush()
      end
    elseif p.total > 0 and p.done / p.total >= next_mark - 1e-9 and p.done < p.total then
      while p.done / p.total >= next_mark - 1e-9 do next_mark = next_mark + 0.1 end
      stream:write("batch: ", line(), "\n")
      stream:flush()
    end
  end

  --- Ends the display (newline on a TTY, a last line otherwise).
  function p.finish()
    if opts.quiet then return end
    if tty then
      stream:write("\r\27[K", line(), "\n")
    else
      stream:write("batch: ", line(), "\n")
    end
    stream:flush()
  end

  --- Ends the display on an interrupt: a progress line drawn in place is erased, so the
  -- caller's one-line message stands alone.
  function p.interrupt()
    if opts.quiet or not tty then return end
    stream:write("\r\27[K")
    stream:flush()
  end

  return p
end

return progress
