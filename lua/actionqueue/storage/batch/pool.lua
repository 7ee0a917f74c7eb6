--- Worker pool: long-lived `lua5.4` worker processes fed one job at a time over pipes.
-- A job that crashes its worker or passes its deadline fails alone: the worker is
-- killed (SIGKILL) and reaped, and a fresh one takes the next job.
-- @module actionqueue.storage.batch.pool
local core = require "actionqueue.storage.core"
local cjson = require "cjson"

local pool = {}

--- The Lua interpreter running this process (lowest negative index of `arg`), or "lua5.4".
function pool.interpreter()
  if type(arg) == "table" then
    local i = -1
    while arg[i - 1] ~= nil do i = i - 1 end
    local exe = arg[i]
    if type(exe) == "string" and exe:match("lua") and not exe:match("busted") then return exe end
  end
  return "lua5.4"
end

local function worker_argv(lua)
  local boot = string.format("package.path=%q package.cpath=%q "
    .. "require('actionqueue.storage.batch.worker').main()", package.path, package.cpath)
  return { lua, "-e", boot }
end

local function spawn(self)
  local pid, wfd, rfd = core.proc_spawn(worker_argv(self.lua))
  if not pid then return nil, wfd end
  local w = { pid = pid, wfd = wfd, rfd = rfd, buf = "" }
  self.by_fd[rfd] = w
  self.workers[#self.workers + 1] = w
  return w
end

local function retire(self, w, sig)
  if sig then core.proc_kill(w.pid, sig) end
  core.proc_close(w.wfd)
  core.proc_close(w.rfd)
  local status = core.proc_wait(w.pid)
  self.by_fd[w.rfd] = nil
  for i, x in ipairs(self.workers) do
    if x == w then table.remove(self.workers, i) break end
  end
  return status
end

local function describe_exit(status)
  if type(status) ~= "table" then return "worker died" end
  if status.signaled then return string.format("worker crashed (signal %d)", status.signal) end
  return string.format("worker exited with code %d", status.code or -1)
end

-- The job as sent to a worker (only plain fields).
local function wire_job(job)
  return {
    kind = job.kind, input = job.input, path = job.path, output = job.output,
    output_path = job.output_path, timestamp = job.timestamp, action = job.action,
    seconds = job.seconds,
  }
end

--- Runs `jobs` on `n` workers.
-- @tparam table jobs normalised jobs
-- @tparam table opts `workers` (count), `timeout` (seconds, default none), `lua` (interpreter),
--   `on_done(job, result)` called as each job finishes, in finishing order
-- @treturn boolean true
-- @return nil, message when no worker could be started
function pool.run(jobs, opts)
  opts = opts or {}
  core.proc_ignore_sigpipe()
  local self = { workers = {}, by_fd = {}, lua = opts.lua or pool.interpreter() }
  local nworkers = math.max(1, math.min(opts.workers or 1, #jobs))
  local next_job, remaining = 1, #jobs
  if remaining == 0 then return true end

  local function finish(w, result)
    local job = w.job
    w.job, w.id = nil, nil
    result.seconds = core.proc_clock() - w.started
    remaining = remaining - 1
    if opts.on_done then opts.on_done(job, result) end
  end

  local function dispatch(w)
    if next_job > #jobs then return false end
    local job = jobs[next_job]
    next_job = next_job + 1
    w.job, w.id, w.started = job, next_job - 1, core.proc_clock()
    local t = job.timeout or opts.timeout
    w.deadline = t and (w.started + t) or nil
    local ok, err = core.proc_write(w.wfd, cjson.encode({ id = w.id, job = wire_job(job) }) .. "\n")
    if not ok then
      local status = retire(self, w, 9)
      finish(w, { status = "failed", error = describe_exit(status) .. ": " .. tostring(err),
        error_kind = "WorkerCrash" })
      return "dead"
    end
    return true
  end

  local function fill()
    -- keep `nworkers` busy workers while jobs are waiting
    for _, w in ipairs(self.workers) do
      if not w.job and next_job <= #jobs then dispatch(w) end
    end
    while #self.workers < nworkers and next_job <= #jobs do
      local w, err = spawn(self)
      if not w then
        if #self.workers == 0 then return nil, err end
        break
      end
      dispatch(w)
    end
    return true
  end

  local ok, err = fill()
  if not ok then return nil, err end
  while remaining > 0 do
    local now = core.proc_clock()
    local wait = -1
    local fds = {}
    for _, w in ipairs(self.workers) do
      if w.job then
        fds[#fds + 1] = w.rfd
        if w.deadline then
          local ms = math.max(0, math.ceil((w.deadline - now) * 1000))
          if wait < 0 or ms < wait then wait = ms end
        end
      end
    end
    local ready = {}
    if #fds > 0 then
      ready, err = core.proc_poll(fds, wait)
      if not ready then return nil, err end
    end
    for _, fd in ipairs(ready) do
      local w = self.by_fd[fd]
      local data = w and core.proc_read(fd, 65536)
      if w and (data == nil or data == "") then
        local status = retire(self, w)
        finish(w, { status = "failed", error = describe_exit(status), error_kind = "WorkerCrash" })
      elseif w then
        w.buf = w.buf .. data
        while w.job do
          local nl = w.buf:find("\n", 1, true)
          if not nl then break end
          local line = w.buf:sub(1, nl - 1)
          w.buf = w.buf:sub(nl + 1)
          local dok, msg = pcall(cjson.decode, line)
          if dok and type(msg) == "table" and msg.id == w.id and type(msg.result) == "table" then
            finish(w, msg.result)
          end
        end
      end
    end
    now = core.proc_clock()
    for i = #self.workers, 1, -1 do
      local w = self.workers[i]
      if w and w.job and w.deadline and now >= w.deadline then
        retire(self, w, 9)
        local t = w.deadline - w.started
        finish(w, { status = "failed", error = string.format("timed out after %gs", t), error_kind = "Timeout" })
      end
    end
    ok, err = fill()
    if not ok and remaining > 0 then
      -- no worker could be started: fail the rest instead of spinning
      while next_job <= #jobs do
        local job = jobs[next_job]
        next_job = next_job + 1
        remaining = remaining - 1
        if opts.on_done then
          opts.on_done(job, { status = "failed", error = tostring(err), error_kind = "WorkerCrash", seconds = 0 })
        end
      end
    end
  end
  for i = #self.workers, 1, -1 do retire(self, self.workers[i]) end
  return true
end

return pool
