/*
 * harness.c - the one libFuzzer entry point behind every fuzz target.
 *
 * Each target is this file compiled with -DAQS_FUZZ_TARGET="<name>": it opens one Lua
 * state, links the C core statically (every csrc file, instrumented like this file), loads
 * fuzz/<name>.lua, which returns a function(data), and calls it once per input.  The
 * Lua side drives the decoder exactly like the library does (schema modules and all)
 * and raises on a broken property; a raised error aborts, so libFuzzer records it as a
 * crash next to real memory errors found by ASan/UBSan.
 *
 * AQS_ROOT (compile time, overridable by the AQS_ROOT environment variable) is the
 * repository root, used to find lua/ and fuzz/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#ifndef AQS_FUZZ_TARGET
#error "compile with -DAQS_FUZZ_TARGET=\"name\""
#endif
#ifndef AQS_ROOT
#define AQS_ROOT "."
#endif

int luaopen_actionqueue_storage_core(lua_State *L);

static lua_State *L;
static int fn_ref = LUA_NOREF;
static unsigned long runs;

static void die(const char *what) {
  fprintf(stderr, "fuzz harness (%s): %s: %s\n", AQS_FUZZ_TARGET, what, lua_tostring(L, -1));
  abort();
}

static void setup(void) {
  const char *root = getenv("AQS_ROOT");
  if (!root || !*root) root = AQS_ROOT;
  L = luaL_newstate();
  if (!L) abort();
  luaL_openlibs(L);
  /* The static core answers `require "actionqueue.storage.core"`. */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_actionqueue_storage_core);
  lua_setfield(L, -2, "actionqueue.storage.core");
  lua_pop(L, 1);
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/fuzz/?.lua", root, root, root);
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  lua_pushfstring(L, "%s/fuzz/%s.lua", root, AQS_FUZZ_TARGET);
  if (luaL_loadfile(L, lua_tostring(L, -1)) != LUA_OK) die("load");
  lua_remove(L, -2);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) die("init");
  if (!lua_isfunction(L, -1)) { lua_pushliteral(L, "script must return a function"); die("init"); }
  fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  setup();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) setup();
  lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) die("property violated");
  /* Keep the heap small and deterministic enough for leak detection at exit. */
  if (++runs % 256 == 0) lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
