/*
 * core.c - luaopen_actionqueue_storage_core: the module table.
 * One sorted luaL_Reg table; the functions live in the file named by their prefix.
 */
#include "aqs.h"

static const luaL_Reg core_funcs[] = {
  /* keep sorted by name */
  {"_alloc_selftest", aqs_alloc_selftest},
  {"_alloc_stats", aqs_alloc_stats},
  {"_bench_crc32_c", aqs_bench_crc32_c},
  {"_monotonic", aqs_monotonic},
  {"atomic_writer", aqs_atomic_writer},
  {"crc32", aqs_crc32},
  {"frame_decode", aqs_frame_decode},
  {"frame_encode", aqs_frame_encode},
  {"frame_header", aqs_frame_header},
  {"frame_read", aqs_frame_read},
  {"frames", aqs_frames},
  {"json_decode", aqs_json_decode},
  {"json_encode", aqs_json_encode},
  {"lock_file", aqs_lock_file},
  {"log_open", aqs_log_open},
  {"mem_budget", aqs_mem_budget},
  {"postcard_decode", aqs_postcard_decode},
  {"postcard_encode", aqs_postcard_encode},
  {"proc_clock", aqs_proc_clock},
  {"proc_close", aqs_proc_close},
  {"proc_fsync", aqs_proc_fsync},
  {"proc_ignore_sigpipe", aqs_proc_ignore_sigpipe},
  {"proc_info", aqs_proc_info},
  {"proc_isatty", aqs_proc_isatty},
  {"proc_kill", aqs_proc_kill},
  {"proc_open", aqs_proc_open},
  {"proc_poll", aqs_proc_poll},
  {"proc_read", aqs_proc_read},
  {"proc_signal_trap", aqs_proc_signal_trap},
  {"proc_signal_watch", aqs_proc_signal_watch},
  {"proc_spawn", aqs_proc_spawn},
  {"proc_wait", aqs_proc_wait},
  {"proc_write", aqs_proc_write},
  {"replay_state", aqs_replay_state},
  {"schema", aqs_schema},
  {"schema_check", aqs_schema_check},
  {"schema_kinds", aqs_schema_kinds},
  {"snapshot_read", aqs_snapshot_read},
  {"snapshot_rules", aqs_snapshot_rules},
  {"snapshot_verdict", aqs_snapshot_verdict},
  {"u64_parse", aqs_u64_parse},
  {"u64_tostring", aqs_u64_tostring},
  {"uuid_parse", aqs_uuid_parse},
  {"verdict_plan", aqs_verdict_plan},
  {NULL, NULL}
};

int luaopen_actionqueue_storage_core(lua_State *L) {
  aqs_lua_alloc_install(L);  /* first: the module's own objects come from the slabs too */
  aqs_atomic_writer_init(L);
  aqs_frame_init(L);
  aqs_framed_log_init(L);
  aqs_mem_budget_init(L);
  aqs_lock_init(L);
  aqs_postcard_init(L);
  aqs_replay_init(L);
  aqs_schema_init(L);
  aqs_signal_watch_init(L);
  aqs_verdict_init(L);
  luaL_newlib(L, core_funcs);
  lua_pushliteral(L, AQS_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
