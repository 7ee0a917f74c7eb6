/*
 * schema.h - the one compiled form of a schema type table (schema/dsl.lua) that every
 * codec walks: the JSON decoder and its skim mode (json_decode.c, verdict.c's hooks), the
 * JSON encoder (json_encode.c) and the postcard codec (postcard.c).  Compiled once per
 * root table by schema.c and cached once (a weak-keyed registry table).
 */
#ifndef AQS_SCHEMA_H
#define AQS_SCHEMA_H

#include <stddef.h>
#include <stdint.h>
#include "aqs.h"

/* Type kinds.  The scalars come first (up to JK_ID): postcard's skim relies on it. */
enum {
  JK_U8, JK_U16, JK_U32, JK_U64, JK_I32, JK_BOOL, JK_STRING, JK_BYTES, JK_ID,
  JK_OPTION, JK_LIST, JK_RECORD, JK_ENUM
};

/* Field default kinds. */
enum { JD_NONE, JD_ABSENT, JD_VALUE, JD_FUNC };

typedef struct jtype jtype;

/* A record field or an enum variant. */
typedef struct {
  char *name;          /* field or variant name (NUL-terminated, owned) */
  size_t len;
  int name_ref;        /* index of the interned name string in the refs table */
  jtype *type;         /* field type; NULL for a unit variant */
  int dkind;           /* fields: JD_* */
  int dref;            /* fields: default value/function ref */
  int check_ref;       /* variants: check function ref (0 = none) */
  int skip_if_none;    /* fields: left out of the JSON output when nil (encoder only) */
  char *feature;       /* variants: build feature name (owned), NULL = always present */
  int feature_ref;     /* variants: ref of the feature name string (0 = none) */
  int index;           /* variants: the declared position (postcard's wire index) */
  int vk;              /* variants: verdict hook id (0 = none; set by verdict.c) */
} jitem;

struct jtype {
  int kind;
  char *name;          /* record/enum/id name (owned), "" otherwise */
  int64_t min, max;    /* bounded integer kinds: the range (schema.c's table of kinds) */
  jtype *of;           /* option/list element; bytes: u8 (JSON's element type) */
  int nitems;          /* record fields / enum variants (feature-gated ones left out) */
  int nall;            /* nitems + the feature-gated variants stored after them (the
                          encoders' opts.features enables them; the JSON decoder ignores
                          them) */
  jitem *items;
  int *wire;           /* enums: wire[i] = position in items of the variant declared i-th
                          (nall entries; postcard numbers variants in declaration order) */
  int lookup_ref;      /* enums: ref of a variant name -> position in items table */
  int check_ref;       /* record check function ref (0 = none) */
  char *variant_list;  /* enum: "`A` or `B`" / "one of `A`, `B`, `C`" (JSON error texts) */
  int vk;              /* records: verdict hook id (0 = none; set by verdict.c) */
  signed char vf[16];  /* records: field indexes the verdict hook reads (verdict.c) */
};

/* postcard's cache of decoded short strings and formatted UUIDs (postcard.c): slot i
 * describes entry i + 1 of the compiled schema's string table (uservalue 2). */
#define SC_SLOTS 256
#define SC_MAXLEN 40
typedef struct {
  unsigned char used, kind, len;
  unsigned char b[SC_MAXLEN];
} sc_entry;

typedef struct {
  jtype **types;
  int ntypes, cap;
  jtype *root;
  sc_entry sc[SC_SLOTS];
} jschema;

#define AQS_SCHEMA_MT "actionqueue.storage.Schema"

/* The name of a kind ("u8", "record", ...) from schema.c's one table of kinds. */
const char *aqs_kind_name(int kind);

/* Compiled schema at stack index idx (a Schema userdata, or a schema type table that is
 * compiled and cached on first use).  Replaces the value at idx by the userdata. */
jschema *aqs_schema_at(lua_State *L, int idx);
/* Pushes the refs table (strings, defaults, check functions, enum lookups) of the
 * compiled schema at idx. */
void aqs_schema_push_refs(lua_State *L, int idx);
/* Pushes the string table of postcard's short-string cache of the schema at idx. */
void aqs_schema_push_strings(lua_State *L, int idx);

/* ---- text.c: the one UUID parser/formatter and UTF-8 check of every codec ---------- */

/* UUID text in any of the reference's four spellings (snapshot-format.md 3.3: hyphenated,
 * simple, braced, urn:uuid:; hex digits of either case) -> 16 bytes: 1, or 0. */
int aqs_uuid_bytes(const char *s, size_t n, unsigned char b[16]);
/* The writer's spelling (36 bytes at s: lower-case hyphenated)?  1 with the 16 bytes in
 * out, else 0 (the fast path; aqs_uuid_bytes takes every spelling). */
int aqs_uuid_canonical(const unsigned char *s, unsigned char out[16]);
/* 16 bytes -> the 36-char lower-case hyphenated text (no NUL written). */
void aqs_uuid_format(const unsigned char b[16], char out[36]);
/* aqs_uuid_bytes + aqs_uuid_format: returns 1 and writes the canonical text (+NUL) to
 * out, or 0 and writes the reference's detail text (without the "UUID parsing failed: "
 * prefix) to err, its length to *errlen (optional; the text may hold a NUL byte: the
 * character found). */
int aqs_uuid_text(const char *s, size_t n, char out[37], char *err, size_t errsz, size_t *errlen);

/* UTF-8 validity (no surrogates, no overlongs, <= U+10FFFF). */
int aqs_utf8_valid(const unsigned char *s, size_t n);

#endif
