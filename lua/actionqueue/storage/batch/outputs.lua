--- Job outputs: canonical paths, one writer per output, the directories outputs go into.
-- Two jobs of one run that write the same file would race (each job's atomic write is
-- whole, but which one wins is luck, and a resume would skip one of them on the other's
-- checksum), so a job list where two jobs name one output is refused before anything
-- runs. Paths are compared in canonical form: the real path of the output's directory
-- (symbolic links and `.`/`..` resolved, as far as the directory exists) plus its
-- basename, so `out/a.snap`, `./out/../out/a.snap` and `link-to-out/a.snap` are one file.
-- @module actionqueue.storage.batch.outputs
local lfs = require "lfs"

local outputs = {}

local MAX_LINKS = 40 -- like the kernel's ELOOP limit

local function components(path, list)
  for c in path:gmatch("[^/]+") do list[#list + 1] = c end
  return list
end

--- The real path of a directory: symbolic links and `.`/`..` resolved component by
-- component; components that do not exist (yet) are kept as written.
-- @tparam string dir
-- @treturn string absolute path
function outputs.realdir(dir)
  if dir:sub(1, 1) ~= "/" then dir = (lfs.currentdir() or "") .. "/" .. dir end
  local todo = components(dir, {})
  local done, links = {}, 0
  local i = 1
  while i <= #todo do
    local c = todo[i]
    i = i + 1
    if c == ".." then
      done[#done] = nil
    elseif c ~= "." then
      local here = "/" .. table.concat(done, "/") .. (#done > 0 and "/" or "") .. c
      if links < MAX_LINKS and lfs.symlinkattributes(here, "mode") == "link" then
        links = links + 1
        local target = lfs.symlinkattributes(here, "target") or c
        if target:sub(1, 1) == "/" then done = {} end
        -- the link's target replaces it; what follows the link is resolved after it
        local rest = components(target, {})
        for k = i, #todo do rest[#rest + 1] = todo[k] end
        todo, i = rest, 1
      else
        done[#done + 1] = c
      end
    end
  end
  return "/" .. table.concat(done, "/")
end

--- Canonical form of a file path: `outputs.realdir` of its directory + its basename.
-- @tparam string path
-- @treturn string
function outputs.canonical(path)
  local dir, base = path:match("^(.*)/([^/]*)$")
  if not dir then dir, base = ".", path end
  if dir == "" then dir = "/" end
  local real = outputs.realdir(dir)
  return (real == "/" and "" or real) .. "/" .. base
end

--- Refuses a job list in which two jobs write the same output.
-- @tparam table jobs normalised jobs (`output_path` set for jobs with an output)
-- @treturn boolean true
-- @return nil, message naming both jobs (`jobs[2] and jobs[5] write the same output ...`)
function outputs.check_unique(jobs)
  local seen = {}
  for _, job in ipairs(jobs) do
    if job.output_path then
      local c = outputs.canonical(job.output_path)
      local first = seen[c]
      if first then
        return nil, string.format("jobs[%d] and jobs[%d] write the same output %s%s: two jobs of one run "
          .. "must not write one file", first.index, job.index, job.output,
          first.output ~= job.output and string.format(" (also named %s)", first.output) or "")
      end
      seen[c] = job
    end
  end
  return true
end

return outputs
