/*
 * quicksand.h — the C ABI of libquicksand: give a program its own Linux VM
 * to run commands in.
 *
 * Conventions
 * -----------
 * - Every function that can fail returns a qs_status: QS_OK (0) on
 *   success, otherwise one of the QS_ERR_* codes (an enum, passed as an
 *   int: a binding may declare it as one). If `err` is not NULL, a
 *   failing call stores a new qs_error there, which the caller frees with
 *   qs_error_free; on success *err is set to NULL. `err` may be NULL when
 *   the caller only wants the code.
 * - Structured data (a sandbox config, an execute request, an execute
 *   result, sandbox info) crosses as MessagePack maps with snake_case keys,
 *   described next to each function. Numbers may be any MessagePack integer
 *   or float (`timeout: 20` and `timeout: 20.0` mean the same). A nil value
 *   is the same as an absent key. Unknown keys and wrong types are errors
 *   whose message names the key.
 * - Buffers the library returns (qs_buffer) are owned by the caller and
 *   freed with qs_buffer_free. Input buffers are only read during the call.
 *   A buffer documented as text (a path, a checksum, the console log) has
 *   a NUL byte after its `len` bytes, not counted in `len`, so that
 *   (const char *)data is a C string; text that holds a NUL itself (the
 *   console log may) reads as cut there, `len` has it all. A msgpack or
 *   file-content buffer has no such byte.
 * - qs_sandbox is an opaque handle. Passing NULL, a freed handle or any
 *   other pointer the library did not return gives QS_ERR_INVALID_HANDLE,
 *   never a crash (a freed handle's address may be reused by a later
 *   qs_sandbox_start, so do not rely on this to find use-after-free bugs).
 * - Every function is safe to call from any thread, and several threads may
 *   use one sandbox at once. No Go panic crosses this boundary: it becomes
 *   QS_ERR_INTERNAL.
 * - A VM never outlives the process that started it (on Linux: QEMU gets
 *   the kernel's parent-death signal; elsewhere only a process that exits
 *   normally stops its VMs), and the work folders of killed processes are
 *   removed by a later qs_sandbox_start.
 * - Callbacks (qs_chunk_fn, qs_done_fn, qs_log_fn) may read the error they
 *   are given (qs_error_code, qs_error_message). Other calls into the
 *   library from a callback are not supported: one that waits for the call
 *   the callback belongs to (qs_sandbox_stop, qs_sandbox_revert) would wait
 *   for itself.
 * - The library embeds a Go runtime. It must not be unloaded (dlclose) once
 *   loaded. The runtime installs handlers for the synchronous signals
 *   (SIGSEGV, SIGBUS, SIGFPE) and for SIGPIPE with SA_ONSTACK, and chains
 *   to handlers the program installed before loading it; a program that
 *   installs its own afterwards must use SA_ONSTACK.
 */
#ifndef QUICKSAND_H
#define QUICKSAND_H

#include <stddef.h>
#include <stdint.h>

/* The version of this header: the project's VERSION file, which a test
 * (internal/contract) holds every copy to. qs_version() is the library's. */
#define QS_VERSION "0.1.0"
#define QS_VERSION_NUMBER 100 /* major * 10000 + minor * 100 + patch */

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque handles. */
typedef struct qs_sandbox qs_sandbox;
typedef struct qs_pool qs_pool;
typedef struct qs_error qs_error;

/* Bytes owned by the caller once returned; free with qs_buffer_free. */
typedef struct {
    uint8_t *data;
    size_t len;
} qs_buffer;

/* Output streams, as passed to qs_chunk_fn. */
#define QS_STDOUT 1
#define QS_STDERR 2

/*
 * Status codes (qs_status: what functions return). 1-10 and 13-16
 * are the engine's error kinds, 11 and 12 the ABI's own. Codes never change
 * meaning; new ones may be added.
 */
typedef enum {
    QS_OK                  = 0,
    QS_ERR_UNKNOWN         = 1, /* a failure with no better code */
    QS_ERR_INVALID_CONFIG  = 2, /* bad config msgpack, key or value */
    QS_ERR_IMAGE_NOT_FOUND = 3, /* the message names the image and the folders searched */
    QS_ERR_BOOT_FAILED     = 4, /* QEMU or the guest failed before the agent was ready */
    QS_ERR_BOOT_TIMEOUT    = 5, /* the agent was not ready within boot_timeout */
    QS_ERR_NOT_RUNNING     = 6, /* the sandbox was stopped or its VM died; the message says which */
    QS_ERR_AUTH            = 7, /* the guest agent refused the token */
    QS_ERR_TRANSPORT       = 8, /* talking to the guest agent failed */
    QS_ERR_BAD_REQUEST     = 9, /* bad request msgpack, key or value, or the agent rejected it (e.g. missing cwd) */
    QS_ERR_CANCELLED       = 10, /* the call was cancelled: qs_call_cancel, or a revert of the sandbox (the message says which) */
    QS_ERR_INVALID_HANDLE  = 11, /* NULL, freed or unknown qs_sandbox, or NULL where a pointer is required */
    QS_ERR_INTERNAL        = 12, /* a bug in the library (a recovered panic) */
    QS_ERR_SNAPSHOT        = 13, /* checkpoint, revert or save failed */
    QS_ERR_RESOURCE        = 14, /* the guest ran out of processes, memory or disk space, or the host of ports or disk space */
    QS_ERR_NOT_FOUND       = 15, /* a path in the guest (or on the host) does not exist */
    QS_ERR_PERMISSION      = 16, /* the guest user of the call may not do that to the path */
} qs_status;

