#define _GNU_SOURCE /* memmem */
/* Tests libquicksand through its C ABI against a real VM: start, execute
 * with and without streaming, asynchronously, errors, stop and free. Every
 * buffer and error the header says the caller owns is freed, so valgrind
 * can check for leaks. Prints "N passed, N failed". */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "mini_msgpack.h"
#include "quicksand.h"

static int passed, failed;

#define CHECK(cond, ...)                                          \
    do {                                                          \
        if (cond) {                                               \
            passed++;                                             \
        } else {                                                  \
            failed++;                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);  \
            fprintf(stderr, __VA_ARGS__);                         \
            fprintf(stderr, "\n");                                \
        }                                                         \
    } while (0)

static int has_bytes(mp_value v, const char *want) {
    return v.found && v.is_bin && v.len == strlen(want) && memcmp(v.data, want, v.len) == 0;
}

/* contains_bytes: want appears somewhere in v. */
static int contains_bytes(mp_value v, const char *want) {
    size_t n = strlen(want);
    for (size_t i = 0; v.found && v.is_bin && i + n <= v.len; i++) {
        if (memcmp(v.data + i, want, n) == 0) return 1;
    }
    return 0;
}

/* is_text: a text result is a C string too, a NUL after its len bytes
 * (the header's Conventions). On a library that does not end it, the read
 * at data[len] is past the allocation: valgrind and ASan fail it. */
static int is_text(qs_buffer b) {
    return b.data != NULL && b.data[b.len] == 0 && strlen((const char *)b.data) == b.len;
}

/* request builds {"command": cmd} */
static mp_writer request(const char *cmd) {
    mp_writer w = {0};
    mp_map(&w, 1);
    mp_str(&w, "command");
    mp_str(&w, cmd);
    return w;
}

/* expect_error checks a failed call: its status, and the error it stored in
 * *errp (read here, after the call: argument order is unspecified in C). */
static void expect_error(qs_status status, qs_error **errp, qs_status code, const char *needle, const char *what) {
    qs_error *err = *errp;
    *errp = NULL;
    CHECK(status == code, "%s: status %d, want %d (%s)", what, status, code, qs_error_message(err));
    CHECK(qs_error_code(err) == code, "%s: error code %d, want %d", what, qs_error_code(err), code);
    CHECK(needle == NULL || strstr(qs_error_message(err), needle) != NULL,
          "%s: message \"%s\" lacks %s", what, qs_error_message(err), needle);
    qs_error_free(err);
}

/* Images' text results (an archive's checksum, the folders installed and
 * removed) are NUL-terminated, on a small image made here (its kernel is
 * text: it packs and installs like a real one, it does not boot). */
static void test_image_text_results(void) {
    struct utsname u;
    uname(&u);
    const char *arch = strcmp(u.machine, "aarch64") == 0 ? "arm64" : u.machine;
    char tmp[] = "/tmp/qs-abi-images-XXXXXX";
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "set -e; cd %s; mkdir -p src/tiny-%s dst; cd src/tiny-%s; printf kernel > vmlinux; printf initrd > initrd.img;"
             " qemu-img create -q -f raw rootfs.ext4 1M; printf '{\"name\": \"tiny\", \"arch\": \"%s\", \"kernel\": "
             "\"vmlinux\", \"initrd\": \"initrd.img\", \"rootfs\": \"rootfs.ext4\", \"kernel_args\": \"\"}' > manifest.json",
             tmp, arch, arch, arch);
    CHECK(system(cmd) == 0, "making a small image: %s", cmd);
    char src[256], archive[256], dst[256], installed_name[sizeof u.machine + 8];
    snprintf(src, sizeof src, "%s/src/tiny-%s", tmp, arch);
    snprintf(archive, sizeof archive, "%s/tiny.qsimage", tmp);
    snprintf(dst, sizeof dst, "%s/dst", tmp);
    snprintf(installed_name, sizeof installed_name, "tiny-%s", arch);
    qs_error *err = NULL;

    qs_buffer sum = {0};
    qs_status st = qs_image_pack(src, archive, &sum, &err);
    CHECK(st == QS_OK && sum.len == 64 && is_text(sum), "pack: a NUL-terminated checksum (%s)", qs_error_message(err));
    qs_error_free(err);
    err = NULL;
    qs_buffer_free(&sum);

    qs_buffer installed = {0};
    st = qs_image_install(archive, dst, NULL, NULL, &installed, &err);
    CHECK(st == QS_OK && is_text(installed) && strstr((const char *)installed.data, installed_name) != NULL,
          "install: a NUL-terminated folder (%s)", qs_error_message(err));
    qs_error_free(err);
    err = NULL;
    qs_buffer_free(&installed);

    qs_buffer removed = {0};
    st = qs_image_remove(installed_name, dst, &removed, &err);
    CHECK(st == QS_OK && is_text(removed) && strstr((const char *)removed.data, installed_name) != NULL,
          "remove: a NUL-terminated folder (%s)", qs_error_message(err));
    qs_error_free(err);
    qs_buffer_free(&removed);

    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0, "cleaning up the images");
}

/* Images: the list is an array; bad arguments are clear errors. */
static void test_images(void) {
    qs_error *err = NULL;
    qs_buffer list = {0};
    int st = qs_image_list(NULL, 0, &list, &err);
    CHECK(st == QS_OK && list.len > 0 && (list.data[0] & 0xf0) == 0x90, "images_list: %s", qs_error_message(err));
    qs_buffer_free(&list);
    const uint8_t bad[] = {0x81, 0xa4, 'd', 'i', 'r', 'z', 0x90}; /* {"dirz": []} */
    expect_error(qs_image_list(bad, sizeof bad, &list, &err), &err, QS_ERR_INVALID_CONFIG, "dirz", "an unknown key");
    qs_buffer out = {0};
    expect_error(qs_image_install("/no/such/archive.qsimage", NULL, NULL, NULL, &out, &err), &err, QS_ERR_IMAGE_NOT_FOUND, "/no/such",
                 "a missing archive");
    expect_error(qs_image_remove(NULL, NULL, &out, &err), &err, QS_ERR_INVALID_HANDLE, "NULL", "a NULL name");
    expect_error(qs_image_pack("no-such-image", "/tmp/x.qsimage", &out, &err), &err, QS_ERR_IMAGE_NOT_FOUND, "no-such-image",
                 "packing a missing image");
    test_image_text_results();
}

