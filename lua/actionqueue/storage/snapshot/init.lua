--- Public snapshot API (the contract between modules; see docs/ARCHITECTURE.md).
--
--     local snapshot = require "actionqueue.storage.snapshot"
--     snapshot.load(path)             --> snap | false (no snapshot) | nil, err
--     snapshot.check(path)            --> {status = "ok"|"none"|"error", line = "OK tasks=N runs=M", ...}
--     snapshot.verdict(path)          --> {tasks = N, runs = M} | false | nil, err (load's outcome, no tree)
--     snapshot.decode(payload)        --> snap | nil, err
--     snapshot.encode(snap [, sink])  --> payload | true | nil, err
--     snapshot.validate(snap [, {all = true}])
--     snapshot.write(path, snap)      --> true | nil, err
--     snapshot.rewrite(input, output) --> {tasks = N, runs = M} | false | nil, err
--     snapshot.build(t)               --> snap | nil, err
--     snapshot.verify(path)           --> frame_read result table
--     snapshot.describe_frame(r)      --> one line describing a frame_read result
--
-- @module actionqueue.storage.snapshot
local codec = require "actionqueue.storage.snapshot.codec"
local load = require "actionqueue.storage.snapshot.load"
local write = require "actionqueue.storage.snapshot.write"

local snapshot = {}

snapshot.load = load.load
snapshot.check = load.check
snapshot.verdict = load.verdict
snapshot.verify = load.verify
snapshot.describe_frame = load.describe_frame
snapshot.decode = codec.decode
snapshot.encode = codec.encode
snapshot.write = write.write

--- Load + canonical atomic write in one (`aqstore rewrite`); see `snapshot.rewrite` module.
function snapshot.rewrite(input, output)
  return require("actionqueue.storage.snapshot.rewrite").rewrite(input, output)
end

--- Semantic validation (§6); see `snapshot.validate` module.
function snapshot.validate(snap, opts)
  return require("actionqueue.storage.snapshot.validate").validate(snap, opts)
end

--- Friendly tables -> full snapshot; see `snapshot.build` module.
function snapshot.build(t, opts)
  return require("actionqueue.storage.snapshot.build").build(t, opts)
end

return snapshot