/*
 * Called with each chunk of a command's output as it arrives, in order.
 * `stream` is QS_STDOUT or QS_STDERR. `data` is valid only during the call:
 * copy what you keep. Chunks are not lines: a chunk may end mid-line (never
 * mid-UTF-8 character when the output is valid UTF-8).
 */
typedef void (*qs_chunk_fn)(void *user_data, int stream, const uint8_t *data, size_t len);

/*
 * Called once when an asynchronous execute ends, on a library thread.
 * On success status is QS_OK, `result` holds the result msgpack (see
 * qs_sandbox_execute) and `err` is NULL; otherwise `result` is NULL and `err`
 * describes the failure. Both are owned by the library and valid only
 * during the call: do not free them.
 */
typedef void (*qs_done_fn)(void *user_data, qs_status status, const uint8_t *result, size_t result_len,
                           const qs_error *err);

/*
 * Called with each event of a code run (qs_sandbox_run_code), in order, as
 * a msgpack map (see "Code interpreter"). `event` is valid only during the
 * call: copy what you keep.
 */
typedef void (*qs_event_fn)(void *user_data, const uint8_t *event, size_t event_len);

/* Log levels (the numbers of Go's log/slog). */
#define QS_LOG_DEBUG (-4)
#define QS_LOG_INFO    0
#define QS_LOG_WARN    4
#define QS_LOG_ERROR   8

/*
 * Called with each log record at or above the level given to
 * qs_log_set_handler: `message` is one line, "msg key=value ...", valid only
 * during the call. It may be called on any thread, at the same time as
 * others, and from inside other calls of the library: it must be quick and
 * must not call into the library.
 */
typedef void (*qs_log_fn)(void *user_data, int level, const char *message);

/* Reports progress: done of total bytes (qs_image_install). */
typedef void (*qs_progress_fn)(void *user_data, uint64_t done, uint64_t total);

#ifndef QS_BUILDING_LIBRARY /* the library's own build declares these itself */

/* The library version, e.g. "0.1.0". Static storage: do not free. It may
 * differ from QS_VERSION when the program runs with another build of the
 * library than the header it was compiled with. */
const char *qs_version(void);

/* The same as a number, major * 10000 + minor * 100 + patch (0.1.0: 100),
 * for comparisons (QS_VERSION_NUMBER is the header's). */
int qs_version_number(void);

/*
 * Boots a sandbox and waits until its guest agent answers.
 *
 * config: msgpack map, every key optional:
 *   image             str    image name ("debian") or path to an image folder
 *   image_dirs        array of str  folders to look the name up in first
 *                            (then $QUICKSAND_IMAGE_PATH, then the default)
 *   qemu_path         str    the QEMU binary (default qemu-system-<arch> on PATH)
 *   memory            int|str  MiB as an integer, or "512M", "2G"
 *   cpus              int
 *   accel             str    "auto" (default), "kvm", "hvf", "tcg"
 *   network_mode      str    "restricted" (default: the guest reaches nothing
 *                            outside) or "full" (the outside, but not the
 *                            host's loopback services)
 *   allow_host_loopback bool with "full": the guest may reach the host's
 *                            127.0.0.1 as 10.0.2.2 (default false)
 *   network_policy    map {allow_out: array of str, deny_out: array of str,
 *                            hosts: map str -> array of str}: narrows
 *                            "full" (then the default mode) to what it
 *                            allows; see "Network policy"
 *   port_forwards     array of {host: int, guest: int}, host side on 127.0.0.1
 *   boot_timeout      number seconds (default 60)
 *   extra_qemu_args   array of str
 *   extra_kernel_args array of str
 *   workdir           str    folder for the sandboxes' own folders
 *   cold_boot         bool   boot the kernel even if a template of the image
 *                            could be resumed (default false: the first start
 *                            of an image keeps a booted template, later starts
 *                            resume it in a fraction of a second)
 *   template_dir      str    where templates are kept
 *   mounts            array of {host: str, guest: str, readonly: bool}:
 *                            host folders shared into the guest once it is
 *                            up (see qs_sandbox_mount)
 *   server            str    a `quicksand serve` server that keeps the
 *                            sandbox (see "Sandboxes a server keeps"):
 *                            http://host:port (loopback only),
 *                            https://host:port or unix:/path/to.sock.
 *                            Default $QUICKSAND_SERVER; none: a VM of this
 *                            process
 *   api_key           str    the server's key for this client (default
 *                            $QUICKSAND_API_KEY, only with $QUICKSAND_SERVER)
 *   metadata          map str -> str  labels of the sandbox, which
 *                            qs_sandbox_list filters by (a server's sandbox)
 *   idle_timeout      number seconds the server lets the sandbox sit idle
 *                            before it stops it (default: the server's;
 *                            negative: never). A server's sandbox only
 *   display           bool|map  a screen, keyboard and mouse driven from
 *                            the host (see "Desktop"): true for 1280x800,
 *                            or {width int, height int (0x0: 1280x800;
 *                            320x200 to 3840x2160), vnc bool (default
 *                            false)}; false or nil: none. Only in an image
 *                            with a desktop (debian-desktop): another image
 *                            is QS_ERR_INVALID_CONFIG
 * image may also name a save (qs_sandbox_save): it is then resumed with the
 * memory and CPUs it was saved with.
 * With a server, the options of this host's VMs (image_dirs, qemu_path,
 * workdir, template_dir, extra_qemu_args, extra_kernel_args, port_forwards,
 * allow_host_loopback, an accel other than "auto", an image path) are the
 * server's business and QS_ERR_INVALID_CONFIG.
 * config may be NULL with config_len 0 for all defaults.
 * On success *out is a new handle: stop it with qs_sandbox_stop and release
 * it with qs_sandbox_free.
 */
