/*
 * text.c - the one UUID text parser (the reference's accepted spellings and error texts,
 * snapshot-format.md 3.3), the one UUID formatter and the one UTF-8 validity check,
 * shared by every codec (json_decode.c, json_encode.c, postcard.c).
 *
 * uuid_parse(s) -> "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" | nil, "UUID parsing failed: ..."
 */
#include "schema.h"

#include <stdio.h>
#include <string.h>

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Lower-case hex digit value | 0x10 (0 = not one). */
static const unsigned char LHEX[256] = {
  ['0'] = 0x10, ['1'] = 0x11, ['2'] = 0x12, ['3'] = 0x13, ['4'] = 0x14, ['5'] = 0x15,
  ['6'] = 0x16, ['7'] = 0x17, ['8'] = 0x18, ['9'] = 0x19, ['a'] = 0x1A, ['b'] = 0x1B,
  ['c'] = 0x1C, ['d'] = 0x1D, ['e'] = 0x1E, ['f'] = 0x1F
};

int aqs_uuid_canonical(const unsigned char *s, unsigned char out[16]) {
  static const unsigned char at[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
  unsigned all = 0x10;
  int k;
  if (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') return 0;
  for (k = 0; k < 16; k++) {
    unsigned h = LHEX[s[at[k]]], l = LHEX[s[at[k] + 1]];
    all &= h & l;
    out[k] = (unsigned char)((h & 15) << 4 | (l & 15));
  }
  return all != 0;
}

static int parse_hyphenated(const unsigned char *s, unsigned char b[16]) {
  int i, k = 0;
  for (i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return 0;
      continue;
    }
    if (hexval(s[i]) < 0 || hexval(s[i + 1]) < 0) return 0;
    b[k++] = (unsigned char)(hexval(s[i]) << 4 | hexval(s[i + 1]));
    i++;
  }
  return k == 16;
}

static int parse_simple(const unsigned char *s, unsigned char b[16]) {
  int i;
  for (i = 0; i < 16; i++) {
    int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);
    if (h < 0 || l < 0) return 0;
    b[i] = (unsigned char)(h << 4 | l);
  }
  return 1;
}

static size_t utf8_len(unsigned char c) {
  if (c < 0x80) return 1;
  if (c >= 0xF0) return 4;
  if (c >= 0xE0) return 3;
  if (c >= 0xC0) return 2;
  return 1;
}

/* The reference's detail text in err; returns its length (a found character may be a
 * NUL byte: the text is length-aware, snapshot-format.md 3.3). */
static size_t detail(const unsigned char *s, size_t n, char *err, size_t errsz) {
  const unsigned char *inner = s;
  size_t in = n, off = 0, i;
  int simple_ok = 1, hyphens = 0;
  size_t hpos[4] = {0, 0, 0, 0};
  static const size_t want_pos[4] = {8, 13, 18, 23}, start[4] = {0, 9, 14, 19};
  static const int want_len[4] = {8, 4, 4, 4};
  if (n >= 2 && s[0] == '{' && s[n - 1] == '}') {
    inner = s + 1; in = n - 2; off = 1; simple_ok = 0;
  } else if (n >= 9 && memcmp(s, "urn:uuid:", 9) == 0) {
    inner = s + 9; in = n - 9; off = 9; simple_ok = 0;
  }
  for (i = 0; i < in; i++) {
    unsigned char c = inner[i];
    if (c == '-') {
      if (hyphens < 4) hpos[hyphens] = i;
      hyphens++;
    } else if (c >= 0x80 || hexval(c) < 0) {
      size_t cl = c >= 0x80 ? utf8_len(c) : 1, k;
      int m;
      if (cl > in - i) cl = in - i;
      m = snprintf(err, errsz, "invalid character: expected an optional prefix of `urn:uuid:` "
                   "followed by [0-9a-fA-F-], found `");
      k = m > 0 && (size_t)m < errsz ? (size_t)m : 0;
      if (k + cl < errsz) { memcpy(err + k, inner + i, cl); k += cl; }
      m = snprintf(err + k, errsz - k, "` at %zu", i + off + 1);
      return k + (m > 0 ? (size_t)m : 0);
    }
  }
  if (hyphens == 0 && simple_ok) {
    snprintf(err, errsz, "invalid length: expected length 32 for simple format, found %zu", n);
    return strlen(err);
  }
  if (hyphens != 4) {
    snprintf(err, errsz, "invalid group count: expected 5, found %d", hyphens + 1);
    return strlen(err);
  }
  for (i = 0; i < 4; i++) {
    if (hpos[i] != want_pos[i]) {
      snprintf(err, errsz, "invalid group length in group %zu: expected %d, found %zu", i,
               want_len[i], hpos[i] - start[i]);
      return strlen(err);
    }
  }
  snprintf(err, errsz, "invalid group length in group 4: expected 12, found %zu", in - 24);
  return strlen(err);
}

int aqs_uuid_bytes(const char *str, size_t n, unsigned char b[16]) {
  const unsigned char *s = (const unsigned char *)str;
  switch (n) {
    case 32: return parse_simple(s, b);
    case 36: return aqs_uuid_canonical(s, b) || parse_hyphenated(s, b);
    case 38: return s[0] == '{' && s[37] == '}' && parse_hyphenated(s + 1, b);
    case 45: return memcmp(s, "urn:uuid:", 9) == 0 && parse_hyphenated(s + 9, b);
    default: return 0;
  }
}

void aqs_uuid_format(const unsigned char b[16], char out[36]) {
  static const char HEX[] = "0123456789abcdef";
  int i, k = 0;
  for (i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[k++] = '-';
    out[k++] = HEX[b[i] >> 4];
    out[k++] = HEX[b[i] & 15];
  }
}

int aqs_uuid_text(const char *str, size_t n, char out[37], char *err, size_t errsz, size_t *errlen) {
  unsigned char b[16];
  if (!aqs_uuid_bytes(str, n, b)) {
    size_t len = detail((const unsigned char *)str, n, err, errsz);
    if (errlen) *errlen = len;
    return 0;
  }
  aqs_uuid_format(b, out);
  out[36] = '\0';
  return 1;
}

int aqs_utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) { i++; continue; }
    if (c >= 0xC2 && c <= 0xDF) {
      if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
      i += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      unsigned char c1;
      if (i + 2 >= n) return 0;
      c1 = s[i + 1];
      if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) return 0;
      if (c == 0xE0 && c1 < 0xA0) return 0;          /* overlong */
      if (c == 0xED && c1 >= 0xA0) return 0;         /* surrogate */
      i += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      unsigned char c1;
      if (i + 3 >= n) return 0;
      c1 = s[i + 1];
      if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80) return 0;
      if (c == 0xF0 && c1 < 0x90) return 0;
      if (c == 0xF4 && c1 >= 0x90) return 0;
      i += 4;
    } else {
      return 0;
    }
  }
  return 1;
}

/* uuid_parse(s) -> canonical string | nil, error text */
int aqs_uuid_parse(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char out[37], err[256];
  size_t errlen = 0;
  if (aqs_uuid_text(s, n, out, err, sizeof err, &errlen)) {
    lua_pushlstring(L, out, 36);
    return 1;
  }
  lua_pushnil(L);
  lua_pushliteral(L, "UUID parsing failed: ");
  lua_pushlstring(L, err, errlen);
  lua_concat(L, 2);
  return 2;
}
