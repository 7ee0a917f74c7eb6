-- luarocks --lua-version 5.4 make --deps-mode none rockspec/actionqueue-storage-scm-1.rockspec
-- The module list between the GENERATED markers is written by rockspec/update.lua
-- (`make rockspec`, run by `make build`); spec/core_build_spec.lua checks it.
rockspec_format = "3.0"
package = "actionqueue-storage"
version = "scm-1"
source = {
  url = "git+file:///work/main",
  branch = "main",
}
description = {
  summary = "Read, write, check and repair ActionQueue snapshots and WALs from Lua",
  detailed = [[
    A Lua 5.4 implementation of the ActionQueue storage formats (snapshot v4/schema v8
    and WAL v5) with a small C core for framing, CRC-32, durable atomic replace and
    append-only logs, plus the aqstore command line tool.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4",
  "lua-cjson",
}
external_dependencies = {
  ZLIB = { header = "zlib.h", library = "z" },
}
build = {
  type = "builtin",
  modules = {
    -- BEGIN GENERATED (rockspec/update.lua)
    ["actionqueue.storage.core"] = {
      sources = {
        "csrc/atomic_writer.c",
        "csrc/core.c",
        "csrc/crc32.c",
        "csrc/frame.c",
        "csrc/framed_log.c",
        "csrc/io.c",
        "csrc/postcard.c",
        "csrc/process.c",
        "csrc/u64.c",
      },
      defines = { "_GNU_SOURCE" },
      libraries = { "z" },
      incdirs = { "$(ZLIB_INCDIR)" },
      libdirs = { "$(ZLIB_LIBDIR)" },
    },
    ["actionqueue.storage"] = "lua/actionqueue/storage/init.lua",
    ["actionqueue.storage.batch.fingerprint"] = "lua/actionqueue/storage/batch/fingerprint.lua",
    ["actionqueue.storage.batch.jobfile"] = "lua/actionqueue/storage/batch/jobfile.lua",
    ["actionqueue.storage.batch.kinds"] = "lua/actionqueue/storage/batch/kinds.lua",
    ["actionqueue.storage.batch.pool"] = "lua/actionqueue/storage/batch/pool.lua",
    ["actionqueue.storage.batch.progress"] = "lua/actionqueue/storage/batch/progress.lua",
    ["actionqueue.storage.batch.report"] = "lua/actionqueue/storage/batch/report.lua",
    ["actionqueue.storage.batch.resume"] = "lua/actionqueue/storage/batch/resume.lua",
    ["actionqueue.storage.batch.scan"] = "lua/actionqueue/storage/batch/scan.lua",
    ["actionqueue.storage.batch.shard"] = "lua/actionqueue/storage/batch/shard.lua",
    ["actionqueue.storage.batch.worker"] = "lua/actionqueue/storage/batch/worker.lua",
    ["actionqueue.storage.cli"] = "lua/actionqueue/storage/cli/init.lua",
    ["actionqueue.storage.errors"] = "lua/actionqueue/storage/errors.lua",
    ["actionqueue.storage.inspect.diff"] = "lua/actionqueue/storage/inspect/diff.lua",
    ["actionqueue.storage.inspect.fmt"] = "lua/actionqueue/storage/inspect/fmt.lua",
    ["actionqueue.storage.inspect.json"] = "lua/actionqueue/storage/inspect/json.lua",
    ["actionqueue.storage.inspect.path"] = "lua/actionqueue/storage/inspect/path.lua",
    ["actionqueue.storage.inspect.show"] = "lua/actionqueue/storage/inspect/show.lua",
    ["actionqueue.storage.inspect.stats"] = "lua/actionqueue/storage/inspect/stats.lua",
    ["actionqueue.storage.inspect.view"] = "lua/actionqueue/storage/inspect/view.lua",
    ["actionqueue.storage.recovery.state"] = "lua/actionqueue/storage/recovery/state.lua",
    ["actionqueue.storage.schema"] = "lua/actionqueue/storage/schema/init.lua",
    ["actionqueue.storage.schema.dsl"] = "lua/actionqueue/storage/schema/dsl.lua",
    ["actionqueue.storage.schema.snapshot"] = "lua/actionqueue/storage/schema/snapshot.lua",
    ["actionqueue.storage.schema.types"] = "lua/actionqueue/storage/schema/types.lua",
    ["actionqueue.storage.schema.wal"] = "lua/actionqueue/storage/schema/wal.lua",
    ["actionqueue.storage.snapshot.validate"] = "lua/actionqueue/storage/snapshot/validate.lua",
    ["actionqueue.storage.statemachine"] = "lua/actionqueue/storage/statemachine.lua",
    ["actionqueue.storage.uuid"] = "lua/actionqueue/storage/uuid.lua",
    -- END GENERATED
  },
  install = {
    bin = { aqstore = "scripts/aqstore" },
  },
}
