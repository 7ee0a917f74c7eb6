/*
 * core.c - luaopen_actionqueue_storage_core: the module table.
 * One sorted luaL_Reg table; the functions live in the file named by their prefix.
 */
#include "aqs.h"

static const luaL_Reg core_funcs[] = {
  /* keep sorted by name */
  {NULL, NULL}
};

int luaopen_actionqueue_storage_core(lua_State *L) {
  luaL_newlib(L, core_funcs);
  lua_pushliteral(L, AQS_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
