/*
 * aqs.h - declarations shared by the C files of actionqueue.storage.core.
 * Each C file has one job; core.c assembles the module from their functions.
 */
#ifndef AQS_H
#define AQS_H

#include <stdint.h>
#include <lua.h>
#include <lauxlib.h>

#define AQS_VERSION "0.1.0"

/* Frame header: version u32 LE, length u32 LE, crc u32 LE (snapshot and WAL alike). */
#define AQS_HEADER_SIZE 12
#define AQS_MAX_PAYLOAD 268435456u   /* 256 MiB, the readers' cap (inclusive) */

/* Module functions, one group per file (alphabetical by file). */

/* atomic_writer.c */
int aqs_atomic_writer(lua_State *L);
/* json_encode's direct sink: -1 not an AtomicWriter, 0 written, 3 = nil, msg, ENAME pushed. */
int aqs_aw_write_raw(lua_State *L, int idx, const char *p, size_t n);
int aqs_aw_is(lua_State *L, int idx);

/* crc32.c */
int aqs_crc32(lua_State *L);
int aqs_bench_crc32_c(lua_State *L);
int aqs_monotonic(lua_State *L);
uint32_t aqs_crc32_update(uint32_t crc, const void *data, size_t len);

/* frame.c */
int aqs_frame_decode(lua_State *L);
int aqs_frame_encode(lua_State *L);
int aqs_frame_header(lua_State *L);
int aqs_frame_read(lua_State *L);
void aqs_put_u32le(unsigned char *p, uint32_t v);
uint32_t aqs_get_u32le(const unsigned char *p);
uint32_t aqs_check_u32(lua_State *L, int arg, const char *what);
uint32_t aqs_opt_u32(lua_State *L, int opts, const char *key, uint32_t dflt);
void aqs_push_io_result(lua_State *L, int err, lua_Integer offset);
/* Loader steps 2-6 on the first got (<= 12) header bytes: pushes the failure's result
 * table and returns 1, or returns 0 with *len set (the streamed verdict, verdict.c). */
int aqs_frame_classify(lua_State *L, const unsigned char *h, size_t got,
                       uint32_t expect, uint32_t max, uint32_t *len);
void aqs_frame_crc_mismatch(lua_State *L, uint32_t stored, uint32_t actual, uint32_t len);
void aqs_frame_short_payload(lua_State *L, uint32_t len, uint64_t got);
/* Opens a snapshot input without ever blocking (io.c aqs_open_input): 0 with *fd set, or
 * 1 with the result table pushed (missing; io_error with op/path, a FIFO, device or
 * socket refused with its file_type) and *fd = -1. */
int aqs_frame_open(lua_State *L, const char *path, int *fd);
/* The bytes of a PayloadBuffer (frame_read opts.buffer) at idx, or NULL if idx is not one;
 * raises when it was freed. */
const char *aqs_payload_buffer(lua_State *L, int idx, size_t *n);
/* Reads len bytes at off (seq: with read() from the current position, which must
 * be off): 1 = string pushed, 0 = fewer available (*got set, nothing pushed),
 * -1 = I/O error (errno set, nothing pushed). */
int aqs_read_payload(lua_State *L, int fd, uint64_t off, int seq, uint32_t len, uint64_t *got);

/* framed_log.c */
int aqs_frames(lua_State *L);
int aqs_log_open(lua_State *L);

/* lock.c */
int aqs_lock_file(lua_State *L);
void aqs_lock_init(lua_State *L);
/* Pushes nil, "lock PATH: another process holds it", "EWOULDBLOCK" (EWOULDBLOCK/EAGAIN)
 * or the "lock PATH: strerror", "ENAME" triple of another errno; returns 3. */
int aqs_push_lock_error(lua_State *L, const char *path, int err);

/* process.c */
int aqs_proc_clock(lua_State *L);
int aqs_proc_close(lua_State *L);
int aqs_proc_fsync(lua_State *L);
int aqs_proc_ignore_sigpipe(lua_State *L);
int aqs_proc_info(lua_State *L);
int aqs_proc_isatty(lua_State *L);
int aqs_proc_kill(lua_State *L);
int aqs_proc_open(lua_State *L);
int aqs_proc_poll(lua_State *L);
int aqs_proc_read(lua_State *L);
int aqs_proc_signal_watch(lua_State *L);  /* signals.c */
int aqs_proc_signal_trap(lua_State *L);   /* signals.c */
/* The signal a SignalTrap caught (SIGINT/SIGTERM/SIGHUP), 0 when none: a writer must not
 * publish (rename) once the command is being interrupted. */
int aqs_signal_caught(void);
int aqs_proc_spawn(lua_State *L);
int aqs_proc_wait(lua_State *L);
int aqs_proc_write(lua_State *L);

/* json_decode.c, json_encode.c (see json.h) */
int aqs_json_decode(lua_State *L);
int aqs_json_encode(lua_State *L);

/* checks.c (see checks.h) */
int aqs_schema_check(lua_State *L);

/* text.c (see schema.h) */
int aqs_uuid_parse(lua_State *L);

/* schema.c (see schema.h) */
int aqs_schema(lua_State *L);
int aqs_schema_kinds(lua_State *L);

/* postcard.c */
int aqs_postcard_decode(lua_State *L);
int aqs_postcard_encode(lua_State *L);
/* Bytes taken by a value of compiled type t (schema.h) that the decoder accepted at p:
 * 0 with *used set, -1 when it does not fit in n bytes (structure only: no checks). */
struct jtype;
int aqs_postcard_span(const struct jtype *t, const unsigned char *p, size_t n, size_t *used);

/* replay.c */
int aqs_replay_state(lua_State *L);

/* verdict.c */
int aqs_snapshot_read(lua_State *L);
int aqs_snapshot_rules(lua_State *L);
int aqs_snapshot_verdict(lua_State *L);
int aqs_verdict_plan(lua_State *L);

/* u64.c */
int aqs_u64_parse(lua_State *L);
int aqs_u64_tostring(lua_State *L);

/* lua_alloc.c: the small-object allocator, installed once per state by luaopen */
void aqs_lua_alloc_install(lua_State *L);
int aqs_alloc_selftest(lua_State *L);
int aqs_alloc_stats(lua_State *L);

/* mem_budget.c */
int aqs_mem_budget(lua_State *L);

/* Metatable set-up for userdata types, called once from luaopen. */
void aqs_atomic_writer_init(lua_State *L);
void aqs_frame_init(lua_State *L);
void aqs_framed_log_init(lua_State *L);
void aqs_mem_budget_init(lua_State *L);
void aqs_postcard_init(lua_State *L);
void aqs_replay_init(lua_State *L);
void aqs_schema_init(lua_State *L);
void aqs_signal_watch_init(lua_State *L);
void aqs_verdict_init(lua_State *L);

#endif
