// Uses libquicksand from C++ the way a C++ program would: RAII owners for
// handles, buffers and errors, and a lambda for streaming. Prints
// "N passed, N failed".
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "mini_msgpack.h"
#include "quicksand.h"

namespace {

int passed = 0, failed = 0;

void check(bool ok, const std::string &what) {
    if (ok) {
        passed++;
    } else {
        failed++;
        std::fprintf(stderr, "FAIL %s\n", what.c_str());
    }
}

struct ErrorFree {
    void operator()(qs_error *e) const { qs_error_free(e); }
};
using Error = std::unique_ptr<qs_error, ErrorFree>;

struct SandboxFree {
    void operator()(qs_sandbox *s) const { qs_sandbox_free(s); }
};
using Sandbox = std::unique_ptr<qs_sandbox, SandboxFree>;

// Buffer owns a qs_buffer.
struct Buffer {
    qs_buffer b{nullptr, 0};
    ~Buffer() { qs_buffer_free(&b); }
};

mp_writer command(const char *cmd) {
    mp_writer w{};
    mp_map(&w, 1);
    mp_str(&w, "command");
    mp_str(&w, cmd);
    return w;
}

// Streams through a std::function-like lambda carried in user_data.
template <typename F>
int execute_streaming(qs_sandbox *sb, const mp_writer &req, F &&on_chunk, Buffer &out, Error &err) {
    auto trampoline = [](void *ud, int stream, const uint8_t *data, size_t len) {
        (*static_cast<F *>(ud))(stream, std::string(reinterpret_cast<const char *>(data), len));
    };
    qs_error *raw = nullptr;
    int st = qs_sandbox_execute(sb, req.buf, req.len, trampoline, &on_chunk, &out.b, &raw);
    err.reset(raw);
    return st;
}

}  // namespace

int main() {
    qs_sandbox *raw_sb = nullptr;
    qs_error *raw_err = nullptr;
    int st = qs_sandbox_start(nullptr, 0, &raw_sb, &raw_err);
    Sandbox sb(raw_sb);
    Error err(raw_err);
    check(st == QS_OK && sb, std::string("start: ") + qs_error_message(err.get()));
    if (!sb) {
        std::printf("%d passed, %d failed\n", passed, failed);
        return 1;
    }

    std::vector<std::pair<int, std::string>> chunks;
    Buffer res;
    st = execute_streaming(sb.get(), command("printf 'a\\377'; sleep 0.2; echo b >&2; printf c"),
                           [&](int stream, std::string data) { chunks.emplace_back(stream, std::move(data)); }, res, err);
    check(st == QS_OK, std::string("execute: ") + qs_error_message(err.get()));
    std::string out, errs;
    for (auto &c : chunks) (c.first == QS_STDOUT ? out : errs) += c.second;
    check(out == std::string("a\xff" "c"), "streamed stdout keeps the 0xff byte");
    check(errs == "b\n", "streamed stderr");
    mp_value v = mp_get(res.b.data, res.b.len, "stdout");
    check(v.found && v.len == 3 && std::memcmp(v.data, "a\xff" "c", 3) == 0, "result stdout");
    check(mp_get(res.b.data, res.b.len, "exit_code").i == 0, "exit code");

    Buffer bad;
    mp_writer unknown{};
    mp_map(&unknown, 2);
    mp_str(&unknown, "command");
    mp_str(&unknown, "true");
    mp_str(&unknown, "retries");
    mp_uint(&unknown, 3);
    st = qs_sandbox_execute(sb.get(), unknown.buf, unknown.len, nullptr, nullptr, &bad.b, &raw_err);
    err.reset(raw_err);
    check(st == QS_ERR_BAD_REQUEST && std::strstr(qs_error_message(err.get()), "retries"), "unknown request key named");

    st = qs_sandbox_stop(sb.get(), &raw_err);
    err.reset(raw_err);
    check(st == QS_OK, "stop");
    Buffer after;
    mp_writer t = command("true");
    st = qs_sandbox_execute(sb.get(), t.buf, t.len, nullptr, nullptr, &after.b, &raw_err);
    err.reset(raw_err);
    check(st == QS_ERR_NOT_RUNNING, "execute after stop");

    std::printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
