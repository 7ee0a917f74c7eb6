/*
 * crc32.c - CRC-32/ISO-HDLC through zlib (the frame checksum of both formats).
 */
#include "aqs.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define AQS_CRC_CLMUL 1
#include <emmintrin.h>
#include <smmintrin.h>
#include <wmmintrin.h>

/* Carry-less multiplication folding (Intel, "Fast CRC Computation for Generic
 * Polynomials Using PCLMULQDQ"; the bit-reflected CRC-32 constants as in Chromium's
 * zlib crc32_simd.c).  len >= 64 and a multiple of 16; crc is the pre-inverted state. */
__attribute__((target("pclmul,sse4.1")))
static uint32_t crc32_clmul(const unsigned char *buf, size_t len, uint32_t crc) {
  static const uint64_t __attribute__((aligned(16))) k1k2[] = { 0x0154442bd4, 0x01c6e41596 };
  static const uint64_t __attribute__((aligned(16))) k3k4[] = { 0x01751997d0, 0x00ccaa009e };
  static const uint64_t __attribute__((aligned(16))) k5k0[] = { 0x0163cd6124, 0x0000000000 };
  static const uint64_t __attribute__((aligned(16))) poly[] = { 0x01db710641, 0x01f7011641 };
  __m128i x0, x1, x2, x3, x4, x5, x6, x7, x8, y5, y6, y7, y8;
  x1 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
  x2 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
  x3 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
  x4 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
  x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
  x0 = _mm_load_si128((const __m128i *)k1k2);
  buf += 64;
  len -= 64;
  while (len >= 64) {
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x6 = _mm_clmulepi64_si128(x2, x0, 0x00);
    x7 = _mm_clmulepi64_si128(x3, x0, 0x00);
    x8 = _mm_clmulepi64_si128(x4, x0, 0x00);
    x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
    x2 = _mm_clmulepi64_si128(x2, x0, 0x11);
    x3 = _mm_clmulepi64_si128(x3, x0, 0x11);
    x4 = _mm_clmulepi64_si128(x4, x0, 0x11);
    y5 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
    y6 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
    y7 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
    y8 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x5), y5);
    x2 = _mm_xor_si128(_mm_xor_si128(x2, x6), y6);
    x3 = _mm_xor_si128(_mm_xor_si128(x3, x7), y7);
    x4 = _mm_xor_si128(_mm_xor_si128(x4, x8), y8);
    buf += 64;
    len -= 64;
  }
  x0 = _mm_load_si128((const __m128i *)k3k4);
  x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
  x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
  x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
  x1 = _mm_xor_si128(_mm_xor_si128(x1, x3), x5);
  x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
  x1 = _mm_xor_si128(_mm_xor_si128(x1, x4), x5);
  while (len >= 16) {
    x2 = _mm_loadu_si128((const __m128i *)buf);
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
    buf += 16;
    len -= 16;
  }
  x2 = _mm_clmulepi64_si128(x1, x0, 0x10);
  x3 = _mm_setr_epi32(~0, 0, ~0, 0);
  x1 = _mm_srli_si128(x1, 8);
  x1 = _mm_xor_si128(x1, x2);
  x0 = _mm_loadl_epi64((const __m128i *)k5k0);
  x2 = _mm_srli_si128(x1, 4);
  x1 = _mm_and_si128(x1, x3);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_xor_si128(x1, x2);
  x0 = _mm_load_si128((const __m128i *)poly);
  x2 = _mm_and_si128(x1, x3);
  x2 = _mm_clmulepi64_si128(x2, x0, 0x10);
  x2 = _mm_and_si128(x2, x3);
  x2 = _mm_clmulepi64_si128(x2, x0, 0x00);
  x1 = _mm_xor_si128(x1, x2);
  return (uint32_t)_mm_extract_epi32(x1, 1);
}

static int clmul_ok(void) {
  static int ok = -1;
  if (ok < 0) {
    __builtin_cpu_init();
    ok = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1")
         && getenv("AQS_NO_CLMUL") == NULL;
  }
  return ok;
}
#endif

uint32_t aqs_crc32_update(uint32_t crc, const void *data, size_t len) {
  const Bytef *p = (const Bytef *)data;
  uLong c = crc;
#ifdef AQS_CRC_CLMUL
  /* Large inputs (snapshot payloads): folded with PCLMULQDQ, the tail through zlib. */
  if (len >= 256 && clmul_ok()) {
    size_t chunk = len & ~(size_t)15;
    c = ~crc32_clmul(p, chunk, ~(uint32_t)c) & 0xFFFFFFFFu;
    p += chunk;
    len -= chunk;
  }
#endif
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
