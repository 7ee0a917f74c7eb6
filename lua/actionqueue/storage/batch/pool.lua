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
  local w = { pid = pid, wfd = wfd, rfd = rfd, buf = "", queue = {} }
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
  if status == nil then return "worker died" end
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
-- Each worker has up to `depth` jobs in flight (default 2): while it runs one, the next is
-- already in its pipe, so a worker never waits for the runner between jobs. The job at the
-- head of a worker's queue is the one running; its deadline starts when it becomes head.
-- When a worker crashes or times out, only its running job fails; the jobs queued behind
-- it go back to the pending list.
-- @tparam table jobs normalised jobs
-- @tparam table opts `workers` (count), `timeout` (seconds, default none), `depth`,
--   `lua` (interpreter), `on_done(job, result)` called as each job finishes, in finishing order
-- @treturn boolean true
-- @return nil, message when no worker could be started
function pool.run(jobs, opts)
  opts = opts or {}
  core.proc_ignore_sigpipe()
  local self = { workers = {}, by_fd = {}, lua = opts.lua or pool.interpreter() }
  local nworkers = math.max(1, math.min(opts.workers or 1, #jobs))
  local depth = math.max(1, opts.depth or 2)
  local pending = {} -- stack of jobs to run again (queued behind a failed job), taken first
  local next_job, remaining, next_id = 1, #jobs, 0
  if remaining == 0 then return true end

  local function has_work() return #pending > 0 or next_job <= #jobs end
  local function take()
    if #pending > 0 then return table.remove(pending) end
    local job = jobs[next_job]
    next_job = next_job + 1
    return job
  end

  local function start_head(w, now)
    local head = w.queue[1]
    if not head then return end
    head.started = now
    local t = head.job.timeout or opts.timeout
    head.deadline = t and (now + t) or nil
  end

  local function finish(job, started, result)
    result.seconds = core.proc_clock() - started
    remaining = remaining - 1
    if opts.on_done then opts.on_done(job, result) end
  end

  -- The worker is gone: its running job fails with `result`, the queued ones are retried.
  local function lost(w, result, sig)
    local status = retire(self, w, sig)
    if result.error == nil then result.error = describe_exit(status) end
    local head = table.remove(w.queue, 1)
    for k = #w.queue, 1, -1 do pending[#pending + 1] = w.queue[k].job end
    w.queue = {}
    if head then finish(head.job, head.started, result) end
  end

  local function dispatch(w)
    while not w.broken and #w.queue < depth and has_work() do
      local job = take()
      next_id = next_id + 1
      w.queue[#w.queue + 1] = { job = job, id = next_id }
      if #w.queue == 1 then start_head(w, core.proc_clock()) end
      local ok, err = core.proc_write(w.wfd, cjson.encode({ id = next_id, job = wire_job(job) }) .. "\n")
      if not ok then
        -- the worker is gone (EPIPE): put the job back; reading its pipe reports the exit
        local unsent = table.remove(w.queue)
        pending[#pending + 1] = unsent.job
        w.broken = err
        return false
      end
    end
    return true
  end

  local function fill()
    for i = #self.workers, 1, -1 do
      local w = self.workers[i]
      if w.broken and #w.queue == 0 then
        retire(self, w)
      elseif has_work() then
        dispatch(w)
      end
    end
    while #self.workers < nworkers and has_work() do
      local w, err = spawn(self)
      if not w then
        if #self.workers == 0 then return nil, err end
        break
      end
      w.queue = {}
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
      if #w.queue > 0 then
        fds[#fds + 1] = w.rfd
        local d = w.queue[1].deadline
        if d then
          local ms = math.max(0, math.ceil((d - now) * 1000))
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
        lost(w, { status = "failed", error_kind = "WorkerCrash" })
      elseif w then
        w.buf = w.buf .. data
        while #w.queue > 0 do
          local nl = w.buf:find("\n", 1, true)
          if not nl then break end
          local line = w.buf:sub(1, nl - 1)
          w.buf = w.buf:sub(nl + 1)
          local dok, msg = pcall(cjson.decode, line)
          local head = w.queue[1]
          if dok and type(msg) == "table" and msg.id == head.id and type(msg.result) == "table" then
            table.remove(w.queue, 1)
            start_head(w, core.proc_clock())
            for k, v in pairs(msg.result) do
              if math.type(v) == "float" then msg.result[k] = math.tointeger(v) or v end
            end
            finish(head.job, head.started, msg.result)
          end
        end
      end
    end
    now = core.proc_clock()
    for i = #self.workers, 1, -1 do
      local w = self.workers[i]
      local head = w and w.queue[1]
      if head and head.deadline and now >= head.deadline then
        lost(w, { status = "failed", error_kind = "Timeout",
          error = string.format("timed out after %gs", head.deadline - head.started) }, 9)
      end
    end
    ok, err = fill()
    if not ok and remaining > 0 then
      -- no worker could be started: fail the rest instead of spinning
      while has_work() do
        local job = take()
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