qs_status qs_sandbox_start(const uint8_t *config, size_t config_len, qs_sandbox **out, qs_error **err);

/*
 * Runs a command and waits for it.
 *
 * request: msgpack map:
 *   command  str, required   run as `<shell> -c <command>`
 *   timeout  number seconds  default 30; the whole process group is killed after it
 *   cwd      str
 *   shell    str             default "/bin/sh"
 *   env      map str -> str  added to the environment
 *   stdin    str|bin         given to the command
 *   user     str             run as this guest user (name or uid), not
 *                            root; an unknown user is QS_ERR_BAD_REQUEST
 *   max_output int           bytes of each stream kept for the result
 *                            (default 256 MiB); on_chunk still gets all
 * on_chunk: NULL for no streaming; otherwise called on the calling thread,
 *   before this function returns, with each chunk as it arrives.
 * result (required): on success, a msgpack map the caller frees with
 *   qs_buffer_free:
 *   stdout bin, stderr bin, exit_code int (-1 when timed out, 128+N when
 *   killed by signal N), timed_out bool, duration float (seconds),
 *   stdout_truncated bool, stderr_truncated bool (max_output cut the
 *   result's copy of that stream).
 * A command that fails is a success of this call with a non-zero exit_code.
 */
qs_status qs_sandbox_execute(qs_sandbox *sb, const uint8_t *request, size_t request_len,
                             qs_chunk_fn on_chunk, void *user_data, qs_buffer *result, qs_error **err);

/*
 * Starts a command and returns at once; no thread of the caller waits.
 * on_chunk (may be NULL) and on_done (required) are called on library
 * threads: on_chunk with each chunk in order, then on_done exactly once,
 * after the last on_chunk. They must return promptly (they hold up the
 * command's output). If this function fails, neither is ever called.
 * What it can tell without the VM fails the call itself (a bad handle or
 * request); the rest (a stopped sandbox, a missing cwd, an unknown user)
 * is the command's outcome and goes to on_done, which every binding awaits
 * as the call's result. call_id (may be NULL) receives an id for
 * qs_call_cancel.
 */
qs_status qs_sandbox_execute_async(qs_sandbox *sb, const uint8_t *request, size_t request_len,
                                   qs_chunk_fn on_chunk, qs_done_fn on_done, void *user_data,
                                   uint64_t *call_id, qs_error **err);

/*
 * Cancels an asynchronous execute: the command is killed in the guest and
 * on_done reports QS_ERR_CANCELLED (unless it had already finished).
 * Returns QS_OK, or QS_ERR_INVALID_HANDLE for an id that is unknown or
 * already done. Safe to call at any time, from any thread.
 */
qs_status qs_call_cancel(uint64_t call_id);

/*
 * Stops the VM (QEMU gets SIGTERM, then SIGKILL after a few seconds: the
 * guest is not shut down, its unsaved state is lost), waits for QEMU and removes the
 * sandbox's folder. Calls in flight fail with QS_ERR_NOT_RUNNING. Calling it
 * again is a no-op that returns QS_OK. The handle stays valid until
 * qs_sandbox_free: later calls on it fail with QS_ERR_NOT_RUNNING.
 */
qs_status qs_sandbox_stop(qs_sandbox *sb, qs_error **err);

/*
 * Releases the handle, stopping the sandbox first if it still runs (a
 * server's sandbox is not stopped: it runs on until qs_sandbox_stop or its
 * idle timeout, for other handles and processes). NULL is ignored. The handle must not be used afterwards (a stale handle gives
 * QS_ERR_INVALID_HANDLE where it can be detected).
 */
void qs_sandbox_free(qs_sandbox *sb);

/*
 * Facts about a sandbox, as a msgpack map the caller frees with
 * qs_buffer_free: id str (the server's id of a server's sandbox, which
 * qs_sandbox_connect takes; a random one for a local sandbox), remote bool
 * (a server keeps it), running bool, accelerator str ("kvm", "hvf", "tcg"),
 * arch str, pid int (QEMU's), agent_addr str, output_channel bool
 * (commands' output travels over the fast virtio-serial channel,
 * docs/protocol.md), output_channel_error str (why not, only when it does
 * not), boot_timing map {warm bool (resumed from a template or a save),
 * qemu_started float, kernel_booted float, agent_listening float, ready
 * float: seconds since the start call}, metadata map str -> str (the
 * sandbox's labels). A server's sandbox has no pid (0), agent_addr ("")
 * or boot timing (zeros). Works after stop (running is then false).
 */
qs_status qs_sandbox_info(qs_sandbox *sb, qs_buffer *info, qs_error **err);

