/*
 * crc32.c - CRC-32/ISO-HDLC through zlib (the frame checksum of both formats).
 */
#include "aqs.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

uint32_t aqs_crc32_update(uint32_t crc, const void *data, size_t len) {
  const Bytef *p = (const Bytef *)data;
  uLong c = crc;
  /* zlib's length is a uInt; feed huge inputs in slices. */
  while (len > 0) {
    uInt n = len > 0x40000000u ? 0x40000000u : (uInt)len;
    c = crc32(c, p, n);
    p += n;
    len -= n;
  }
  return (uint32_t)c;
}

/* crc32(data [, crc]) -> integer; pass the previous result to continue a stream. */
int aqs_crc32(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_Integer prev = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, prev >= 0 && prev <= 0xFFFFFFFF, 2, "crc must be in 0..0xFFFFFFFF");
  lua_pushinteger(L, (lua_Integer)aqs_crc32_update((uint32_t)prev, s, len));
  return 1;
}

/* _bench_crc32_c(size, iterations) -> seconds, crc: zlib timed directly in C, the
 * yardstick bench/core_bench.lua compares the Lua binding against. */
int aqs_bench_crc32_c(lua_State *L) {
  lua_Integer size = luaL_checkinteger(L, 1);
  lua_Integer iters = luaL_checkinteger(L, 2);
  unsigned char *buf;
  struct timespec t0, t1;
  uint32_t crc = 0;
  lua_Integer i;
  luaL_argcheck(L, size > 0 && size <= ((lua_Integer)1 << 32), 1, "size out of range");
  luaL_argcheck(L, iters > 0, 2, "iterations must be positive");
  buf = (unsigned char *)malloc((size_t)size);
  if (buf == NULL) return luaL_error(L, "out of memory");
  for (i = 0; i < size; i++) buf[i] = (unsigned char)(i * 131u + 7u);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (i = 0; i < iters; i++) crc = aqs_crc32_update(crc, buf, (size_t)size);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  free(buf);
  lua_pushnumber(L, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  lua_pushinteger(L, (lua_Integer)crc);
  return 2;
}

/* _monotonic() -> seconds on CLOCK_MONOTONIC, for the benchmarks' wall-clock timing. */
int aqs_monotonic(lua_State *L) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  lua_pushnumber(L, (double)t.tv_sec + (double)t.tv_nsec / 1e9);
  return 1;
}