static void test_errors_without_vm(void) {
    qs_sandbox *sb = (qs_sandbox *)0x1;
    qs_error *err = NULL;
    test_images();

    const uint8_t garbage[] = {0xc1};
    expect_error(qs_sandbox_start(garbage, 1, &sb, &err), &err, QS_ERR_INVALID_CONFIG, "msgpack", "bad msgpack");
    CHECK(sb == NULL, "out not cleared on failure");

    mp_writer w = {0};
    mp_map(&w, 1);
    mp_str(&w, "colour");
    mp_str(&w, "blue");
    expect_error(qs_sandbox_start(w.buf, w.len, &sb, &err), &err, QS_ERR_INVALID_CONFIG, "colour", "unknown key");

    w.len = 0;
    mp_map(&w, 1);
    mp_str(&w, "image");
    mp_str(&w, "no-such-image");
    expect_error(qs_sandbox_start(w.buf, w.len, &sb, &err), &err, QS_ERR_IMAGE_NOT_FOUND, "no-such-image", "missing image");

    qs_buffer res = {0};
    mp_writer r = request("true");
    expect_error(qs_sandbox_execute(NULL, r.buf, r.len, NULL, NULL, &res, &err), &err, QS_ERR_INVALID_HANDLE, "NULL",
                 "NULL handle");
    int bogus;
    expect_error(qs_sandbox_execute((qs_sandbox *)&bogus, r.buf, r.len, NULL, NULL, &res, &err), &err,
                 QS_ERR_INVALID_HANDLE, "unknown", "bogus handle");
    CHECK(res.data == NULL && res.len == 0, "result set on failure");

    /* err may be NULL: the code alone comes back. */
    CHECK(qs_sandbox_stop(NULL, NULL) == QS_ERR_INVALID_HANDLE, "stop NULL without err");
    CHECK(qs_error_code(NULL) == QS_OK && strcmp(qs_error_message(NULL), "") == 0, "NULL error accessors");
    qs_error_free(NULL);
    qs_buffer_free(NULL);
    qs_sandbox_free(NULL);
    CHECK(qs_call_cancel(987654321) == QS_ERR_INVALID_HANDLE, "cancel of an unknown call");
    CHECK(strlen(qs_version()) > 0, "version");
    int major = -1, minor = -1, patch = -1;
    CHECK(sscanf(qs_version(), "%d.%d.%d", &major, &minor, &patch) == 3 &&
              qs_version_number() == major * 10000 + minor * 100 + patch,
          "version number %d for %s", qs_version_number(), qs_version());
    qs_status st = QS_ERR_SNAPSHOT; /* the codes are a type */
    CHECK(st == 13, "qs_status");
    /* The enum is passed as an int: bindings declare it as one. */
    _Static_assert(sizeof(qs_status) == sizeof(int), "qs_status is int-sized");
    CHECK(strcmp(qs_version(), QS_VERSION) == 0 && qs_version_number() == QS_VERSION_NUMBER,
          "the library is %s (%d), the header %s (%d)", qs_version(), qs_version_number(), QS_VERSION, QS_VERSION_NUMBER);
}

struct chunks {
    char out[256];
    size_t out_len;
    int calls;
    int stderr_calls;
};

static void on_chunk(void *ud, int stream, const uint8_t *data, size_t len) {
    struct chunks *c = ud;
    c->calls++;
    if (stream == QS_STDERR) {
        c->stderr_calls++;
        return;
    }
    if (c->out_len + len < sizeof c->out) {
        memcpy(c->out + c->out_len, data, len);
        c->out_len += len;
    }
}

struct async_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, status;
    int exit_code;
    int stdout_ok;
    struct chunks chunks;
};

static void on_chunk_async(void *ud, int stream, const uint8_t *data, size_t len) {
    struct async_state *s = ud;
    pthread_mutex_lock(&s->mu);
    on_chunk(&s->chunks, stream, data, len);
    pthread_mutex_unlock(&s->mu);
}