/*
 * Sandboxes a server keeps. qs_sandbox_start with a server (config key
 * `server`, or $QUICKSAND_SERVER) makes the sandbox on a `quicksand serve`
 * server; every call on its handle then goes there, with the same results
 * and codes as a local one's (qs_sandbox_console_log is
 * QS_ERR_BAD_REQUEST). Such a sandbox outlives its handle and its process:
 * qs_sandbox_free leaves it running; qs_sandbox_stop stops it and the
 * server forgets it; the server stops it too after its idle timeout. A
 * wrong key is QS_ERR_AUTH, a server that cannot be reached
 * QS_ERR_TRANSPORT (the message names the server); the sandbox runs on.
 *
 * qs_sandbox_connect: a new handle to the sandbox `id` (qs_sandbox_info's
 *   id, or qs_sandbox_list's) that this key made; an unknown id, or
 *   another key's, is QS_ERR_NOT_FOUND.
 * qs_sandbox_list: the sandboxes the server keeps for this key whose
 *   metadata has every label of the filter.
 * options (may be NULL: $QUICKSAND_SERVER and $QUICKSAND_API_KEY), a
 * msgpack map, every key optional:
 *   server    str  as the config's
 *   api_key   str  as the config's
 *   metadata  map str -> str  qs_sandbox_list only: the labels to filter by
 * list: a msgpack array of maps {id str, metadata map, image str,
 *   running bool, created float (seconds since the epoch), idle_timeout
 *   float (seconds; 0: never)}.
 * qs_sandbox_set_idle_timeout: sets how long the server lets the sandbox
 *   sit idle (a negative number: never; 0 is QS_ERR_BAD_REQUEST) and
 *   starts that time again, as a keep-alive. A local sandbox has none:
 *   QS_ERR_BAD_REQUEST.
 */
qs_status qs_sandbox_connect(const char *id, const uint8_t *options, size_t options_len, qs_sandbox **out,
                             qs_error **err);
qs_status qs_sandbox_list(const uint8_t *options, size_t options_len, qs_buffer *list, qs_error **err);
qs_status qs_sandbox_set_idle_timeout(qs_sandbox *sb, double seconds, qs_error **err);

/* The guest's serial console output so far (up to 16 MiB), as text: the
 * bytes the guest wrote, NUL-terminated (see Conventions). */
qs_status qs_sandbox_console_log(qs_sandbox *sb, qs_buffer *log, qs_error **err);

/*
 * Captures the sandbox's RAM and disk as checkpoint `tag` (1-64 letters,
 * digits, '.', '_', '-'; an existing tag is replaced). The VM pauses while
 * its state is written. Checkpoints live as long as the sandbox.
 */
qs_status qs_sandbox_checkpoint(qs_sandbox *sb, const char *tag, qs_error **err);

/*
 * Returns the sandbox to checkpoint `tag`: disk, RAM and running processes.
 * Executes in flight fail with QS_ERR_CANCELLED (the message says the
 * sandbox was reverted). An unknown tag is QS_ERR_BAD_REQUEST.
 */
qs_status qs_sandbox_revert(qs_sandbox *sb, const char *tag, qs_error **err);

/*
 * Writes the running sandbox's state (RAM and disk) to a new folder: `name`
 * goes to the default image folder, so qs_sandbox_start({image: name})
 * resumes it; a path (with '/') is used as is. The VM pauses while its RAM
 * is written, then runs on. path (may be NULL) receives the folder's path
 * as text (UTF-8, NUL-terminated): free it with qs_buffer_free.
 */
qs_status qs_sandbox_save(qs_sandbox *sb, const char *name, qs_buffer *path, qs_error **err);

/*
 * Checks a save (name or folder) without starting it: its manifest, the
 * checksum of its state, its disk and the image it builds on, and that this
 * QEMU can load it.
 */
qs_status qs_save_validate(const char *name_or_path, qs_error **err);

/*
 * Sends the engine's log (the decisions it takes on its own: accelerator and
 * fallback, templates built and why, the output channel not used, retries,
 * stale folders swept) to fn, from sandboxes started after this call, at
 * `min_level` and above. NULL turns it off. Without a handler, the
 * environment variable QUICKSAND_LOG=debug|info|warn|error writes it to
 * standard error.
 */
void qs_log_set_handler(qs_log_fn fn, void *user_data, int min_level);

