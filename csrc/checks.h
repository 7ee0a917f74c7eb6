/*
 * checks.h - the decode-time validations of the schema's records and variants
 * (snapshot-format.md 3.6, wal-format.md 8.4), written once (checks.c).  Each check reads
 * its record's field values from a small struct; the callers fill it from what they have:
 * the verdict's skim captures (verdict.c) or a built Lua table (the native check
 * functions the schema names, core.schema_check: json_decode.c and postcard.c call them
 * through the schema's check refs, snapshot.build calls them on the table it built).
 */
#ifndef AQS_CHECKS_H
#define AQS_CHECKS_H

#include <stddef.h>
#include <stdint.h>
#include "aqs.h"

/* The native checks (ids of core.schema_check's closures). */
enum { AQS_CHECK_NONE, AQS_CHECK_TASKSPEC, AQS_CHECK_CONSTRAINTS, AQS_CHECK_RUNINST,
       AQS_CHECK_REPEAT, AQS_CHECK_COUNT };

/* RunPolicyWire::Repeat (the Repeat variant's payload). */
typedef struct { uint64_t count, interval_secs; } aqs_repeat_vals;
/* TaskConstraintsWire; has_* = the option is Some, empty_cap = an element is "". */
typedef struct {
  int max_attempts_zero, has_timeout, has_key, has_caps, empty_cap;
  uint64_t timeout_secs, key_len, ncaps;
} aqs_constraints_vals;
/* TaskSpecWire. */
typedef struct { int nil_id; } aqs_taskspec_vals;
/* RunInstanceWire; running/ready: the state is that one. */
typedef struct {
  int nil_run_id, nil_task_id, has_attempt, running, ready;
  uint64_t created_at, scheduled_at;
} aqs_runinst_vals;

/* Each returns 0, or -1 with the reference's text in msg (NUL-terminated). */
int aqs_check_repeat(const aqs_repeat_vals *v, char *msg, size_t n);
int aqs_check_constraints(const aqs_constraints_vals *v, char *msg, size_t n);
int aqs_check_taskspec(const aqs_taskspec_vals *v, char *msg, size_t n);
int aqs_check_runinst(const aqs_runinst_vals *v, char *msg, size_t n);

/* The native check id of the function at stack index idx (AQS_CHECK_NONE: not one). */
int aqs_check_native(lua_State *L, int idx);

#endif
