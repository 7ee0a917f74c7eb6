/*
 * u64.c - unsigned 64-bit text conversions. Lua integers are signed; a u64 above
 * 2^63-1 is kept as the same bit pattern, so printing and parsing need help.
 */
#include "aqs.h"

#include <stdio.h>

/* u64_tostring(n) -> decimal text of n read as unsigned. */
int aqs_u64_tostring(lua_State *L) {
  char buf[24];
  lua_Unsigned n = (lua_Unsigned)luaL_checkinteger(L, 1);
  snprintf(buf, sizeof buf, "%llu", (unsigned long long)n);
  lua_pushstring(L, buf);
  return 1;
}

/* u64_parse(s) -> integer with the bit pattern of the unsigned value, or nil when s
 * is not 1..20 decimal digits or exceeds 18446744073709551615. */
int aqs_u64_parse(lua_State *L) {
  size_t len, i;
  const char *s = luaL_checklstring(L, 1, &len);
  unsigned long long v = 0;
  if (len == 0) { lua_pushnil(L); return 1; }
  for (i = 0; i < len; i++) {
    unsigned d;
    if (s[i] < '0' || s[i] > '9') { lua_pushnil(L); return 1; }
    d = (unsigned)(s[i] - '0');
    if (v > (18446744073709551615ULL - d) / 10) { lua_pushnil(L); return 1; }
    v = v * 10 + d;
  }
  lua_pushinteger(L, (lua_Integer)(lua_Unsigned)v);
  return 1;
}