/*
 * Files. Guest paths are absolute. What is written goes to a temporary name
 * and is renamed into place once complete: a write that fails leaves
 * nothing under the final name. Errors name the path: QS_ERR_NOT_FOUND,
 * QS_ERR_PERMISSION, QS_ERR_RESOURCE (the guest disk is full),
 * QS_ERR_BAD_REQUEST (not absolute, a NUL byte, a folder where a file was
 * expected, a file larger than max_size, ...).
 *
 * Every file call (these and qs_sandbox_upload, qs_sandbox_download) fails
 * with QS_ERR_TRANSPORT once the agent has made no progress (no byte moved
 * either way) for 60 seconds, as when its VM is frozen: a transfer of any
 * size goes on as long as its bytes move. A call's timeout replaces that
 * bound with its own, on the whole call: past it the call fails with
 * QS_ERR_CANCELLED.
 *
 * options / request: msgpack map, every key optional but op and path:
 *   op         str   qs_sandbox_file_op: "stat", "list", "mkdir", "remove", "rename"
 *   path       str   qs_sandbox_file_op: the guest path
 *   dest       str   rename: the new path
 *   parents    bool  mkdir: make missing parents too (an existing folder is
 *                    fine, and keeps its mode)
 *   recursive  bool  remove: a folder with everything in it
 *   mode       int   permission bits, 0o4000 setuid, 0o2000 setgid and
 *                    0o1000 sticky included (default 0644 for a file, 0755
 *                    for a folder); the guest's umask does not apply
 *   user       str   do it as this guest user (default root): its permissions
 *                    apply, and what it makes belongs to it
 *   max_size   int   qs_sandbox_read_file: the most bytes it returns (default
 *                    256 MiB, as max_output); a larger file is
 *                    QS_ERR_BAD_REQUEST, returned before any of it is
 *                    read. qs_sandbox_download streams a file of any size
 *                    to the host's disk
 *   timeout    number seconds: the whole call's bound (default: none but
 *                    the 60 seconds without progress above)
 * qs_sandbox_file_op's result (may be NULL): for "stat" a map {exists bool,
 * info map (when it exists)}, for "list" {entries array of info maps}, each
 * info {name str, type str ("file", "dir", "symlink", "other"), size int,
 * mode int, mtime float seconds, target str (symlinks only)}; nothing for
 * the others.
 */
qs_status qs_sandbox_write_file(qs_sandbox *sb, const char *path, const uint8_t *data, size_t len,
                                const uint8_t *options, size_t options_len, qs_error **err);
qs_status qs_sandbox_read_file(qs_sandbox *sb, const char *path, const uint8_t *options, size_t options_len,
                               qs_buffer *data, qs_error **err);
qs_status qs_sandbox_file_op(qs_sandbox *sb, const uint8_t *request, size_t request_len, qs_buffer *result,
                             qs_error **err);

/*
 * Copies a file or a folder with everything in it (modes, symlinks as
 * symlinks, empty folders, modification times), streamed: host to guest,
 * or guest to host. The destination must not exist yet. options (may be
 * NULL): the file options map above, of which these take user (the guest
 * side is read or made as that user) and timeout; another option is
 * QS_ERR_BAD_REQUEST naming it.
 */
qs_status qs_sandbox_upload(qs_sandbox *sb, const char *host_path, const char *guest_path, const uint8_t *options,
                            size_t options_len, qs_error **err);
qs_status qs_sandbox_download(qs_sandbox *sb, const char *guest_path, const char *host_path, const uint8_t *options,
                              size_t options_len, qs_error **err);

/*
 * Shared folders. A host folder mounted at a guest path (made when missing)
 * while the sandbox runs; the guest sees changes either side makes at once.
 * The host serves the folder itself: the guest reaches nothing outside it
 * (symlinks are resolved in the guest, devices are never opened), and
 * readonly is enforced by the host whatever the guest does. A revert brings
 * back the mounts its checkpoint had; a save with mounts is refused
 * (QS_ERR_BAD_REQUEST). Files the guest makes belong to the host's user.
 *
 * mount: msgpack map {host str, guest str, readonly bool (default false)};
 * a missing host folder is QS_ERR_NOT_FOUND, a relative guest path
 * QS_ERR_INVALID_CONFIG, a guest path already mounted QS_ERR_BAD_REQUEST.
 * handle (may be NULL): msgpack map {id str, host str (absolute), guest str,
 * readonly bool}. qs_sandbox_unmount takes the id: once it returns the
 * guest reaches nothing of the folder, even through files it held open.
 * qs_sandbox_list_mounts: an array of those maps, by guest path.
 */
qs_status qs_sandbox_mount(qs_sandbox *sb, const uint8_t *mount, size_t mount_len, qs_buffer *handle, qs_error **err);
qs_status qs_sandbox_unmount(qs_sandbox *sb, const char *mount_id, qs_error **err);
qs_status qs_sandbox_list_mounts(qs_sandbox *sb, qs_buffer *list, qs_error **err);

/*
 * Network policy. A sandbox in network mode "full" (without
 * allow_host_loopback) may have a policy that narrows what the guest
 * reaches; docs/security.md says what it does and does not catch.
 *
 * policy: msgpack map, every key optional:
 *   allow_out  array of str: the destinations allowed; with any, every
 *              other is denied. An entry is a domain ("pypi.org"), a
 *              wildcard domain ("*.example.com"), an IP or CIDR (IPv4 or
 *              IPv6), each optionally with a port or port range
 *              ("api.example.com:443", "10.1.0.0/16:5432")
 *   deny_out   array of str: the same, denied (allow beats deny)
 *   hosts      map str -> array of str: names the engine's DNS answers
 *              with these addresses itself (still subject to allow_out)
 * Private, link-local (cloud metadata) and multicast ranges are denied
 * unless an allow_out entry names them; the host's loopback is never
 * reached. Names not allowed get NXDOMAIN. A bad entry is
 * QS_ERR_INVALID_CONFIG naming it; a sandbox without the guard (restricted
 * mode, allow_host_loopback) QS_ERR_BAD_REQUEST.
 *
 * qs_sandbox_set_network replaces the policy at once (NULL, 0: none, plain
 * full mode); new connections obey it, and open ones at their next packet.
 * qs_sandbox_network_stats: stats is a msgpack map of the counts since the
 * sandbox started: allowed int (flows opened), dropped int (packets
 * stopped, each logged at QS_LOG_DEBUG), names_allowed int and
 * names_refused int (DNS questions answered and refused under a policy).
 */
