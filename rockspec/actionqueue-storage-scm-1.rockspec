-- luarocks --lua-version 5.4 make --deps-mode none rockspec/actionqueue-storage-scm-1.rockspec
-- The module list between the GENERATED markers is written by rockspec/update.lua
-- (`make rockspec`); spec/core_build_spec.lua and `make install` check it.
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
  "argparse",
  "lua-cjson",
  "luafilesystem",
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
        "csrc/json_decode.c",
        "csrc/json_encode.c",
        "csrc/json_schema.c",
        "csrc/json_uuid.c",
        "csrc/mem_budget.c",
        "csrc/postcard.c",
        "csrc/process.c",
        "csrc/signals.c",
        "csrc/u64.c",
        "csrc/verdict.c",
      },
      defines = { "_GNU_SOURCE" },
      libraries = { "z" },
      incdirs = { "$(ZLIB_INCDIR)" },
      libdirs = { "$(ZLIB_LIBDIR)" },
    },
    ["actionqueue.storage"] = "lua/actionqueue/storage/init.lua",
    ["actionqueue.storage.batch"] = "lua/actionqueue/storage/batch/init.lua",
    ["actionqueue.storage.batch.fingerprint"] = "lua/actionqueue/storage/batch/fingerprint.lua",
    ["actionqueue.storage.batch.jobfile"] = "lua/actionqueue/storage/batch/jobfile.lua",
    ["actionqueue.storage.batch.kinds"] = "lua/actionqueue/storage/batch/kinds.lua",
    ["actionqueue.storage.batch.outputs"] = "lua/actionqueue/storage/batch/outputs.lua",
    ["actionqueue.storage.batch.pool"] = "lua/actionqueue/storage/batch/pool.lua",
    ["actionqueue.storage.batch.progress"] = "lua/actionqueue/storage/batch/progress.lua",
    ["actionqueue.storage.batch.report"] = "lua/actionqueue/storage/batch/report.lua",
    ["actionqueue.storage.batch.resume"] = "lua/actionqueue/storage/batch/resume.lua",
    ["actionqueue.storage.batch.scan"] = "lua/actionqueue/storage/batch/scan.lua",
    ["actionqueue.storage.batch.shard"] = "lua/actionqueue/storage/batch/shard.lua",
    ["actionqueue.storage.batch.worker"] = "lua/actionqueue/storage/batch/worker.lua",
    ["actionqueue.storage.cjson_plain"] = "lua/actionqueue/storage/cjson_plain.lua",
    ["actionqueue.storage.cli"] = "lua/actionqueue/storage/cli/init.lua",
    ["actionqueue.storage.cli.batch"] = "lua/actionqueue/storage/cli/batch.lua",
    ["actionqueue.storage.cli.build"] = "lua/actionqueue/storage/cli/build.lua",
    ["actionqueue.storage.cli.check"] = "lua/actionqueue/storage/cli/check.lua",
    ["actionqueue.storage.cli.compact"] = "lua/actionqueue/storage/cli/compact.lua",
    ["actionqueue.storage.cli.diff"] = "lua/actionqueue/storage/cli/diff.lua",
    ["actionqueue.storage.cli.dump"] = "lua/actionqueue/storage/cli/dump.lua",
    ["actionqueue.storage.cli.inspect"] = "lua/actionqueue/storage/cli/inspect.lua",
    ["actionqueue.storage.cli.recover"] = "lua/actionqueue/storage/cli/recover.lua",
    ["actionqueue.storage.cli.repl"] = "lua/actionqueue/storage/cli/repl.lua",
    ["actionqueue.storage.cli.rewrite"] = "lua/actionqueue/storage/cli/rewrite.lua",
    ["actionqueue.storage.cli.show"] = "lua/actionqueue/storage/cli/show.lua",
    ["actionqueue.storage.cli.stats"] = "lua/actionqueue/storage/cli/stats.lua",
    ["actionqueue.storage.cli.validate"] = "lua/actionqueue/storage/cli/validate.lua",
    ["actionqueue.storage.cli.verify"] = "lua/actionqueue/storage/cli/verify.lua",
    ["actionqueue.storage.cli.wal"] = "lua/actionqueue/storage/cli/wal.lua",
    ["actionqueue.storage.datadir"] = "lua/actionqueue/storage/datadir.lua",
    ["actionqueue.storage.errors"] = "lua/actionqueue/storage/errors.lua",
    ["actionqueue.storage.filekind"] = "lua/actionqueue/storage/filekind.lua",
    ["actionqueue.storage.fsutil"] = "lua/actionqueue/storage/fsutil.lua",
    ["actionqueue.storage.inspect"] = "lua/actionqueue/storage/inspect/init.lua",
    ["actionqueue.storage.inspect.datadir"] = "lua/actionqueue/storage/inspect/datadir.lua",
    ["actionqueue.storage.inspect.diff"] = "lua/actionqueue/storage/inspect/diff.lua",
    ["actionqueue.storage.inspect.fmt"] = "lua/actionqueue/storage/inspect/fmt.lua",
    ["actionqueue.storage.inspect.help"] = "lua/actionqueue/storage/inspect/help.lua",
    ["actionqueue.storage.inspect.json"] = "lua/actionqueue/storage/inspect/json.lua",
    ["actionqueue.storage.inspect.path"] = "lua/actionqueue/storage/inspect/path.lua",
    ["actionqueue.storage.inspect.show"] = "lua/actionqueue/storage/inspect/show.lua",
    ["actionqueue.storage.inspect.stats"] = "lua/actionqueue/storage/inspect/stats.lua",
    ["actionqueue.storage.inspect.view"] = "lua/actionqueue/storage/inspect/view.lua",
    ["actionqueue.storage.recovery"] = "lua/actionqueue/storage/recovery/init.lua",
    ["actionqueue.storage.recovery.bootstrap"] = "lua/actionqueue/storage/recovery/bootstrap.lua",
    ["actionqueue.storage.recovery.reducer"] = "lua/actionqueue/storage/recovery/reducer.lua",
    ["actionqueue.storage.recovery.state"] = "lua/actionqueue/storage/recovery/state.lua",
    ["actionqueue.storage.recovery.to_snapshot"] = "lua/actionqueue/storage/recovery/to_snapshot.lua",
    ["actionqueue.storage.sandbox"] = "lua/actionqueue/storage/sandbox.lua",
    ["actionqueue.storage.schema"] = "lua/actionqueue/storage/schema/init.lua",
    ["actionqueue.storage.schema.compile"] = "lua/actionqueue/storage/schema/compile.lua",
    ["actionqueue.storage.schema.cron"] = "lua/actionqueue/storage/schema/cron.lua",
    ["actionqueue.storage.schema.dsl"] = "lua/actionqueue/storage/schema/dsl.lua",
    ["actionqueue.storage.schema.snapshot"] = "lua/actionqueue/storage/schema/snapshot.lua",
    ["actionqueue.storage.schema.types"] = "lua/actionqueue/storage/schema/types.lua",
    ["actionqueue.storage.schema.wal"] = "lua/actionqueue/storage/schema/wal.lua",
    ["actionqueue.storage.snapshot"] = "lua/actionqueue/storage/snapshot/init.lua",
    ["actionqueue.storage.snapshot.build"] = "lua/actionqueue/storage/snapshot/build.lua",
    ["actionqueue.storage.snapshot.codec"] = "lua/actionqueue/storage/snapshot/codec.lua",
    ["actionqueue.storage.snapshot.load"] = "lua/actionqueue/storage/snapshot/load.lua",
    ["actionqueue.storage.snapshot.validate"] = "lua/actionqueue/storage/snapshot/validate.lua",
    ["actionqueue.storage.snapshot.write"] = "lua/actionqueue/storage/snapshot/write.lua",
    ["actionqueue.storage.statemachine"] = "lua/actionqueue/storage/statemachine.lua",
    ["actionqueue.storage.tablex"] = "lua/actionqueue/storage/tablex.lua",
    ["actionqueue.storage.u64"] = "lua/actionqueue/storage/u64.lua",
    ["actionqueue.storage.uuid"] = "lua/actionqueue/storage/uuid.lua",
    ["actionqueue.storage.wal"] = "lua/actionqueue/storage/wal/init.lua",
    ["actionqueue.storage.wal.appender"] = "lua/actionqueue/storage/wal/appender.lua",
    ["actionqueue.storage.wal.codec"] = "lua/actionqueue/storage/wal/codec.lua",
    ["actionqueue.storage.wal.reader"] = "lua/actionqueue/storage/wal/reader.lua",
    ["actionqueue.storage.wal.repair"] = "lua/actionqueue/storage/wal/repair.lua",
    -- END GENERATED
  },
  install = {
    bin = { aqstore = "scripts/aqstore" },
  },
}
