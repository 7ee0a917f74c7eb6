/*
 * json.h - declarations shared by the JSON codec files (json_schema.c, json_uuid.c,
 * json_decode.c, json_encode.c): the compiled form of a schema type.
 */
#ifndef AQS_JSON_H
#define AQS_JSON_H

#include <stddef.h>
#include <stdint.h>
#include "aqs.h"

enum {
  JK_U8, JK_U16, JK_U32, JK_U64, JK_I32, JK_BOOL, JK_STRING, JK_BYTES, JK_ID,
  JK_OPTION, JK_LIST, JK_RECORD, JK_ENUM
};

/* Field default kinds. */
enum { JD_NONE, JD_ABSENT, JD_VALUE, JD_FUNC };

typedef struct jtype jtype;

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
  int vk;              /* variants: verdict hook id (0 = none; set by verdict.c) */
} jitem;

struct jtype {
  int kind;
  char *name;          /* record/enum/id name (owned), "" otherwise */
  int64_t min, max;    /* integer ranges */
  jtype *of;           /* option/list element */
  int nitems;          /* record fields / enum variants (feature-gated ones left out) */
  int nall;            /* nitems + the feature-gated variants stored after them (the
                          encoder's opts.features enables them; the decoder ignores them) */
  jitem *items;
  int check_ref;       /* record check function ref (0 = none) */
  char *variant_list;  /* enum: "`A` or `B`" / "one of `A`, `B`, `C`" */
  int vk;              /* records: verdict hook id (0 = none; set by verdict.c) */
  signed char vf[16];  /* records: field indexes the verdict hook reads (verdict.c) */
};

typedef struct {
  jtype **types;
  int ntypes, cap;
  jtype *root;
} jschema;

#define AQS_JSCHEMA_MT "actionqueue.storage.JsonSchema"

/* Compiled schema at stack index idx (a JsonSchema userdata, or a schema type table that
 * is compiled and cached on first use).  Replaces the value at idx by the userdata. */
jschema *aqs_json_schema_at(lua_State *L, int idx);
/* Pushes the refs table (strings, defaults, check functions) of the schema at idx. */
void aqs_json_push_refs(lua_State *L, int idx);

/* ---- skim mode and streamed payloads (the verdict path, verdict.c) ----------------- */

/* The value of one field as seen in skim mode: nothing is built, the hooks read these. */
typedef struct {
  uint64_t u;               /* integer, bool 0/1, enum variant index, string/list length */
  unsigned char id[16];     /* id value (UUID bytes) */
  unsigned char present;    /* a non-null value was read */
  unsigned char empty_elem; /* list of strings: an element was "" */
} jcap;
#define JCAP_MAX 16         /* fields captured per record (the rest are only checked) */

/* Called when a record (type vk != 0) or an enum variant (item vk != 0) has been read
 * completely: 0, or -1 with a decode-time validation text in msg (a decode error). */
typedef struct {
  int (*record_end)(void *ud, const jtype *t, const jcap *caps, char *msg, size_t msgsz);
  int (*variant_end)(void *ud, const jtype *t, const jitem *v, const jcap *caps,
                     char *msg, size_t msgsz);
  /* an id element of a captured list of ids (DependencyDeclaration.depends_on) */
  void (*list_id)(void *ud, const unsigned char id[16]);
} jhooks;

/* A payload read from a descriptor in chunks; the CRC is computed on the same pass. */
typedef struct {
  int fd;
  uint64_t left;        /* payload bytes not read yet */
  uint64_t got;         /* payload bytes read */
  uint32_t crc;
  int read_errno;       /* errno of a failed read (0 = none) */
  /* optional: every chunk read is also handed to copy (e.g. an AtomicWriter) */
  void (*copy)(void *ud, const unsigned char *p, size_t n);
  void *copy_ud;
  int canonical;        /* out (skim mode): the payload is exactly its canonical encoding
                           (compact, schema key order, every field, canonical ids, no
                           escapes, unit variants as strings) */
} jstream;

/* Decodes the payload of s with the schema at stack index sidx.  hk != NULL: skim mode
 * (nothing built, the hooks see the records); hk == NULL: the value is built.
 * The rest of the payload is always read through the CRC (s->left = 0 afterwards
 * unless the descriptor ended early or failed: s->read_errno, s->got).
 * Returns 1 with the value pushed (building) / nothing pushed (skim) on success,
 * 0 with message, line, column pushed on a decode error.  Restores the collector on
 * every path (errors are re-raised after that). */
int aqs_json_decode_stream(lua_State *L, int sidx, jstream *s, const jhooks *hk, void *ud);

/* UUID text parsing (snapshot-format.md 3.3).  Returns 1 and writes the 36-char
 * lower-case hyphenated form (+NUL) to out, or 0 and writes the detail text (without the
 * "UUID parsing failed: " prefix) to err, its length to *errlen (optional; the text may
 * hold a NUL byte: the character found). */
int aqs_uuid_text(const char *s, size_t n, char out[37], char *err, size_t errsz, size_t *errlen);

/* UTF-8 validity (no surrogates, no overlongs, <= U+10FFFF). */
int aqs_utf8_valid(const unsigned char *s, size_t n);

#endif