qs_status qs_sandbox_set_network(qs_sandbox *sb, const uint8_t *policy, size_t policy_len, qs_error **err);
qs_status qs_sandbox_network_stats(qs_sandbox *sb, qs_buffer *stats, qs_error **err);

/*
 * Background processes. A process started here runs on after the call
 * (and the connection) that started it, until it exits, is killed, or the
 * sandbox stops. The guest keeps the last 4 MiB of its output (stdout and
 * stderr together, oldest dropped first) for any number of attaches, each
 * of which sees the output from the start (as far as it is kept) and then
 * live, until the process exits. A revert brings back the processes of its
 * checkpoint; an id from after it is QS_ERR_NOT_FOUND.
 *
 * request: msgpack map, command required:
 *   command str, cwd str, shell str (default "/bin/sh"), env map str -> str,
 *   user str, pty {rows int, cols int}: run on a pseudo-terminal of that
 *   size (stdout and stderr are then one stream, QS_STDOUT, and input is
 *   raw bytes, ^C included)
 * out (may be NULL): msgpack map {id str, pid int}.
 * qs_sandbox_list_processes: an array of {id str, pid int, command str, pty bool}
 * for the processes that still run.
 * qs_process_write blocks until the process took the bytes; writing to a
 * process that exited or whose stdin is closed is QS_ERR_BAD_REQUEST.
 * qs_process_close_stdin closes stdin (on a terminal it sends ^D).
 * qs_process_signal sends signal (1 to 64) to the process's group.
 * qs_process_resize: processes on a terminal only.
 * qs_process_attach follows the process to its end like qs_sandbox_execute
 * (on_chunk on the calling thread) and gives the same result map;
 * qs_process_attach_async like qs_sandbox_execute_async (qs_call_cancel
 * stops following; the process runs on). An id the guest does not know
 * fails either call itself with QS_ERR_NOT_FOUND: the asynchronous one asks
 * the guest first (one round trip), so its callbacks are never called for
 * it. Failures after the start (the sandbox stopped, a revert that removed
 * the process meanwhile) go to on_done.
 */
qs_status qs_sandbox_start_process(qs_sandbox *sb, const uint8_t *request, size_t request_len, qs_buffer *out, qs_error **err);
qs_status qs_sandbox_list_processes(qs_sandbox *sb, qs_buffer *list, qs_error **err);
qs_status qs_process_write(qs_sandbox *sb, const char *process_id, const uint8_t *data, size_t len, qs_error **err);
qs_status qs_process_close_stdin(qs_sandbox *sb, const char *process_id, qs_error **err);
qs_status qs_process_signal(qs_sandbox *sb, const char *process_id, int signal, qs_error **err);
qs_status qs_process_resize(qs_sandbox *sb, const char *process_id, int rows, int cols, qs_error **err);
qs_status qs_process_attach(qs_sandbox *sb, const char *process_id, qs_chunk_fn on_chunk, void *user_data,
                            qs_buffer *result, qs_error **err);
qs_status qs_process_attach_async(qs_sandbox *sb, const char *process_id, qs_chunk_fn on_chunk, qs_done_fn on_done,
                                  void *user_data, uint64_t *call_id, qs_error **err);

/*
 * Code interpreter: code run cell by cell in a live context whose
 * variables, imports and working folder carry from one run to the next,
 * with rich results (text, HTML, images), as E2B's code interpreter. A
 * Python context is a Jupyter kernel (an image that has ipykernel, such as
 * debian-python, whose warm start has its default Python context running);
 * a bash context works in every image. Contexts live in guest RAM: they
 * follow checkpoints, reverts and saves.
 *
 * qs_sandbox_run_code's request: msgpack map, code required:
 *   code      str            the cell
 *   language  str            "python" (default) or "bash": that language's
 *                            default context, when context is not given;
 *                            with context, empty or the context's own
 *   context   str            a context's id (qs_sandbox_create_code_context)
 *   env       map str -> str set for this run only
 *   timeout   number seconds interrupts the cell (default: none); the run
 *                            then ends with the error "TimeoutError" and
 *                            the context keeps its earlier state
 * on_event (may be NULL): called with each event, on the calling thread,
 * in the order the code produced them: {type "stdout"|"stderr", text str},
 * {type "result", result map}, {type "error", error map}.
 * A result map has is_main_result bool (the value of the cell's last
 * expression, not something it displayed on the way) and each format the
 * result has: text, html, markdown, svg, png, jpeg, pdf, latex, javascript
 * (str; png, jpeg and pdf base64, as Jupyter gives them), json (any
 * value), extra (map: other MIME types, by type). An error map is {name
 * str, value str, traceback str}: the exception the code raised, or
 * "TimeoutError" (the timeout came, or the call was cancelled) or
 * "KernelDied" (the code ended its kernel; the context's next run starts a
 * fresh one).
 * result (required): on success, a msgpack map the caller frees with
 * qs_buffer_free: results (array of result maps, in order), logs {stdout
 * array of str, stderr array of str} (the output in the chunks it came
 * in), error (an error map, nil if none), execution_count int (the
 * context's count of runs). An exception in the code is a success of this
 * call with an error; the call fails for what could not run: an unknown
 * language (QS_ERR_BAD_REQUEST) or context (QS_ERR_NOT_FOUND), an image
 * without a Python kernel, a stopped sandbox.
 * qs_sandbox_run_code_async is to qs_sandbox_run_code what
 * qs_sandbox_execute_async is to qs_sandbox_execute: on_event (may be
 * NULL) then on_done (required, with the result map) on library threads;
 * qs_call_cancel interrupts the cell (on_done then reports
 * QS_ERR_CANCELLED, or a result whose error is "TimeoutError").
 * qs_sandbox_create_code_context: options (may be NULL) is a msgpack map
 *   {language str ("python", the default, or "bash"), cwd str (the
 *   context's first working folder; default /root)}; out (may be NULL) a
 *   context map {id str, language str, cwd str, default bool (the context
 *   runs of its language use when they name none)}.
 * qs_sandbox_list_code_contexts: an array of context maps (the defaults
 *   among them once used).
 * qs_sandbox_restart_code_context gives a context fresh state (a new
 * kernel); qs_sandbox_remove_code_context stops it (a run in it ends). An
 * unknown id is QS_ERR_NOT_FOUND.
 */
