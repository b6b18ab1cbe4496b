/* Just enough MessagePack for the ABI tests: write maps of strings, ints,
 * floats, arrays and binaries; find a key in a flat result map. Real
 * programs would use a msgpack library; the tests keep no dependency. */
#ifndef MINI_MSGPACK_H
#define MINI_MSGPACK_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t buf[8192];
    size_t len;
} mp_writer;

static inline void mp_byte(mp_writer *w, uint8_t b) { w->buf[w->len++] = b; }
static inline void mp_be(mp_writer *w, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; i--) mp_byte(w, (uint8_t)(v >> (8 * i)));
}
static inline void mp_map(mp_writer *w, int n) { mp_byte(w, (uint8_t)(0x80 | n)); }
static inline void mp_array(mp_writer *w, int n) { mp_byte(w, (uint8_t)(0x90 | n)); }
static inline void mp_str(mp_writer *w, const char *s) {
    size_t n = strlen(s);
    if (n < 32) mp_byte(w, (uint8_t)(0xa0 | n));
    else { mp_byte(w, 0xda); mp_be(w, n, 2); }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}
static inline void mp_bin(mp_writer *w, const uint8_t *p, size_t n) {
    mp_byte(w, 0xc5); mp_be(w, n, 2);
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}
static inline void mp_uint(mp_writer *w, uint32_t v) { mp_byte(w, 0xce); mp_be(w, v, 4); }
static inline void mp_double(mp_writer *w, double d) {
    uint64_t bits; memcpy(&bits, &d, 8);
    mp_byte(w, 0xcb); mp_be(w, bits, 8);
}

/* A value found in a result map. */
typedef struct {
    int found;
    int is_bin; /* str or bin */
    int is_nil;
    int is_container; /* a map or an array: data and len are the whole of it */
    const uint8_t *data;
    size_t len;
    int64_t i; /* ints and bools */
    double f;
} mp_value;

static inline uint64_t mp_read_be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/* Reads one scalar at p (no nested containers); returns its size, 0 if unknown. */
static inline size_t mp_scalar(const uint8_t *p, const uint8_t *end, mp_value *v) {
    uint8_t c = *p;
    memset(v, 0, sizeof *v);
    v->found = 1;
    if (c <= 0x7f) { v->i = c; return 1; }
    if (c >= 0xe0) { v->i = (int8_t)c; return 1; }
    if ((c & 0xe0) == 0xa0) { v->is_bin = 1; v->len = c & 0x1f; v->data = p + 1; return 1 + v->len; }
    switch (c) {
    case 0xc0: v->is_nil = 1; return 1;
    case 0xc2: v->i = 0; return 1;
    case 0xc3: v->i = 1; return 1;
    case 0xc4: case 0xd9: v->is_bin = 1; v->len = p[1]; v->data = p + 2; return 2 + v->len;
    case 0xc5: case 0xda: v->is_bin = 1; v->len = mp_read_be(p + 1, 2); v->data = p + 3; return 3 + v->len;
    case 0xc6: case 0xdb: v->is_bin = 1; v->len = mp_read_be(p + 1, 4); v->data = p + 5; return 5 + v->len;
    case 0xcc: v->i = p[1]; return 2;
    case 0xcd: v->i = mp_read_be(p + 1, 2); return 3;
    case 0xce: v->i = mp_read_be(p + 1, 4); return 5;
    case 0xcf: v->i = (int64_t)mp_read_be(p + 1, 8); return 9;
    case 0xd0: v->i = (int8_t)p[1]; return 2;
    case 0xd1: v->i = (int16_t)mp_read_be(p + 1, 2); return 3;
    case 0xd2: v->i = (int32_t)mp_read_be(p + 1, 4); return 5;
    case 0xd3: v->i = (int64_t)mp_read_be(p + 1, 8); return 9;
    case 0xcb: { uint64_t b = mp_read_be(p + 1, 8); memcpy(&v->f, &b, 8); v->i = (int64_t)v->f; return 9; }
    case 0xca: { uint32_t b = (uint32_t)mp_read_be(p + 1, 4); float f; memcpy(&f, &b, 4); v->f = f; v->i = (int64_t)f; return 5; }
    }
    (void)end;
    return 0;
}

/* Skips one value of any kind at p (maps and arrays whole); returns its
 * size, 0 if unknown or cut short. */
static inline size_t mp_skip(const uint8_t *p, const uint8_t *end) {
    if (p >= end) return 0;
    size_t items, at;
    uint8_t c = *p;
    if ((c & 0xf0) == 0x80) { items = 2 * (size_t)(c & 0x0f); at = 1; }
    else if ((c & 0xf0) == 0x90) { items = c & 0x0f; at = 1; }
    else if (c == 0xde || c == 0xdc) { items = mp_read_be(p + 1, 2) * (c == 0xde ? 2 : 1); at = 3; }
    else if (c == 0xdf || c == 0xdd) { items = mp_read_be(p + 1, 4) * (c == 0xdf ? 2 : 1); at = 5; }
    else {
        mp_value v;
        size_t s = mp_scalar(p, end, &v);
        return p + s <= end ? s : 0;
    }
    for (size_t i = 0; i < items; i++) {
        size_t s = mp_skip(p + at, end);
        if (!s) return 0;
        at += s;
    }
    return at;
}

/* Finds key in a map; a nested value comes back as is_container. */
static inline mp_value mp_get(const uint8_t *p, size_t len, const char *key) {
    mp_value none; memset(&none, 0, sizeof none);
    const uint8_t *end = p + len;
    size_t n;
    if ((*p & 0xf0) == 0x80) { n = *p & 0x0f; p += 1; }
    else if (*p == 0xde) { n = mp_read_be(p + 1, 2); p += 3; }
    else return none;
    for (size_t i = 0; i < n && p < end; i++) {
        mp_value k, v;
        size_t s = mp_scalar(p, end, &k);
        if (!s || !k.is_bin) return none;
        p += s;
        s = mp_scalar(p, end, &v);
        if (!s) {
            memset(&v, 0, sizeof v);
            s = mp_skip(p, end);
            if (!s) return none;
            v.found = v.is_container = 1;
            v.data = p;
            v.len = s;
        }
        if (k.len == strlen(key) && memcmp(k.data, key, k.len) == 0) return v;
        p += s;
    }
    return none;
}

#endif
