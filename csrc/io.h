/*
 * io.h - the only door to the operating system for actionqueue.storage.core.
 *
 * Every syscall the module makes goes through the aqs_sys table so that a test
 * build (-DAQS_IO_TEST) can swap it, e.g. to record writes for a power-loss model,
 * without touching the callers.  The wrappers below add what every caller needs:
 * EINTR retries, short read/write loops and the error convention of the module.
 */
#ifndef AQS_IO_H
#define AQS_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <lua.h>

/* Raw syscalls; the default table points at libc. */
typedef struct aqs_sys {
  int (*open)(const char *path, int flags, mode_t mode);
  ssize_t (*read)(int fd, void *buf, size_t n);
  ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
  ssize_t (*write)(int fd, const void *buf, size_t n);
  ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
  int (*fsync)(int fd);
  int (*fdatasync)(int fd);
  int (*ftruncate)(int fd, off_t len);
  int (*fstat)(int fd, struct stat *st);
  int (*close)(int fd);
  int (*rename)(const char *from, const char *to);
  int (*unlink)(const char *path);
  /* Added for the writer protocol (docs/safety.md); test tables must set them too. */
  int (*lstat)(const char *path, struct stat *st);
  int (*stat)(const char *path, struct stat *st);
  int (*fchmod)(int fd, mode_t mode);
  int (*fchown)(int fd, uid_t uid, gid_t gid);
  int (*rename_noreplace)(const char *from, const char *to);  /* EEXIST when `to` exists */
} aqs_sys;

#ifdef AQS_IO_TEST
/* Test builds only: replace the syscall table (NULL restores libc). */
void aqs_io_set_sys(const aqs_sys *sys);
const aqs_sys *aqs_io_default_sys(void);
#endif

/* Thin wrappers. All return -1 with errno set on failure. */
int aqs_open(const char *path, int flags, mode_t mode);   /* adds O_CLOEXEC */
int aqs_close(int fd);                                    /* EINTR counts as closed */
int aqs_fsync(int fd);
int aqs_fdatasync(int fd);
int aqs_ftruncate(int fd, uint64_t len);
int aqs_fstat(int fd, struct stat *st);
int aqs_rename(const char *from, const char *to);
int aqs_unlink(const char *path);
/* flock(2) with an EINTR loop.  Advisory locks change no file contents, so they are
 * not part of the swappable aqs_sys table (the power-loss model has nothing to record). */
int aqs_flock(int fd, int op);

int aqs_lstat(const char *path, struct stat *st);
int aqs_stat(const char *path, struct stat *st);
int aqs_fchmod(int fd, mode_t mode);
int aqs_fchown(int fd, uid_t uid, gid_t gid);
/* rename that never replaces an existing `to` (renameat2 RENAME_NOREPLACE, or link +
 * unlink where the file system lacks it): -1 with EEXIST when `to` exists. */
int aqs_rename_noreplace(const char *from, const char *to);
int aqs_fcntl_clear_nonblock(int fd);

/* 0 when DIR/REL, walked from DIR without following a symbolic link in any component of
 * REL (openat O_DIRECTORY|O_NOFOLLOW, then fstatat AT_SYMLINK_NOFOLLOW for the last one),
 * is the very file open as fd (same st_dev/st_ino); -1 otherwise, errno ELOOP when a
 * component of REL is a link, ESTALE when the name is another file, or the walk's error.
 * DIR itself may be a link (the user's path).  Read-only: no file content changes, so
 * like aqs_flock it is not part of the swappable aqs_sys table. */
int aqs_same_file_under(const char *dir, const char *rel, int fd);

/* Opens an existing file to read it without ever blocking and without a controlling
 * tty (O_RDONLY|O_NONBLOCK|O_NOCTTY; a symlink is followed: inputs may be links).
 * Anything but a regular file or a directory (a directory then fails at its first read
 * with EISDIR, as the engine reports it) is refused: -2 with *kind set to
 * aqs_file_kind()'s text.  -1 with errno set on other failures. */
int aqs_open_input(const char *path, const char **kind);
/* "FIFO (named pipe)", "character device", "block device", "socket", "directory",
 * "symbolic link", "regular file" or "special file" for a st_mode. */
const char *aqs_file_kind(mode_t mode);

/* n random bytes for unique names (getrandom, /dev/urandom, or a clock/pid mix). */
void aqs_random_bytes(void *buf, size_t n);
/* 1 unless kill(pid, 0) says the process does not exist (ESRCH). */
int aqs_pid_alive(long pid);

/* Directory listing: calls fn(name, ud) for each entry but "." and ".."; 0 or -1. */
int aqs_list_dir(const char *dir, void (*fn)(const char *name, void *ud), void *ud);

/* Read until n bytes or EOF; returns the byte count (< n only at EOF) or -1.
 * off < 0 reads at the current position, otherwise at off (pread). */
int64_t aqs_read_full(int fd, void *buf, size_t n, int64_t off);

/* One read of at most n bytes (a pipe gives what it has), retried on EINTR; the byte
 * count (0 at end of file) or -1. */
int64_t aqs_read_some(int fd, void *buf, size_t n);

/* Write all n bytes (retrying short writes); 0 or -1.
 * off < 0 writes at the current position, otherwise at off (pwrite). */
int aqs_write_all(int fd, const void *buf, size_t n, int64_t off);

/* Symbolic errno name ("EIO", "ENOSPC", ...); "E<n>" style text for unknown ones. */
const char *aqs_errno_name(int err);

/* Pushes nil, "op path: strerror", "ENAME" and returns 3 (the io.open convention). */
int aqs_push_ioerr(lua_State *L, const char *op, const char *path, int err);

/* Pushes the Rust-style OS message "strerror (os error N)". */
void aqs_push_osmsg(lua_State *L, int err);

#endif