qs_status qs_sandbox_run_code(qs_sandbox *sb, const uint8_t *request, size_t request_len, qs_event_fn on_event,
                              void *user_data, qs_buffer *result, qs_error **err);
qs_status qs_sandbox_run_code_async(qs_sandbox *sb, const uint8_t *request, size_t request_len, qs_event_fn on_event,
                                    qs_done_fn on_done, void *user_data, uint64_t *call_id, qs_error **err);
qs_status qs_sandbox_create_code_context(qs_sandbox *sb, const uint8_t *options, size_t options_len, qs_buffer *out,
                                         qs_error **err);
qs_status qs_sandbox_list_code_contexts(qs_sandbox *sb, qs_buffer *list, qs_error **err);
qs_status qs_sandbox_restart_code_context(qs_sandbox *sb, const char *context_id, qs_error **err);
qs_status qs_sandbox_remove_code_context(qs_sandbox *sb, const char *context_id, qs_error **err);

/*
 * Desktop: the screen, keyboard and mouse of a sandbox started with a
 * display (config key display), driven from the host through QEMU, not by
 * a program in the guest: they work whatever the guest's programs do, and
 * the guest cannot fake what the host sees. Coordinates are pixels, (0, 0)
 * the top left corner. Every call on a sandbox without a display (or a
 * server's sandbox, whose desktop is not served yet) is
 * QS_ERR_BAD_REQUEST, but qs_sandbox_mouse_position, which then gives
 * (0, 0).
 *
 * qs_sandbox_screenshot: png (required) is the screen as a PNG image,
 *   freed with qs_buffer_free.
 * qs_sandbox_display_size: the screen's size as the guest has it now
 *   (width and height may be NULL; both are 0 on failure).
 * qs_sandbox_type_text: types UTF-8 text on a US keyboard (shift where a
 *   character needs it). Printable ASCII, newline and tab only: another
 *   character is QS_ERR_BAD_REQUEST naming it, before anything is typed.
 * qs_sandbox_press_key: keys is a msgpack array of strings, a key or a
 *   combination (["ctrl", "alt", "t"]): each goes down in order, then up in
 *   reverse. A key is an X keysym name, case aside ("Return", "Tab",
 *   "Escape", "BackSpace", "Delete", "Home", "End", "Page_Up", "Page_Down",
 *   "Left", "Right", "Up", "Down", "space", "F1" to "F12", "ctrl", "alt",
 *   "shift", "super") or one printable character; an unknown one is
 *   QS_ERR_BAD_REQUEST naming it, and nothing is pressed.
 * qs_sandbox_mouse_move: a pixel off the screen is QS_ERR_BAD_REQUEST.
 * qs_sandbox_mouse_position: where qs_sandbox_mouse_move (or a drag) last
 *   put the pointer, (0, 0) before any: QEMU does not report the guest's
 *   pointer. x and y may be NULL.
 * qs_sandbox_mouse_click, qs_sandbox_mouse_down, qs_sandbox_mouse_up:
 *   button "left", "right" or "middle" (NULL or "": left), where the
 *   pointer is; double_click non-zero clicks twice.
 * qs_sandbox_scroll: turns the wheel dy notches down (negative: up) and dx
 *   right (negative: left), where the pointer is.
 * qs_sandbox_drag: presses the left button at (x1, y1), moves to (x2, y2)
 *   and releases it there.
 * qs_sandbox_vnc: info (required) is a msgpack map {port int (on
 *   127.0.0.1), password str (8 characters, this sandbox's own)} for a VNC
 *   viewer; a display without vnc is QS_ERR_BAD_REQUEST.
 */