static void on_done(void *ud, qs_status status, const uint8_t *result, size_t len, const qs_error *err) {
    struct async_state *s = ud;
    pthread_mutex_lock(&s->mu);
    s->status = status;
    if (status == QS_OK) {
        s->exit_code = (int)mp_get(result, len, "exit_code").i;
        s->stdout_ok = has_bytes(mp_get(result, len, "stdout"), "async\n");
    } else if (err == NULL || qs_error_code(err) != status) {
        s->status = -1000; /* the error must describe the failure */
    }
    s->done = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void wait_done(struct async_state *s) {
    pthread_mutex_lock(&s->mu);
    while (!s->done) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

/* The log handler: counts the records that tell the accelerator chosen. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int accel_lines, bad_levels;

static void on_log(void *ud, int level, const char *message) {
    pthread_mutex_lock(&log_mu);
    if (ud != &log_mu || level < QS_LOG_DEBUG || level > QS_LOG_ERROR) bad_levels++;
    if (strstr(message, "accelerator chosen") != NULL && strstr(message, "accel=") != NULL) accel_lines++;
    pthread_mutex_unlock(&log_mu);
}

/* Files: write, read, stat, list, remove, upload, download, and errors. */
static void test_files(qs_sandbox *sb) {
    qs_error *err = NULL;
    mp_writer opts = {0};
    mp_map(&opts, 1);
    mp_str(&opts, "mode");
    mp_uint(&opts, 0600);
    const char *data = "file\0bytes";
    int st = qs_sandbox_write_file(sb, "/tmp/c-file", (const uint8_t *)data, 10, opts.buf, opts.len, &err);
    CHECK(st == QS_OK, "write_file: %s", qs_error_message(err));
    qs_buffer back = {0};
    st = qs_sandbox_read_file(sb, "/tmp/c-file", NULL, 0, &back, &err);
    CHECK(st == QS_OK && back.len == 10 && memcmp(back.data, data, 10) == 0, "read_file: %s", qs_error_message(err));
    qs_buffer_free(&back);

    mp_writer stat = {0};
    mp_map(&stat, 2);
    mp_str(&stat, "op");
    mp_str(&stat, "stat");
    mp_str(&stat, "path");
    mp_str(&stat, "/tmp/c-file");
    qs_buffer res = {0};
    st = qs_sandbox_file_op(sb, stat.buf, stat.len, &res, &err);
    CHECK(st == QS_OK && mp_get(res.data, res.len, "exists").i == 1, "stat: %s", qs_error_message(err));
    qs_buffer_free(&res);

    mp_writer rm = {0};
    mp_map(&rm, 2);
    mp_str(&rm, "op");
    mp_str(&rm, "remove");
    mp_str(&rm, "path");
    mp_str(&rm, "/tmp/c-file");
    CHECK(qs_sandbox_file_op(sb, rm.buf, rm.len, NULL, &err) == QS_OK, "remove: %s", qs_error_message(err));
    st = qs_sandbox_file_op(sb, stat.buf, stat.len, &res, &err);
    CHECK(st == QS_OK && mp_get(res.data, res.len, "exists").found && mp_get(res.data, res.len, "exists").i == 0,
          "stat after remove");
    qs_buffer_free(&res);

    expect_error(qs_sandbox_read_file(sb, "/tmp/c-file", NULL, 0, &back, &err), &err, QS_ERR_NOT_FOUND, "/tmp/c-file",
                 "read of a removed file");
    expect_error(qs_sandbox_write_file(sb, "relative", (const uint8_t *)"x", 1, NULL, 0, &err), &err,
                 QS_ERR_BAD_REQUEST, "not absolute", "a relative path");

    char host[] = "/tmp/qs-c-test-XXXXXX";
    CHECK(mkdtemp(host) != NULL, "mkdtemp");
    char src[64], dst[64];
    snprintf(src, sizeof src, "%s/up", host);
    snprintf(dst, sizeof dst, "%s/down", host);
    FILE *f = fopen(src, "w");
    fputs("uploaded\n", f);
    fclose(f);
    CHECK(qs_sandbox_upload(sb, src, "/tmp/c-up", NULL, 0, &err) == QS_OK, "upload: %s", qs_error_message(err));
    CHECK(qs_sandbox_download(sb, "/tmp/c-up", dst, NULL, 0, &err) == QS_OK, "download: %s", qs_error_message(err));
    char line[32] = {0};
    f = fopen(dst, "r");
    CHECK(f != NULL && fgets(line, sizeof line, f) != NULL && strcmp(line, "uploaded\n") == 0, "downloaded %s", line);
    if (f) fclose(f);
    unlink(src);
    unlink(dst);
    rmdir(host);
}

/* Shared folders: a host folder mounted read-only, seen in the guest, the
 * host refusing a write; listed; unmounted by id; bad input. */
static void test_mounts(qs_sandbox *sb) {
    qs_error *err = NULL;
    char host[] = "/tmp/qs-c-mount-XXXXXX";
    CHECK(mkdtemp(host) != NULL, "mkdtemp");
    char file[64];
    snprintf(file, sizeof file, "%s/shared", host);
    FILE *f = fopen(file, "w");
    fputs("from the host", f);
    fclose(f);

    mp_writer m = {0};
    mp_map(&m, 3);
    mp_str(&m, "host");
    mp_str(&m, host);
    mp_str(&m, "guest");
    mp_str(&m, "/mnt/c");
    mp_str(&m, "readonly");
    mp_byte(&m, 0xc3);
    qs_buffer handle = {0};
    int st = qs_sandbox_mount(sb, m.buf, m.len, &handle, &err);
    CHECK(st == QS_OK, "mount: %s", qs_error_message(err));
    mp_value id = mp_get(handle.data, handle.len, "id");
    CHECK(id.found && id.is_bin && id.len > 0 && mp_get(handle.data, handle.len, "readonly").i == 1, "mount handle");
    char mount_id[64] = {0};
    if (id.found && id.len < sizeof mount_id) memcpy(mount_id, id.data, id.len);
    qs_buffer_free(&handle);

    qs_buffer res = {0};
    mp_writer r = request("cat /mnt/c/shared; echo x > /mnt/c/new");
    st = qs_sandbox_execute(sb, r.buf, r.len, NULL, NULL, &res, &err);
    CHECK(st == QS_OK && has_bytes(mp_get(res.data, res.len, "stdout"), "from the host") &&
              mp_get(res.data, res.len, "exit_code").i != 0,
          "read through the mount, write refused: %s", qs_error_message(err));
    qs_buffer_free(&res);
    snprintf(file, sizeof file, "%s/new", host);
    CHECK(access(file, F_OK) != 0, "a read-only mount let the guest write");

    qs_buffer list = {0};
    st = qs_sandbox_list_mounts(sb, &list, &err);
    CHECK(st == QS_OK && list.len > 0 && list.data[0] == 0x91, "mounts: one, got %zu bytes: %s", list.len,
          qs_error_message(err));
    qs_buffer_free(&list);
    CHECK(qs_sandbox_unmount(sb, mount_id, &err) == QS_OK, "unmount: %s", qs_error_message(err));
    expect_error(qs_sandbox_unmount(sb, mount_id, &err), &err, QS_ERR_BAD_REQUEST, "not mounted", "a second unmount");
    expect_error(qs_sandbox_unmount(sb, NULL, &err), &err, QS_ERR_INVALID_HANDLE, "NULL", "a NULL id");

    mp_writer missing = {0};
    mp_map(&missing, 2);
    mp_str(&missing, "host");
    mp_str(&missing, "/no/such/folder");
    mp_str(&missing, "guest");
    mp_str(&missing, "/mnt/c");
    expect_error(qs_sandbox_mount(sb, missing.buf, missing.len, NULL, &err), &err, QS_ERR_NOT_FOUND, "/no/such/folder",
                 "a missing host folder");
    mp_writer unknown = {0};
    mp_map(&unknown, 1);
    mp_str(&unknown, "hots");
    mp_str(&unknown, host);
    expect_error(qs_sandbox_mount(sb, unknown.buf, unknown.len, NULL, &err), &err, QS_ERR_INVALID_CONFIG, "hots",
                 "an unknown key");
    snprintf(file, sizeof file, "%s/shared", host);
    unlink(file);
    rmdir(host);
}

/* Network policy: a sandbox in full mode whose policy refuses a name
 * (NXDOMAIN, counted) until qs_sandbox_set_network allows it from hosts; bad
 * entries name themselves; the restricted sandbox sb has no guard. No
 * address is reached: 198.19.0.9 (a benchmarking range) is never dialled. */
static void test_network(qs_sandbox *sb) {
    qs_error *err = NULL;
    qs_buffer stats = {0}, res = {0};
    mp_writer one = {0};
    mp_map(&one, 1);
    mp_str(&one, "allow_out");
    mp_array(&one, 1);
    mp_str(&one, "198.19.0.9:1");
    expect_error(qs_sandbox_network_stats(sb, &stats, &err), &err, QS_ERR_BAD_REQUEST, "no network guard",
                 "stats of a restricted sandbox");
    expect_error(qs_sandbox_set_network(sb, one.buf, one.len, &err), &err, QS_ERR_BAD_REQUEST, "no network guard",
                 "a policy on a restricted sandbox");

    mp_writer cfg = {0};
    mp_map(&cfg, 1);
    mp_str(&cfg, "network_policy");
    memcpy(cfg.buf + cfg.len, one.buf, one.len);
    cfg.len += one.len;
    qs_sandbox *guarded = NULL;
    int st = qs_sandbox_start(cfg.buf, cfg.len, &guarded, &err);
    CHECK(st == QS_OK, "start with a policy: %s", qs_error_message(err));
    if (st != QS_OK) {
        qs_error_free(err);
        return;
    }
    mp_writer r = request("getent hosts example.invalid; echo $?");
    st = qs_sandbox_execute(guarded, r.buf, r.len, NULL, NULL, &res, &err);
    CHECK(st == QS_OK && has_bytes(mp_get(res.data, res.len, "stdout"), "2\n"), "a name not allowed: NXDOMAIN (%s)",
          qs_error_message(err));
    qs_buffer_free(&res);
    st = qs_sandbox_network_stats(guarded, &stats, &err);
    CHECK(st == QS_OK && mp_get(stats.data, stats.len, "names_refused").i >= 1 &&
              mp_get(stats.data, stats.len, "allowed").found && mp_get(stats.data, stats.len, "dropped").found,
          "stats count the refused name: %s", qs_error_message(err));
    qs_buffer_free(&stats);

    mp_writer named = {0};
    mp_map(&named, 2);
    mp_str(&named, "allow_out");
    mp_array(&named, 2);
    mp_str(&named, "198.19.0.9:1");
    mp_str(&named, "example.invalid");
    mp_str(&named, "hosts");
    mp_map(&named, 1);
    mp_str(&named, "example.invalid");
    mp_array(&named, 1);
    mp_str(&named, "198.19.0.9");
    CHECK(qs_sandbox_set_network(guarded, named.buf, named.len, &err) == QS_OK, "set_network: %s", qs_error_message(err));
    mp_writer r2 = request("getent hosts example.invalid");
    st = qs_sandbox_execute(guarded, r2.buf, r2.len, NULL, NULL, &res, &err);
    CHECK(st == QS_OK && contains_bytes(mp_get(res.data, res.len, "stdout"), "198.19.0.9"), "an allowed name resolves");
    qs_buffer_free(&res);
    st = qs_sandbox_network_stats(guarded, &stats, &err);
    CHECK(st == QS_OK && mp_get(stats.data, stats.len, "names_allowed").i >= 1, "stats count the allowed name");
    qs_buffer_free(&stats);

    mp_writer bad = {0};
    mp_map(&bad, 1);
    mp_str(&bad, "deny_out");
    mp_array(&bad, 1);
    mp_str(&bad, "10.0.0.0/33");
    expect_error(qs_sandbox_set_network(guarded, bad.buf, bad.len, &err), &err, QS_ERR_INVALID_CONFIG, "deny_out[0]",
                 "a bad entry");
    mp_writer typo = {0};
    mp_map(&typo, 1);
    mp_str(&typo, "allow");
    mp_array(&typo, 0);
    expect_error(qs_sandbox_set_network(guarded, typo.buf, typo.len, &err), &err, QS_ERR_INVALID_CONFIG, "\"allow\"",
                 "an unknown policy key");
    expect_error(qs_sandbox_network_stats(guarded, NULL, &err), &err, QS_ERR_INVALID_HANDLE, "NULL", "NULL stats");
    CHECK(qs_sandbox_set_network(guarded, NULL, 0, &err) == QS_OK, "removing the policy: %s", qs_error_message(err));
    CHECK(qs_sandbox_stop(guarded, &err) == QS_OK, "stop: %s", qs_error_message(err));
    qs_sandbox_free(guarded);
}

/* Background processes: stdin in, output by a sync attach, a terminal, a
 * second attach after the end, bad input. */
static void test_processes(qs_sandbox *sb) {
    qs_error *err = NULL;
    mp_writer req = {0};
    mp_map(&req, 1);
    mp_str(&req, "command");
    mp_str(&req, "cat; echo done");
    qs_buffer out = {0};
    int st = qs_sandbox_start_process(sb, req.buf, req.len, &out, &err);
    CHECK(st == QS_OK, "start_process: %s", qs_error_message(err));
    mp_value idv = mp_get(out.data, out.len, "id");
    char id[64] = {0};
    if (idv.found && idv.len < sizeof id) memcpy(id, idv.data, idv.len);
    CHECK(id[0] != 0 && mp_get(out.data, out.len, "pid").i > 1, "process id and pid");
    qs_buffer_free(&out);

    qs_buffer list = {0};
    CHECK(qs_sandbox_list_processes(sb, &list, &err) == QS_OK && list.len > 0 && list.data[0] == 0x91, "one process listed");
    qs_buffer_free(&list);
    CHECK(qs_process_write(sb, id, (const uint8_t *)"hello\n", 6, &err) == QS_OK, "write: %s", qs_error_message(err));
    CHECK(qs_process_close_stdin(sb, id, &err) == QS_OK, "close_stdin: %s", qs_error_message(err));
    struct chunks c = {0};
    qs_buffer res = {0};
    st = qs_process_attach(sb, id, on_chunk, &c, &res, &err);
    CHECK(st == QS_OK && has_bytes(mp_get(res.data, res.len, "stdout"), "hello\ndone\n") &&
              mp_get(res.data, res.len, "exit_code").i == 0 && c.out_len == 11,
          "attach: %s", qs_error_message(err));
    qs_buffer_free(&res);
    /* Attaching again after the end gives the same output. */
    st = qs_process_attach(sb, id, NULL, NULL, &res, &err);
    CHECK(st == QS_OK && has_bytes(mp_get(res.data, res.len, "stdout"), "hello\ndone\n"), "second attach");
    qs_buffer_free(&res);
    expect_error(qs_process_write(sb, id, (const uint8_t *)"x", 1, &err), &err, QS_ERR_BAD_REQUEST, "exited",
                 "write after exit");

    mp_writer tty = {0};
    mp_map(&tty, 2);
    mp_str(&tty, "command");
    mp_str(&tty, "read x; stty size");
    mp_str(&tty, "pty");
    mp_map(&tty, 2);
    mp_str(&tty, "rows");
    mp_uint(&tty, 24);
    mp_str(&tty, "cols");
    mp_uint(&tty, 80);
    st = qs_sandbox_start_process(sb, tty.buf, tty.len, &out, &err);
    CHECK(st == QS_OK, "start on a terminal: %s", qs_error_message(err));
    idv = mp_get(out.data, out.len, "id");
    memset(id, 0, sizeof id);
    if (idv.found && idv.len < sizeof id) memcpy(id, idv.data, idv.len);
    qs_buffer_free(&out);
    CHECK(qs_process_resize(sb, id, 33, 101, &err) == QS_OK, "resize: %s", qs_error_message(err));
    CHECK(qs_process_write(sb, id, (const uint8_t *)"\n", 1, &err) == QS_OK, "write to the terminal");
    st = qs_process_attach(sb, id, NULL, NULL, &res, &err);
    CHECK(st == QS_OK && contains_bytes(mp_get(res.data, res.len, "stdout"), "33 101\r\n"), "the terminal's size followed");
    qs_buffer_free(&res);

    expect_error(qs_process_signal(sb, "p-unknown", 15, &err), &err, QS_ERR_NOT_FOUND, "p-unknown", "an unknown id");
    /* An asynchronous attach to an unknown id fails itself, at once: its
     * callbacks are never called (an error only on_done heard of would be
     * lost to a caller that checks the status, as the bindings do). */
    struct async_state unknown = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    uint64_t none_id = 0;
    st = qs_process_attach_async(sb, "p-unknown", on_chunk_async, on_done, &unknown, &none_id, &err);
    if (st == QS_OK) wait_done(&unknown); /* the old way: the error reached on_done only */
    expect_error(st, &err, QS_ERR_NOT_FOUND, "p-unknown", "an asynchronous attach to an unknown id");
    usleep(200 * 1000);
    CHECK(!unknown.done && none_id == 0, "a failed attach_async called on_done (%d) or gave a call id", unknown.done);
    expect_error(qs_process_signal(sb, id, 99, &err), &err, QS_ERR_BAD_REQUEST, "out of range", "signal 99");
    expect_error(qs_process_write(sb, NULL, NULL, 0, &err), &err, QS_ERR_INVALID_HANDLE, "NULL", "a NULL id");
    mp_writer none = {0};
    mp_map(&none, 1);
    mp_str(&none, "cwd");
    mp_str(&none, "/");
    expect_error(qs_sandbox_start_process(sb, none.buf, none.len, NULL, &err), &err, QS_ERR_BAD_REQUEST, "command",
                 "no command");
}

/* A pool: a start from it is a working sandbox; a closed pool refuses. */
static void test_pool(void) {
    qs_error *err = NULL;
    qs_pool *pool = NULL;
    expect_error(qs_pool_new(NULL, 0, 0, &pool, &err), &err, QS_ERR_INVALID_CONFIG, "1 to 256", "a pool of 0");
    CHECK(qs_pool_new(NULL, 0, 1, &pool, &err) == QS_OK && pool != NULL, "pool_new: %s", qs_error_message(err));
    qs_sandbox *sb = NULL;
    CHECK(qs_pool_start(pool, &sb, &err) == QS_OK && sb != NULL, "pool_start: %s", qs_error_message(err));
    qs_buffer res = {0};
    mp_writer r = request("echo pooled");
    CHECK(qs_sandbox_execute(sb, r.buf, r.len, NULL, NULL, &res, &err) == QS_OK &&
              has_bytes(mp_get(res.data, res.len, "stdout"), "pooled\n"),
          "execute in a pooled sandbox");
    qs_buffer_free(&res);
    qs_sandbox_stop(sb, NULL);
    qs_sandbox_free(sb);
    CHECK(qs_pool_close(pool, &err) == QS_OK, "pool_close");
    expect_error(qs_pool_start(pool, &sb, &err), &err, QS_ERR_NOT_RUNNING, "closed", "a start from a closed pool");
    qs_pool_free(pool);
    expect_error(qs_pool_start(pool, &sb, &err), &err, QS_ERR_INVALID_HANDLE, "freed", "a freed pool");
    qs_pool_free(NULL);
}

/* The code interpreter, in a debian-python sandbox: a Python context's
 * state across calls, its events in order, an exception's name, a
 * cancelled run that keeps the state, a bash context's folder. */
struct code_events {
    pthread_mutex_t mu;
    char kinds[64]; /* o stdout, e stderr, r result, x error, per event */
    size_t n;
    int done, status, timed_out;
};

static void on_code_event(void *ud, const uint8_t *event, size_t len) {
    struct code_events *e = ud;
    mp_value t = mp_get(event, len, "type");
    char k = has_bytes(t, "stdout") ? 'o' : has_bytes(t, "stderr") ? 'e' : has_bytes(t, "result") ? 'r'
             : has_bytes(t, "error")  ? 'x' : '?';
    pthread_mutex_lock(&e->mu);
    if (e->n + 1 < sizeof e->kinds) e->kinds[e->n++] = k;
    pthread_mutex_unlock(&e->mu);
}

static void on_code_done(void *ud, qs_status status, const uint8_t *result, size_t len, const qs_error *err) {
    struct code_events *e = ud;
    pthread_mutex_lock(&e->mu);
    e->status = status;
    if (status == QS_OK) {
        mp_value error = mp_get(result, len, "error");
        e->timed_out = error.is_container && has_bytes(mp_get(error.data, error.len, "name"), "TimeoutError");
    } else if (err == NULL || qs_error_code(err) != status) {
        e->status = -1000;
    }
    e->done = 1;
    pthread_mutex_unlock(&e->mu);
}

/* code_request builds {code, context (if not NULL)}. */
static mp_writer code_request(const char *code, const char *context) {
    mp_writer w = {0};
    mp_map(&w, context ? 2 : 1);
    mp_str(&w, "code");
    mp_str(&w, code);
    if (context) {
        mp_str(&w, "context");
        mp_str(&w, context);
    }
    return w;
}

/* main_text: the text of a run's first result, if it is the main one. */
static mp_value main_text(qs_buffer res) {
    mp_value none = {0};
    mp_value results = mp_get(res.data, res.len, "results");
    if (!results.is_container || results.len < 2 || (results.data[0] & 0xf0) != 0x90) return none;
    if (mp_get(results.data + 1, results.len - 1, "is_main_result").i != 1) return none;
    return mp_get(results.data + 1, results.len - 1, "text");
}

static void test_code(void) {
    qs_error *err = NULL;
    qs_sandbox *sb = NULL;
    mp_writer cfg = {0};
    mp_map(&cfg, 2);
    mp_str(&cfg, "image");
    mp_str(&cfg, "debian-python");
    mp_str(&cfg, "memory");
    mp_uint(&cfg, 1024);
    int st = qs_sandbox_start(cfg.buf, cfg.len, &sb, &err);
    CHECK(st == QS_OK, "start debian-python: %s", qs_error_message(err));
    if (st != QS_OK) {
        qs_error_free(err);
        return;
    }
    qs_buffer res = {0};
    mp_writer r = code_request("x = 41", NULL);
    CHECK(qs_sandbox_run_code(sb, r.buf, r.len, NULL, NULL, &res, &err) == QS_OK, "run x = 41: %s", qs_error_message(err));
    int64_t count = mp_get(res.data, res.len, "execution_count").i;
    CHECK(mp_get(res.data, res.len, "error").is_nil, "x = 41 has no error");
    qs_buffer_free(&res);
    r = code_request("x + 1", NULL);
    CHECK(qs_sandbox_run_code(sb, r.buf, r.len, NULL, NULL, &res, &err) == QS_OK && has_bytes(main_text(res), "42") &&
              mp_get(res.data, res.len, "execution_count").i == count + 1,
          "x + 1 is 42 in the next run: %s", qs_error_message(err));
    qs_buffer_free(&res);

    struct code_events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
    r = code_request("import sys\nprint('one', flush=True)\nprint('two', file=sys.stderr, flush=True)\n"
                     "def f():\n    return 1 / 0\nf()", NULL);
    st = qs_sandbox_run_code(sb, r.buf, r.len, on_code_event, &ev, &res, &err);
    mp_value error = mp_get(res.data, res.len, "error");
    CHECK(st == QS_OK && error.is_container && has_bytes(mp_get(error.data, error.len, "name"), "ZeroDivisionError") &&
              contains_bytes(mp_get(error.data, error.len, "traceback"), "return 1 / 0"),
          "an exception's name and traceback: %s", qs_error_message(err));
    CHECK(strcmp(ev.kinds, "oex") == 0, "events in order: %s, want oex", ev.kinds);
    qs_buffer_free(&res);

    /* Cancelled asynchronously: the cell is interrupted, the state stays. */
    struct code_events slow = {.mu = PTHREAD_MUTEX_INITIALIZER};
    uint64_t call_id = 0;
    r = code_request("import time\ntime.sleep(600)", NULL);
    st = qs_sandbox_run_code_async(sb, r.buf, r.len, on_code_event, on_code_done, &slow, &call_id, &err);
    CHECK(st == QS_OK && call_id != 0, "run_code_async: %s", qs_error_message(err));
    sleep(2);
    CHECK(qs_call_cancel(call_id) == QS_OK, "cancel the run");
    for (int i = 0; i < 600; i++) {
        pthread_mutex_lock(&slow.mu);
        int done = slow.done;
        pthread_mutex_unlock(&slow.mu);
        if (done) break;
        usleep(100 * 1000);
    }
    CHECK(slow.done && (slow.status == QS_ERR_CANCELLED || (slow.status == QS_OK && slow.timed_out)),
          "a cancelled run: done %d, status %d", slow.done, slow.status);
    r = code_request("x", NULL);
    CHECK(qs_sandbox_run_code(sb, r.buf, r.len, NULL, NULL, &res, &err) == QS_OK && has_bytes(main_text(res), "41"),
          "x after the cancel: %s", qs_error_message(err));
    qs_buffer_free(&res);

    /* A bash context keeps its folder and variables. */
    mp_writer opts = {0};
    mp_map(&opts, 2);
    mp_str(&opts, "language");
    mp_str(&opts, "bash");
    mp_str(&opts, "cwd");
    mp_str(&opts, "/tmp");
    qs_buffer out = {0};
    CHECK(qs_sandbox_create_code_context(sb, opts.buf, opts.len, &out, &err) == QS_OK, "create a bash context: %s",
          qs_error_message(err));
    mp_value idv = mp_get(out.data, out.len, "id");
    char id[64] = {0};
    if (idv.found && idv.is_bin && idv.len < sizeof id) memcpy(id, idv.data, idv.len);
    CHECK(id[0] && has_bytes(mp_get(out.data, out.len, "language"), "bash") &&
              has_bytes(mp_get(out.data, out.len, "cwd"), "/tmp"),
          "the bash context's map");
    qs_buffer_free(&out);
    r = code_request("pwd; cd /var; N=7", id);
    CHECK(qs_sandbox_run_code(sb, r.buf, r.len, NULL, NULL, &res, &err) == QS_OK &&
              memmem(res.data, res.len, "/tmp\n", 5) != NULL,
          "a bash context starts in its cwd: %s", qs_error_message(err));
    qs_buffer_free(&res);
    r = code_request("echo \"$PWD $N\"", id);
    CHECK(qs_sandbox_run_code(sb, r.buf, r.len, NULL, NULL, &res, &err) == QS_OK &&
              memmem(res.data, res.len, "/var 7\n", 7) != NULL,
          "a bash context keeps its folder and variables: %s", qs_error_message(err));
    qs_buffer_free(&res);
    qs_buffer list = {0};
    CHECK(qs_sandbox_list_code_contexts(sb, &list, &err) == QS_OK && memmem(list.data, list.len, id, strlen(id)) != NULL,
          "the context listed: %s", qs_error_message(err));
    qs_buffer_free(&list);
    CHECK(qs_sandbox_restart_code_context(sb, id, &err) == QS_OK, "restart: %s", qs_error_message(err));
    CHECK(qs_sandbox_remove_code_context(sb, id, &err) == QS_OK, "remove: %s", qs_error_message(err));
    expect_error(qs_sandbox_remove_code_context(sb, id, &err), &err, QS_ERR_NOT_FOUND, NULL, "removing it again");
    expect_error(qs_sandbox_run_code(sb, r.buf, r.len, NULL, NULL, &res, &err), &err, QS_ERR_NOT_FOUND, NULL,
                 "a run in a removed context");

    mp_writer bad = {0};
    mp_map(&bad, 1);
    mp_str(&bad, "language");
    mp_str(&bad, "python");
    expect_error(qs_sandbox_run_code(sb, bad.buf, bad.len, NULL, NULL, &res, &err), &err, QS_ERR_BAD_REQUEST, "code",
                 "a request without code");
    r = code_request("1", NULL);
    expect_error(qs_sandbox_run_code(sb, r.buf, r.len, NULL, NULL, NULL, &err), &err, QS_ERR_INVALID_HANDLE, "NULL",
                 "a NULL result");
    expect_error(qs_sandbox_remove_code_context(sb, NULL, &err), &err, QS_ERR_INVALID_HANDLE, "NULL", "a NULL id");
    qs_sandbox_stop(sb, NULL);
    qs_sandbox_free(sb);
}

/* png_size reads a PNG's size from its IHDR; 0 when it is not a PNG. */
static int png_size(qs_buffer png, uint32_t *w, uint32_t *h) {
    if (png.data == NULL || png.len < 24 || memcmp(png.data, "\x89PNG\r\n\x1a\n", 8) != 0 ||
        memcmp(png.data + 12, "IHDR", 4) != 0)
        return 0;
    *w = (uint32_t)png.data[16] << 24 | (uint32_t)png.data[17] << 16 | (uint32_t)png.data[18] << 8 | png.data[19];
    *h = (uint32_t)png.data[20] << 24 | (uint32_t)png.data[21] << 16 | (uint32_t)png.data[22] << 8 | png.data[23];
    return 1;
}

/* key_list builds a msgpack array of n key names. */
static mp_writer key_list(int n, const char **keys) {
    mp_writer w = {0};
    mp_array(&w, n);
    for (int i = 0; i < n; i++) mp_str(&w, keys[i]);
    return w;
}

/* The desktop calls on a sandbox without a display: each says so. */
static void test_desktop_errors(qs_sandbox *sb) {
    qs_error *err = NULL;
    qs_buffer png = {0}, vnc = {0};
    int w = -1, h = -1;
    const char *combo[] = {"ctrl", "alt", "t"};
    mp_writer keys = key_list(3, combo);
    expect_error(qs_sandbox_screenshot(sb, &png, &err), &err, QS_ERR_BAD_REQUEST, "no display", "a screenshot without a display");
    CHECK(png.data == NULL && png.len == 0, "no PNG without a display");
    expect_error(qs_sandbox_display_size(sb, &w, &h, &err), &err, QS_ERR_BAD_REQUEST, "no display", "display_size");
    CHECK(w == 0 && h == 0, "no size without a display: %dx%d", w, h);
    expect_error(qs_sandbox_type_text(sb, "hi", &err), &err, QS_ERR_BAD_REQUEST, "no display", "type_text");
    expect_error(qs_sandbox_press_key(sb, keys.buf, keys.len, &err), &err, QS_ERR_BAD_REQUEST, "no display", "press_key");
    expect_error(qs_sandbox_mouse_move(sb, 1, 1, &err), &err, QS_ERR_BAD_REQUEST, "no display", "mouse_move");
    expect_error(qs_sandbox_mouse_click(sb, NULL, 1, &err), &err, QS_ERR_BAD_REQUEST, "no display", "mouse_click");
    expect_error(qs_sandbox_mouse_down(sb, "left", &err), &err, QS_ERR_BAD_REQUEST, "no display", "mouse_down");
    expect_error(qs_sandbox_mouse_up(sb, "left", &err), &err, QS_ERR_BAD_REQUEST, "no display", "mouse_up");
    expect_error(qs_sandbox_scroll(sb, 0, 3, &err), &err, QS_ERR_BAD_REQUEST, "no display", "scroll");
    expect_error(qs_sandbox_drag(sb, 1, 1, 5, 5, &err), &err, QS_ERR_BAD_REQUEST, "no display", "drag");
    expect_error(qs_sandbox_vnc(sb, &vnc, &err), &err, QS_ERR_BAD_REQUEST, "no display", "vnc");
    CHECK(qs_sandbox_mouse_position(sb, &w, &h, &err) == QS_OK && err == NULL && w == 0 && h == 0,
          "mouse_position without a display: (0, 0), got (%d, %d)", w, h);
    /* What the ABI checks itself, before the engine. */
    expect_error(qs_sandbox_screenshot(sb, NULL, &err), &err, QS_ERR_INVALID_HANDLE, "NULL", "a NULL png");
    expect_error(qs_sandbox_vnc(sb, NULL, &err), &err, QS_ERR_INVALID_HANDLE, "NULL", "a NULL vnc info");
    expect_error(qs_sandbox_type_text(sb, NULL, &err), &err, QS_ERR_INVALID_HANDLE, "NULL", "NULL text");
    expect_error(qs_sandbox_screenshot(NULL, &png, &err), &err, QS_ERR_INVALID_HANDLE, "NULL", "a NULL sandbox");
    expect_error(qs_sandbox_press_key(sb, NULL, 0, &err), &err, QS_ERR_BAD_REQUEST, "keys", "no keys");
    mp_writer notlist = {0};
    mp_str(&notlist, "Return");
    expect_error(qs_sandbox_press_key(sb, notlist.buf, notlist.len, &err), &err, QS_ERR_BAD_REQUEST, "array",
                 "keys not in an array");
    /* A display on an image without a desktop is refused at the start. */
    mp_writer cfg = {0};
    mp_map(&cfg, 1);
    mp_str(&cfg, "display");
    mp_byte(&cfg, 0xc3); /* true */
    qs_sandbox *none = NULL;
    expect_error(qs_sandbox_start(cfg.buf, cfg.len, &none, &err), &err, QS_ERR_INVALID_CONFIG, "no desktop",
                 "a display on the debian image");
    CHECK(none == NULL, "no handle for a refused config");
    mp_writer bad = {0};
    mp_map(&bad, 1);
    mp_str(&bad, "display");
    mp_str(&bad, "yes");
    expect_error(qs_sandbox_start(bad.buf, bad.len, &none, &err), &err, QS_ERR_INVALID_CONFIG, "display",
                 "display neither a boolean nor a map");
}

/* The desktop of a debian-desktop sandbox: a screenshot's PNG and size,
 * the pointer, and the errors the engine gives for what it cannot do. */
static void test_desktop(void) {
    qs_error *err = NULL;
    qs_sandbox *sb = NULL;
    mp_writer cfg = {0};
    mp_map(&cfg, 3);
    mp_str(&cfg, "image");
    mp_str(&cfg, "debian-desktop");
    mp_str(&cfg, "memory");
    mp_uint(&cfg, 1536);
    mp_str(&cfg, "display");
    mp_byte(&cfg, 0xc3); /* true: 1280x800 */
    int st = qs_sandbox_start(cfg.buf, cfg.len, &sb, &err);
    CHECK(st == QS_OK, "start debian-desktop: %s", qs_error_message(err));
    if (st != QS_OK) {
        qs_error_free(err);
        return;
    }
    qs_buffer png = {0};
    uint32_t pw = 0, ph = 0;
    st = qs_sandbox_screenshot(sb, &png, &err);
    CHECK(st == QS_OK && png_size(png, &pw, &ph) && pw == 1280 && ph == 800,
          "a screenshot is a 1280x800 PNG: %s, %zu bytes, %ux%u", qs_error_message(err), png.len, pw, ph);
    qs_buffer_free(&png);
    int w = 0, h = 0;
    CHECK(qs_sandbox_display_size(sb, &w, &h, &err) == QS_OK && w == 1280 && h == 800, "display_size %dx%d: %s", w, h,
          qs_error_message(err));
    CHECK(qs_sandbox_mouse_move(sb, 640, 400, &err) == QS_OK, "mouse_move: %s", qs_error_message(err));
    CHECK(qs_sandbox_mouse_position(sb, &w, &h, &err) == QS_OK && w == 640 && h == 400, "mouse_position (%d, %d)", w, h);
    CHECK(qs_sandbox_drag(sb, 100, 100, 200, 150, &err) == QS_OK, "drag: %s", qs_error_message(err));
    CHECK(qs_sandbox_mouse_position(sb, &w, &h, &err) == QS_OK && w == 200 && h == 150, "after the drag (%d, %d)", w, h);
    CHECK(qs_sandbox_scroll(sb, 0, 2, &err) == QS_OK, "scroll: %s", qs_error_message(err));
    CHECK(qs_sandbox_mouse_click(sb, "right", 0, &err) == QS_OK, "right click: %s", qs_error_message(err));
    const char *esc[] = {"Escape"};
    mp_writer k = key_list(1, esc);
    CHECK(qs_sandbox_press_key(sb, k.buf, k.len, &err) == QS_OK, "press Escape: %s", qs_error_message(err));
    expect_error(qs_sandbox_mouse_move(sb, 1280, 10, &err), &err, QS_ERR_BAD_REQUEST, "off the 1280x800 screen",
                 "a pixel off the screen");
    expect_error(qs_sandbox_type_text(sb, "caf\xc3\xa9", &err), &err, QS_ERR_BAD_REQUEST, "U+00E9",
                 "a character with no key");
    const char *bad[] = {"ctrl", "Hyper_Q"};
    k = key_list(2, bad);
    expect_error(qs_sandbox_press_key(sb, k.buf, k.len, &err), &err, QS_ERR_BAD_REQUEST, "Hyper_Q", "an unknown key");
    expect_error(qs_sandbox_mouse_click(sb, "fourth", 0, &err), &err, QS_ERR_BAD_REQUEST, "fourth", "an unknown button");
    qs_buffer vnc = {0};
    expect_error(qs_sandbox_vnc(sb, &vnc, &err), &err, QS_ERR_BAD_REQUEST, "no VNC", "vnc without Display.vnc");
    qs_sandbox_stop(sb, NULL);
    expect_error(qs_sandbox_screenshot(sb, &png, &err), &err, QS_ERR_NOT_RUNNING, NULL, "a screenshot after stop");
    qs_sandbox_free(sb);
}

static void test_with_vm(void) {
    qs_log_set_handler(on_log, &log_mu, QS_LOG_INFO);
    qs_sandbox *sb = NULL;
    qs_error *err = NULL;
    mp_writer cfg = {0};
    mp_map(&cfg, 2);
    mp_str(&cfg, "memory");
    mp_str(&cfg, "512M");
    mp_str(&cfg, "boot_timeout");
    mp_double(&cfg, 120.0);
    int st = qs_sandbox_start(cfg.buf, cfg.len, &sb, &err);
    CHECK(st == QS_OK && sb != NULL && err == NULL, "start: %d %s", st, qs_error_message(err));
    if (st != QS_OK) {
        qs_error_free(err);
        return;
    }
    qs_log_set_handler(NULL, NULL, 0);
    pthread_mutex_lock(&log_mu);
    CHECK(accel_lines == 1 && bad_levels == 0, "log handler: %d accelerator lines, %d bad calls", accel_lines, bad_levels);
    pthread_mutex_unlock(&log_mu);

    /* Without streaming. */
    qs_buffer res = {0};
    mp_writer r = request("echo hello; echo oops >&2; exit 3");
    st = qs_sandbox_execute(sb, r.buf, r.len, NULL, NULL, &res, &err);
    CHECK(st == QS_OK, "execute: %s", qs_error_message(err));
    CHECK(has_bytes(mp_get(res.data, res.len, "stdout"), "hello\n"), "stdout");
    CHECK(has_bytes(mp_get(res.data, res.len, "stderr"), "oops\n"), "stderr");
    CHECK(mp_get(res.data, res.len, "exit_code").i == 3, "exit code");
    CHECK(mp_get(res.data, res.len, "timed_out").found && mp_get(res.data, res.len, "timed_out").i == 0, "timed_out");
    CHECK(mp_get(res.data, res.len, "duration").f > 0, "duration");
    qs_buffer_free(&res);
    CHECK(res.data == NULL && res.len == 0, "buffer zeroed by free");

    /* Streaming, with every request key. */
    struct chunks c = {0};
    mp_writer full = {0};
    mp_map(&full, 8);
    mp_str(&full, "command");
    mp_str(&full, "printf \"$A\"; sleep 0.3; cat; pwd; id -un; echo e >&2");
    mp_str(&full, "timeout");
    mp_uint(&full, 20);
    mp_str(&full, "cwd");
    mp_str(&full, "/tmp");
    mp_str(&full, "shell");
    mp_str(&full, "/bin/sh");
    mp_str(&full, "env");
    mp_map(&full, 1);
    mp_str(&full, "A");
    mp_str(&full, "first,");
    mp_str(&full, "stdin");
    mp_bin(&full, (const uint8_t *)"in,", 3);
    mp_str(&full, "user");
    mp_str(&full, "nobody");
    mp_str(&full, "max_output");
    mp_uint(&full, 6);
    st = qs_sandbox_execute(sb, full.buf, full.len, on_chunk, &c, &res, &err);
    CHECK(st == QS_OK, "streaming execute: %s", qs_error_message(err));
    c.out[c.out_len] = 0;
    CHECK(strcmp(c.out, "first,in,/tmp\nnobody\n") == 0, "streamed stdout %s", c.out);
    CHECK(c.calls >= 3 && c.stderr_calls == 1, "chunk calls %d (stderr %d)", c.calls, c.stderr_calls);
    CHECK(has_bytes(mp_get(res.data, res.len, "stdout"), "first,"), "streamed result stdout, cut at max_output");
    CHECK(mp_get(res.data, res.len, "stdout_truncated").i == 1, "stdout_truncated");
    qs_buffer_free(&res);

    /* Bad requests. */
    mp_writer bad = {0};
    mp_map(&bad, 1);
    mp_str(&bad, "cwd");
    mp_str(&bad, "/");
    expect_error(qs_sandbox_execute(sb, bad.buf, bad.len, NULL, NULL, &res, &err), &err, QS_ERR_BAD_REQUEST, "command",
                 "request without command");
    expect_error(qs_sandbox_execute(sb, (const uint8_t *)"\xc1", 1, NULL, NULL, &res, &err), &err, QS_ERR_BAD_REQUEST,
                 "msgpack", "garbage request");
    expect_error(qs_sandbox_execute(sb, r.buf, r.len, NULL, NULL, NULL, &err), &err, QS_ERR_INVALID_HANDLE, "result",
                 "NULL result");

    /* Asynchronous, then cancelled. */
    struct async_state s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    mp_writer a = request("echo async; exit 7");
    uint64_t id = 0;
    st = qs_sandbox_execute_async(sb, a.buf, a.len, on_chunk_async, on_done, &s, &id, &err);
    CHECK(st == QS_OK && id != 0, "execute_async: %s", qs_error_message(err));
    wait_done(&s);
    CHECK(s.status == QS_OK && s.exit_code == 7 && s.stdout_ok, "async result: status %d exit %d", s.status, s.exit_code);
    CHECK(s.chunks.calls == 1, "async chunk calls %d", s.chunks.calls);

    struct async_state s2 = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    mp_writer slow = request("sleep 30");
    st = qs_sandbox_execute_async(sb, slow.buf, slow.len, NULL, on_done, &s2, &id, &err);
    CHECK(st == QS_OK, "slow async: %s", qs_error_message(err));
    CHECK(qs_call_cancel(id) == QS_OK, "cancel");
    wait_done(&s2);
    CHECK(s2.status == QS_ERR_CANCELLED, "cancelled call status %d", s2.status);

    /* Checkpoint, revert, save. */
    mp_writer w1 = request("echo x > /root/f");
    CHECK(qs_sandbox_execute(sb, w1.buf, w1.len, NULL, NULL, &res, &err) == QS_OK, "write f");
    qs_buffer_free(&res);
    CHECK(qs_sandbox_checkpoint(sb, "c1", &err) == QS_OK, "checkpoint: %s", qs_error_message(err));
    mp_writer w2 = request("rm /root/f");
    CHECK(qs_sandbox_execute(sb, w2.buf, w2.len, NULL, NULL, &res, &err) == QS_OK, "rm f");
    qs_buffer_free(&res);
    CHECK(qs_sandbox_revert(sb, "c1", &err) == QS_OK, "revert: %s", qs_error_message(err));
    mp_writer w3 = request("cat /root/f");
    CHECK(qs_sandbox_execute(sb, w3.buf, w3.len, NULL, NULL, &res, &err) == QS_OK, "cat f");
    CHECK(has_bytes(mp_get(res.data, res.len, "stdout"), "x\n"), "file back after revert");
    qs_buffer_free(&res);
    expect_error(qs_sandbox_revert(sb, "never", &err), &err, QS_ERR_BAD_REQUEST, "never", "unknown checkpoint");
    expect_error(qs_sandbox_checkpoint(sb, NULL, &err), &err, QS_ERR_INVALID_HANDLE, "NULL", "NULL tag");

    char save_dir[128];
    snprintf(save_dir, sizeof save_dir, "/tmp/qs-abi-save-%d", (int)getpid());
    qs_buffer path = {0};
    st = qs_sandbox_save(sb, save_dir, &path, &err);
    CHECK(st == QS_OK && is_text(path) && strcmp((const char *)path.data, save_dir) == 0,
          "save: a NUL-terminated path (%s)", qs_error_message(err));
    qs_buffer_free(&path);
    CHECK(qs_save_validate(save_dir, &err) == QS_OK, "validate save: %s", qs_error_message(err));
    expect_error(qs_save_validate("/nonexistent/save", &err), &err, QS_ERR_IMAGE_NOT_FOUND, "nonexistent",
                 "validate a missing save");
    expect_error(qs_save_validate("debian", &err), &err, QS_ERR_BAD_REQUEST, "not a save", "validate an image");
    /* A NUL in a command does not cut the error message that quotes it. */
    mp_writer nul = {0};
    mp_map(&nul, 2);
    mp_str(&nul, "command");
    mp_byte(&nul, 0xa0 | 9); /* a 9-byte str with a NUL inside */
    memcpy(nul.buf + nul.len, "true\0tail", 9);
    nul.len += 9;
    mp_str(&nul, "cwd");
    mp_str(&nul, "/no/such/dir");
    expect_error(qs_sandbox_execute(sb, nul.buf, nul.len, NULL, NULL, &res, &err), &err, QS_ERR_BAD_REQUEST, "tail",
                 "a command with a NUL");
    char rm[160];
    snprintf(rm, sizeof rm, "rm -rf %s", save_dir);
    CHECK(system(rm) == 0, "cleaning up the save");

    /* Info. */
    qs_buffer info = {0};
    st = qs_sandbox_info(sb, &info, &err);
    CHECK(st == QS_OK && mp_get(info.data, info.len, "running").i == 1, "info running");
    CHECK(has_bytes(mp_get(info.data, info.len, "accelerator"), "tcg") || has_bytes(mp_get(info.data, info.len, "accelerator"), "kvm"),
          "info accelerator");
    mp_value why = mp_get(info.data, info.len, "output_channel_error");
    CHECK(mp_get(info.data, info.len, "output_channel").i == 1, "info output_channel (%.*s)", why.found ? (int)why.len : 0,
          why.found ? (const char *)why.data : "");
    qs_buffer_free(&info);
    qs_buffer log = {0};
    st = qs_sandbox_console_log(sb, &log, &err);
    CHECK(st == QS_OK && log.len > 0 && memmem(log.data, log.len, "QUICKSAND_AGENT_READY", 21) != NULL, "console log");
    CHECK(st == QS_OK && log.data[log.len] == 0, "console log: a NUL after its bytes");
    qs_buffer_free(&log);

    test_files(sb);
    test_mounts(sb);
    test_network(sb);
    test_processes(sb);
    test_pool();
    test_code();
    test_desktop_errors(sb);
    test_desktop();

    /* Stop, then calls fail cleanly. */
    CHECK(qs_sandbox_stop(sb, &err) == QS_OK, "stop: %s", qs_error_message(err));
    CHECK(qs_sandbox_stop(sb, &err) == QS_OK && err == NULL, "second stop");
    expect_error(qs_sandbox_execute(sb, r.buf, r.len, NULL, NULL, &res, &err), &err, QS_ERR_NOT_RUNNING, "stopped",
                 "execute after stop");
    st = qs_sandbox_info(sb, &info, &err);
    CHECK(st == QS_OK && mp_get(info.data, info.len, "running").found && mp_get(info.data, info.len, "running").i == 0,
          "info after stop");
    qs_buffer_free(&info);
    qs_sandbox_free(sb);
    expect_error(qs_sandbox_execute(sb, r.buf, r.len, NULL, NULL, &res, &err), &err, QS_ERR_INVALID_HANDLE, "freed",
                 "execute after free");
}

/* QS_CTEST_ONLY=desktop runs the desktop's tests alone (a plain debian
 * sandbox for the errors, then debian-desktop). */
static void test_desktop_only(void) {
    qs_sandbox *sb = NULL;
    qs_error *err = NULL;
    int st = qs_sandbox_start(NULL, 0, &sb, &err);
    CHECK(st == QS_OK, "start: %s", qs_error_message(err));
    if (st != QS_OK) {
        qs_error_free(err);
        return;
    }
    test_desktop_errors(sb);
    qs_sandbox_stop(sb, NULL);
    qs_sandbox_free(sb);
    test_desktop();
}

int main(void) {
    const char *only = getenv("QS_CTEST_ONLY");
    if (only != NULL && strcmp(only, "desktop") == 0) {
        test_desktop_only();
        printf("%d passed, %d failed\n", passed, failed);
        return failed ? 1 : 0;
    }
    test_errors_without_vm();
    test_with_vm();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
