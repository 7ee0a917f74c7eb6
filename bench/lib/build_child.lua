--- One whole process for the "build 100k" row of bench/snapshot_bench.lua: makes issue
-- 15 item 6's friendly input (N tasks + N runs), then times `snapshot.build` of it
-- (with its validation, as by default) and prints `AQS_BENCH build_wall=S build_cpu=S
-- tasks=N`. Usage: lua5.4 bench/lib/build_child.lua ROOT [N]
local root = assert(arg[1], "usage: build_child.lua ROOT [N]")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/bench/lib/?.lua;" .. package.path
package.cpath = root .. "/build/?.so;" .. package.cpath
local H = require "harness"
local core = require "actionqueue.storage.core"
local build = require("actionqueue.storage.snapshot").build

local n = tonumber(arg[2]) or 100000
local input = H.friendly_snapshot(n)
collectgarbage()
local t0, c0 = core._monotonic(), os.clock()
local s = assert(build(input))
local wall, cpu = core._monotonic() - t0, os.clock() - c0
assert(#s.tasks == n and #s.runs == n)
print(("AQS_BENCH build_wall=%.4f build_cpu=%.4f tasks=%d"):format(wall, cpu, n))