qs_status qs_sandbox_screenshot(qs_sandbox *sb, qs_buffer *png, qs_error **err);
qs_status qs_sandbox_display_size(qs_sandbox *sb, int *width, int *height, qs_error **err);
qs_status qs_sandbox_type_text(qs_sandbox *sb, const char *text, qs_error **err);
qs_status qs_sandbox_press_key(qs_sandbox *sb, const uint8_t *keys, size_t keys_len, qs_error **err);
qs_status qs_sandbox_mouse_move(qs_sandbox *sb, int x, int y, qs_error **err);
qs_status qs_sandbox_mouse_position(qs_sandbox *sb, int *x, int *y, qs_error **err);
qs_status qs_sandbox_mouse_click(qs_sandbox *sb, const char *button, int double_click, qs_error **err);
qs_status qs_sandbox_mouse_down(qs_sandbox *sb, const char *button, qs_error **err);
qs_status qs_sandbox_mouse_up(qs_sandbox *sb, const char *button, qs_error **err);
qs_status qs_sandbox_scroll(qs_sandbox *sb, int dx, int dy, qs_error **err);
qs_status qs_sandbox_drag(qs_sandbox *sb, int x1, int y1, int x2, int y2, qs_error **err);
qs_status qs_sandbox_vnc(qs_sandbox *sb, qs_buffer *info, qs_error **err);

/*
 * Images, as `quicksand image` manages them. dir NULL (or "") is the default
 * image folder.
 * qs_image_list: options (may be NULL) is a msgpack map {dirs: array of
 *   str}, folders to look in first; list is a msgpack array of {name str,
 *   arch str, bytes int,
 *   source str ("built", "archive FILE", "quicksand import", "save"), dir str}.
 * qs_image_install: checks every checksum of the archive (.qsimage), unpacks
 *   it beside the image folder and renames it into place; a corrupt or
 *   truncated archive leaves nothing behind. progress (may be NULL) is
 *   called on the calling thread with bytes read and the archive's size.
 *   installed: the new image's folder (text).
 * qs_image_remove: a name in dir, never a save; removed: its folder (text).
 * qs_image_pack: an image (name or folder) into an archive; sha256: the
 *   archive's checksum (hex text), also written beside it.
 * qs_image_import: images of ours from an installed Quicksand image package
 *   (its folder); name NULL for the distribution's; made: a msgpack array
 *   of the folders made.
 * qs_image_build: builds the default image debian-ARCH from a Quicksand-Go
 *   checkout (source; NULL: $QUICKSAND_SOURCE or the one around the working
 *   directory) for arch ("x86_64" or "arm64"; NULL: the host's) into dir
 *   (NULL: the default); without root through mmdebstrap and fakeroot. The
 *   build's own output goes to the process's stderr; it takes minutes.
 *   built: the image's folder (text).
 */
qs_status qs_image_list(const uint8_t *options, size_t options_len, qs_buffer *list, qs_error **err);
qs_status qs_image_install(const char *archive, const char *dir, qs_progress_fn progress, void *user_data,
                           qs_buffer *installed, qs_error **err);
qs_status qs_image_remove(const char *name, const char *dir, qs_buffer *removed, qs_error **err);
qs_status qs_image_pack(const char *name, const char *archive, qs_buffer *sha256, qs_error **err);
qs_status qs_image_import(const char *package_dir, const char *dir, const char *name, qs_buffer *made, qs_error **err);
qs_status qs_image_build(const char *source, const char *arch, const char *dir, qs_buffer *built, qs_error **err);

/*
 * Runs `quicksand serve` in the calling process (docs/deploy.md), for a
 * program whose command line is over the library: options is a msgpack map
 * {args: array of str}, the words after `quicksand serve` (e.g.
 * ["--listen", "unix:/run/qs.sock"]). It blocks until the process gets
 * SIGTERM or SIGINT (which it takes for itself meanwhile), saves its
 * sandboxes and returns QS_OK; bad flags are QS_ERR_INVALID_CONFIG, a
 * failure to start QS_ERR_UNKNOWN, each said on standard error as the
 * command says it.
 */
qs_status qs_serve(const uint8_t *options, size_t options_len, qs_error **err);

/*
 * Pools: sandboxes of one config started, warmed and waiting, so that a
 * start takes one in milliseconds and the pool refills in the background.
 * A sandbox from a pool is a fresh start's: a token issued when taken, the
 * guest's clock set and its RNG reseeded then, its own overlay. A pool that
 * cannot refill (image missing, QEMU failing) makes qs_pool_start fall back
 * to a normal start, the reason logged; it never waits for a refill.
 * qs_pool_new: config as qs_sandbox_start's; size 1 to 256.
 * qs_pool_start: *out is a new sandbox handle, as from qs_sandbox_start.
 * qs_pool_close: stops the sandboxes still waiting (not those handed out);
 *   later starts fail with QS_ERR_NOT_RUNNING. qs_pool_free closes it too.
 */
qs_status qs_pool_new(const uint8_t *config, size_t config_len, int size, qs_pool **out, qs_error **err);
qs_status qs_pool_start(qs_pool *pool, qs_sandbox **out, qs_error **err);
qs_status qs_pool_close(qs_pool *pool, qs_error **err);
void qs_pool_free(qs_pool *pool);

/* Frees a buffer's data and zeroes it. NULL and empty buffers are ignored. */
void qs_buffer_free(qs_buffer *buf);

/* The error's QS_ERR_* code; QS_OK for NULL. */
qs_status qs_error_code(const qs_error *err);

/* The error's message, UTF-8, owned by err: valid until qs_error_free.
 * "" for NULL. */
const char *qs_error_message(const qs_error *err);

/* Frees an error. NULL is ignored. */
void qs_error_free(qs_error *err);

#endif /* QS_BUILDING_LIBRARY */

#ifdef __cplusplus
}
#endif

#endif /* QUICKSAND_H */
