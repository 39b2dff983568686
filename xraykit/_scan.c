/*
 * xraykit._scan: the loader's fast path, in C.
 *
 * It reads JSON lines (BatchGetTraces responses, raw segment documents, daemon headers)
 * and writes the frames' columns straight into Arrow-layout buffers, with no Python object
 * per value (but annotation and metadata values, which the frames hold as objects). It
 * handles only input it can load exactly as the Python loader in
 * xraykit/documents.py would; for anything else (a problem to report, an unusual type, a
 * value Python would format) it stops at that line, undoes what the line added, and lets
 * the Python loader read it. The Python loader is the reference: tests compare the two.
 *
 * Scanner.scan(data, pos, line, seq, limit) -> (status, pos, line, seq)
 *     status DONE: every line of `data` from `pos` was read;
 *            FULL: `limit` bytes of document text are waiting (call take(False));
 *            FALLBACK: the line at `pos` must be read by Python.
 * Scanner.take(everything=True) -> the tables built so far (see documents.py for their
 *     columns), their buffers handed to Python without a copy; the scanner starts empty.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef XRAYKIT_SCAN_SOURCE_HASH
#define XRAYKIT_SCAN_SOURCE_HASH "unknown"
#endif

enum { OK = 0, BAD = 1, ERR = -1 }; /* BAD: Python reads this line; ERR: exception set */
enum { DONE = 0, FULL = 1, FALLBACK = 2 };
#define MAX_DEPTH 512
#define MAX_DUP_CHECK 256 /* objects with more keys than this go to Python */

/* ---------------------------------------------------------------- growable buffers */

typedef struct {
    char *p;
    size_t len, cap;
    int mapped; /* large buffers are anonymous mappings: they grow without copying (mremap)
                   and give their memory back to the system at once when freed */
} Buf;

#define MAP_FROM ((size_t)1 << 18)

#ifdef __linux__
#include <sys/mman.h>
static size_t page_round(size_t n) { return (n + 4095) & ~(size_t)4095; }
#endif

static void raw_free(char *p, size_t cap, int mapped) {
#ifdef __linux__
    if (mapped) {
        munmap(p, cap);
        return;
    }
#endif
    (void)cap;
    (void)mapped;
    free(p);
}

static int buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return OK;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra) cap *= 2;
#ifdef __linux__
    if (cap >= MAP_FROM) {
        cap = page_round(cap);
        void *p;
        if (b->mapped) {
            p = mremap(b->p, b->cap, cap, MREMAP_MAYMOVE);
        } else {
            p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p != MAP_FAILED) {
                if (b->len) memcpy(p, b->p, b->len);
                free(b->p);
            }
        }
        if (p == MAP_FAILED) {
            PyErr_NoMemory();
            return ERR;
        }
        b->p = p;
        b->cap = cap;
        b->mapped = 1;
        return OK;
    }
#endif
    char *p = realloc(b->p, cap);
    if (!p) {
        PyErr_NoMemory();
        return ERR;
    }
    b->p = p;
    b->cap = cap;
    return OK;
}

static inline int buf_put(Buf *b, const void *src, size_t n) {
    if (b->len + n > b->cap && buf_reserve(b, n)) return ERR;
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
    return OK;
}

static void buf_free(Buf *b) {
    if (b->p) raw_free(b->p, b->cap, b->mapped);
    b->p = NULL;
    b->len = b->cap = 0;
    b->mapped = 0;
}

/* ---------------------------------------------------------------- JSON to a tape */

enum { J_NULL, J_FALSE, J_TRUE, J_INT, J_FLOAT, J_STR, J_ARR, J_OBJ };

/* One node per value (and per object key). A container's children follow it; `next` is the
 * index just past its last descendant. Strings and numbers point into the source text. */
typedef struct {
    uint8_t type, esc;
    uint32_t count; /* children (arrays) or key/value pairs (objects); decoded length (strings
                       with escapes) */
    uint32_t start, len;
    uint32_t next;
    uint32_t dec; /* where a string with escapes is, decoded, in its tape's `dec` buffer */
} Node;

typedef struct {
    const unsigned char *s;
    size_t n, i;
    Node *nodes;
    size_t nn, cap;
    Buf dec;   /* strings with escapes, decoded while they are parsed */
    int links; /* the text contains "links" (a key or value of a trace link) */
} Tape;

static int tape_node(Tape *T, uint8_t type, size_t start) {
    if (T->nn == T->cap) {
        size_t cap = T->cap ? T->cap * 2 : 256;
        Node *nodes = realloc(T->nodes, cap * sizeof(Node));
        if (!nodes) {
            PyErr_NoMemory();
            return -1;
        }
        T->nodes = nodes;
        T->cap = cap;
    }
    Node *nd = &T->nodes[T->nn];
    nd->type = type;
    nd->esc = 0;
    nd->count = 0;
    nd->start = (uint32_t)start;
    nd->len = 0;
    nd->next = (uint32_t)(T->nn + 1);
    return (int)T->nn++;
}

static inline void skip_ws(Tape *T) {
    while (T->i < T->n) {
        unsigned char c = T->s[T->i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            T->i++;
        else
            break;
    }
}

static inline int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(const unsigned char *p) {
    int v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p[k]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Length of one valid UTF-8 sequence at p (non-ASCII lead byte), or 0 when invalid. */
static int utf8_seq(const unsigned char *p, size_t avail) {
    unsigned char c = p[0];
    if (c >= 0xC2 && c <= 0xDF) return (avail >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0;  /* overlong */
        if (c == 0xED && p[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0;
        if (c == 0xF4 && p[1] >= 0x90) return 0;
        return 4;
    }
    return 0;
}

/* Which of 8 bytes may be a quote, a backslash, a control or a non-ASCII byte: the lowest
 * flagged byte is exact (borrows only run upwards), the ones above it may be false alarms.
 * Little-endian loads put the first byte lowest. */
static inline uint64_t special8(const unsigned char *p) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t v;
    memcpy(&v, p, 8);
    uint64_t quote = v ^ (ones * '"'), slash = v ^ (ones * '\\');
    uint64_t found = ((quote - ones) & ~quote) | ((slash - ones) & ~slash) | (v - ones * 0x20) | v;
    return found & highs;
}

/* The characters that may follow a backslash, besides u. */
static const unsigned char SIMPLE_ESCAPE[256] = {
    ['"'] = 1, ['\\'] = 1, ['/'] = 1, ['b'] = 1, ['f'] = 1, ['n'] = 1, ['r'] = 1, ['t'] = 1};

/* Append the UTF-8 of code point v at o; return the new end. */
static unsigned char *put_utf8(unsigned char *o, unsigned int v) {
    if (v < 0x80) {
        *o++ = (unsigned char)v;
    } else if (v < 0x800) {
        *o++ = (unsigned char)(0xC0 | (v >> 6));
        *o++ = (unsigned char)(0x80 | (v & 0x3F));
    } else if (v < 0x10000) {
        *o++ = (unsigned char)(0xE0 | (v >> 12));
        *o++ = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (v & 0x3F));
    } else {
        *o++ = (unsigned char)(0xF0 | (v >> 18));
        *o++ = (unsigned char)(0x80 | ((v >> 12) & 0x3F));
        *o++ = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (v & 0x3F));
    }
    return o;
}

/* Validate a string (the parser stands on its opening quote). A string with escapes is
 * decoded in the same pass, into the tape's `dec` buffer: a BatchGetTraces Document (a whole
 * segment document, its every quote escaped) is read once, not validated and then decoded. */
static int parse_string(Tape *T, int idx) {
    const unsigned char *s = T->s;
    size_t i = T->i + 1, n = T->n;
    size_t start = i, run = i; /* run: raw bytes not yet copied to the decoded text */
    unsigned char *o = NULL;   /* the decoded text's end, once an escape was seen */
    size_t dec_start = 0;
    for (;;) {
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t mask = 0;
        while (i + 8 <= n && !(mask = special8(s + i))) i += 8;
        if (mask) i += (size_t)__builtin_ctzll(mask) >> 3;
        else
#endif
        while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\') i++;
        if (i >= n) return BAD;
        unsigned char c = s[i];
        if (c == '"') break;
        if (c < 0x20) return BAD;
        if (c == '\\') {
            if (i + 1 >= n) return BAD;
            if (!o) { /* the first escape: decoded text never outgrows the raw text */
                if (buf_reserve(&T->dec, n - start)) return ERR;
                dec_start = T->dec.len;
                o = (unsigned char *)T->dec.p + dec_start;
            }
            memcpy(o, s + run, i - run);
            o += i - run;
            c = s[i + 1];
            if (c == 'u') {
                if (i + 6 > n) return BAD;
                int v = hex4(s + i + 2);
                if (v < 0) return BAD;
                i += 6;
                if (v >= 0xDC00 && v <= 0xDFFF) return BAD; /* a low surrogate first */
                if (v >= 0xD800 && v <= 0xDBFF) {
                    if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u') return BAD;
                    int w = hex4(s + i + 2);
                    if (w < 0xDC00 || w > 0xDFFF) return BAD;
                    i += 6;
                    v = 0x10000 + ((v - 0xD800) << 10) + (w - 0xDC00);
                }
                o = put_utf8(o, (unsigned int)v);
            } else {
                if (!SIMPLE_ESCAPE[c]) return BAD;
                *o++ = c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' : c == 'r' ? '\r'
                       : c == 't' ? '\t' : c;
                i += 2;
            }
            run = i;
            continue;
        }
        int k = utf8_seq(s + i, n - i);
        if (!k) return BAD;
        i += k;
    }
    if (i - start > UINT32_MAX) return BAD;
    Node *nd = &T->nodes[idx];
    nd->start = (uint32_t)start;
    nd->len = (uint32_t)(i - start);
    nd->esc = o != NULL;
    if (o) {
        memcpy(o, s + run, i - run);
        o += i - run;
        nd->dec = (uint32_t)dec_start;
        nd->count = (uint32_t)((char *)o - (T->dec.p + dec_start));
        T->dec.len += nd->count;
    }
    /* "links" in the raw text: the string is `links`, or ends with an escaped quote and
     * `links` (JSON allows no other place for the seven characters) */
    if ((nd->len == 5 && memcmp(s + start, "links", 5) == 0) ||
        (nd->len >= 6 && memcmp(s + i - 6, "\"links", 6) == 0))
        T->links = 1;
    T->i = i + 1;
    return OK;
}

/* A JSON number literal as the double Python's float() gives: correctly rounded and
 * independent of the C locale (strtod follows LC_NUMERIC). ERR only when out of memory. */
static int literal_to_double(const unsigned char *p, size_t len, double *out) {
    char small[64], *text = len < sizeof small ? small : PyMem_Malloc(len + 1);
    if (!text) {
        PyErr_NoMemory();
        return ERR;
    }
    memcpy(text, p, len);
    text[len] = 0;
    *out = PyOS_string_to_double(text, NULL, NULL); /* overflow: +-inf, no exception */
    if (text != small) PyMem_Free(text);
    if (*out == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return BAD;
    }
    return OK;
}

static int parse_number(Tape *T, int idx) {
    const unsigned char *s = T->s;
    size_t i = T->i, n = T->n, start = i;
    int is_float = 0, has_exponent = 0;
    if (i < n && s[i] == '-') i++;
    if (i >= n) return BAD;
    size_t digits_from = i;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    } else {
        return BAD;
    }
    size_t int_digits = i - digits_from;
    if (i < n && s[i] == '.') {
        is_float = 1;
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9') return BAD;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        is_float = has_exponent = 1;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n || s[i] < '0' || s[i] > '9') return BAD;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    /* orjson rejects a number that overflows a double, even where it is never used */
    if (has_exponent || int_digits > 308) {
        double v;
        int rc = literal_to_double(s + start, i - start, &v);
        if (rc) return rc;
        if (!isfinite(v)) return BAD;
    }
    Node *nd = &T->nodes[idx];
    nd->type = is_float ? J_FLOAT : J_INT;
    nd->start = (uint32_t)start;
    nd->len = (uint32_t)(i - start);
    T->i = i;
    return OK;
}

static int parse_value(Tape *T, int depth);

static int parse_container(Tape *T, int idx, int depth, int is_obj) {
    T->i++; /* the bracket */
    skip_ws(T);
    unsigned char close = is_obj ? '}' : ']';
    uint32_t count = 0;
    if (T->i < T->n && T->s[T->i] == close) {
        T->i++;
        T->nodes[idx].next = (uint32_t)T->nn;
        return OK;
    }
    for (;;) {
        if (is_obj) {
            if (T->i >= T->n || T->s[T->i] != '"') return BAD;
            int k = tape_node(T, J_STR, T->i);
            if (k < 0) return ERR;
            int rc = parse_string(T, k);
            if (rc) return rc;
            skip_ws(T);
            if (T->i >= T->n || T->s[T->i] != ':') return BAD;
            T->i++;
            skip_ws(T);
        }
        int rc = parse_value(T, depth + 1);
        if (rc) return rc;
        count++;
        skip_ws(T);
        if (T->i >= T->n) return BAD;
        unsigned char c = T->s[T->i];
        if (c == ',') {
            T->i++;
            skip_ws(T);
            continue;
        }
        if (c != close) return BAD;
        T->i++;
        break;
    }
    T->nodes[idx].count = count;
    T->nodes[idx].next = (uint32_t)T->nn;
    return OK;
}

static int parse_value(Tape *T, int depth) {
    if (depth > MAX_DEPTH || T->i >= T->n) return BAD;
    unsigned char c = T->s[T->i];
    int idx;
    switch (c) {
    case '{':
    case '[':
        idx = tape_node(T, c == '{' ? J_OBJ : J_ARR, T->i);
        if (idx < 0) return ERR;
        return parse_container(T, idx, depth, c == '{');
    case '"':
        idx = tape_node(T, J_STR, T->i);
        if (idx < 0) return ERR;
        return parse_string(T, idx);
    case 't':
    case 'f':
    case 'n': {
        const char *word = c == 't' ? "true" : c == 'f' ? "false" : "null";
        size_t len = strlen(word);
        if (T->i + len > T->n || memcmp(T->s + T->i, word, len)) return BAD;
        idx = tape_node(T, c == 't' ? J_TRUE : c == 'f' ? J_FALSE : J_NULL, T->i);
        if (idx < 0) return ERR;
        T->i += len;
        return OK;
    }
    default:
        idx = tape_node(T, J_INT, T->i);
        if (idx < 0) return ERR;
        return parse_number(T, idx);
    }
}

/* Parse s[0:n] as one JSON value with only whitespace around it. */
static int tape_parse(Tape *T, const char *s, size_t n) {
    if (n > UINT32_MAX) return BAD;
    T->s = (const unsigned char *)s;
    T->n = n;
    T->i = 0;
    T->nn = 0;
    T->dec.len = 0;
    T->links = 0;
    skip_ws(T);
    int rc = parse_value(T, 0);
    if (rc) return rc;
    skip_ws(T);
    return T->i == T->n ? OK : BAD;
}

/* ---------------------------------------------------------------- reading the tape */

static inline const char *str_ptr(const Tape *T, int idx) {
    return (const char *)T->s + T->nodes[idx].start;
}

/* Append the text of a string node to out (decoded when it had escapes). */
static int unescape(Buf *out, const Tape *T, int idx) {
    const Node *nd = &T->nodes[idx];
    if (nd->esc) return buf_put(out, T->dec.p + nd->dec, nd->count);
    return buf_put(out, T->s + nd->start, nd->len);
}

/* The text of a string node and its length (decoded when it had escapes). */
static inline const char *str_text(const Tape *T, int idx, size_t *len) {
    const Node *nd = &T->nodes[idx];
    *len = nd->esc ? nd->count : nd->len;
    return nd->esc ? T->dec.p + nd->dec : (const char *)T->s + nd->start;
}

/* An integer node as int64; BAD when it does not fit (Python would make a big int or a float). */
static int int_value(const Tape *T, int idx, int64_t *out) {
    const Node *nd = &T->nodes[idx];
    const unsigned char *p = T->s + nd->start, *end = p + nd->len;
    int neg = *p == '-';
    if (neg) p++;
    uint64_t v = 0;
    for (; p < end; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return BAD;
        v = v * 10 + d;
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX) return BAD;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return OK;
}

/* A plain decimal (no exponent) whose digits make an integer below 2^53 is exact as
 * digits / 10^k: both are exact doubles, and IEEE division rounds correctly.
 * X-Ray's times (epoch seconds with microseconds, 16 digits) all take this path. */
static int fast_decimal(const unsigned char *p, size_t n, double *out) {
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const unsigned char *end = p + n;
    int neg = *p == '-', digits = 0, scale = -1;
    if (neg) p++;
    uint64_t m = 0;
    for (; p < end; p++) {
        if (*p == '.') {
            scale = 0;
            continue;
        }
        if (*p < '0' || *p > '9') return 0; /* an exponent */
        if (++digits > 19) return 0;
        m = m * 10 + (uint64_t)(*p - '0');
        if (scale >= 0) scale++;
    }
    if (m > ((uint64_t)1 << 53) || scale > 22) return 0;
    double v = (double)m / pow10[scale < 0 ? 0 : scale];
    *out = neg ? -v : v;
    return 1;
}

/* A number node as a double, as Python would hold it (BAD for infinities and huge ints). */
static int num_value(const Tape *T, int idx, double *out) {
    const Node *nd = &T->nodes[idx];
    if (nd->type == J_INT) {
        int64_t v;
        if (int_value(T, idx, &v)) return BAD;
        *out = (double)v;
        return OK;
    }
    if (nd->type != J_FLOAT) return BAD;
    if (fast_decimal(T->s + nd->start, nd->len, out)) return OK;
    if (literal_to_double(T->s + nd->start, nd->len, out) || !isfinite(*out)) return BAD;
    return OK;
}

/* Python truthiness of a node; absent (-1) is false. */
static int truthy(const Tape *T, int idx) {
    if (idx < 0) return 0;
    const Node *nd = &T->nodes[idx];
    switch (nd->type) {
    case J_NULL:
    case J_FALSE: return 0;
    case J_TRUE: return 1;
    case J_STR: return nd->len > 0;
    case J_ARR:
    case J_OBJ: return nd->count > 0;
    default: {
        const unsigned char *p = T->s + nd->start, *end = p + nd->len;
        for (; p < end && (*p < '1' || *p > '9'); p++) {
            if (*p == 'e' || *p == 'E') return 0; /* 0e5, 0.0E1 */
        }
        return p < end;
    }
    }
}

static inline int is_true(const Tape *T, int idx) { return idx >= 0 && T->nodes[idx].type == J_TRUE; }
static inline int type_of(const Tape *T, int idx) { return idx < 0 ? -1 : T->nodes[idx].type; }
static inline int absent(const Tape *T, int idx) { return idx < 0 || T->nodes[idx].type == J_NULL; }

typedef struct {
    const char *name;
    size_t len;
} Key;

/* The keys one kind of object is read for, indexed by first character. */
typedef struct {
    const Key *keys;
    int n;
    uint32_t by_first[128]; /* bit k: keys[k] starts with this character */
} KeySet;

static void keyset_index(KeySet *set) {
    for (int k = 0; k < set->n; k++) set->by_first[(unsigned char)set->keys[k].name[0] & 127] |= 1u << k;
}

/* For each pair of object `obj`, record the value index of the known keys (the last one wins,
 * as in a Python dict). `out` gets -1 for keys that are absent. */
static int fields(const Tape *T, int obj, const KeySet *set, int *out) {
    for (int k = 0; k < set->n; k++) out[k] = -1;
    if (obj < 0 || T->nodes[obj].type != J_OBJ) return OK;
    int i = obj + 1;
    for (uint32_t pair = 0; pair < T->nodes[obj].count; pair++) {
        size_t len;
        const char *name = str_text(T, i, &len);
        uint32_t candidates = len && (unsigned char)name[0] < 128 ? set->by_first[(unsigned char)name[0]] : 0;
        while (candidates) {
            int k = __builtin_ctz(candidates);
            candidates &= candidates - 1;
            if (set->keys[k].len == len && memcmp(set->keys[k].name, name, len) == 0) out[k] = i + 1;
        }
        i = (int)T->nodes[i + 1].next;
    }
    return OK;
}

static int str_equals(const Tape *T, int idx, const char *text) {
    if (type_of(T, idx) != J_STR || T->nodes[idx].esc) return 0;
    size_t len = strlen(text);
    return T->nodes[idx].len == len && memcmp(str_ptr(T, idx), text, len) == 0;
}

static int key_equal(const Tape *T, int a, int b) {
    size_t la, lb;
    const char *x = str_text(T, a, &la), *y = str_text(T, b, &lb);
    return la == lb && memcmp(x, y, la) == 0;
}

/* BAD when an object repeats a key: Python keeps the first position with the last value,
 * which row order would not reproduce. */
static int check_unique_keys(const Tape *T, int obj) {
    uint32_t n = T->nodes[obj].count;
    if (n < 2) return OK;
    if (n > MAX_DUP_CHECK) return BAD;
    int idx[MAX_DUP_CHECK];
    int i = obj + 1;
    for (uint32_t k = 0; k < n; k++) {
        idx[k] = i;
        i = (int)T->nodes[i + 1].next;
    }
    for (uint32_t a = 0; a < n; a++) {
        for (uint32_t b = a + 1; b < n; b++) {
            if (key_equal(T, idx[a], idx[b])) return BAD;
        }
    }
    return OK;
}

/* X-Ray trace id: version digits, 8 hex digits of epoch seconds, 24 hex digits. */
static int valid_trace_id(const Tape *T, int idx) {
    if (type_of(T, idx) != J_STR || T->nodes[idx].esc) return 0;
    const unsigned char *p = (const unsigned char *)str_ptr(T, idx);
    size_t n = T->nodes[idx].len, i = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9') i++;
    if (i == 0 || n != i + 34 || p[i] != '-' || p[i + 9] != '-') return 0;
    for (size_t k = i + 1; k < n; k++) {
        if (k == i + 9) continue;
        if (hexval(p[k]) < 0) return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- columns */

enum { C_STR, C_F64, C_I64, C_BOOL };

typedef struct {
    int kind;
    Buf data;  /* string bytes, or values (8 bytes each, or 1 byte per bool) */
    Buf offs;  /* int64 offsets of strings */
    Buf valid; /* one byte per row */
} Col;

typedef struct {
    const char *name;
    int ncols;
    const int *kinds;
    Col *cols;
    size_t rows;
} Table;

static int table_init(Table *t, const char *name, const int *kinds, int ncols) {
    t->name = name;
    t->kinds = kinds;
    t->ncols = ncols;
    t->rows = 0;
    t->cols = calloc((size_t)ncols, sizeof(Col));
    if (!t->cols) {
        PyErr_NoMemory();
        return ERR;
    }
    for (int c = 0; c < ncols; c++) {
        t->cols[c].kind = kinds[c];
        if (kinds[c] == C_STR) {
            int64_t zero = 0;
            if (buf_put(&t->cols[c].offs, &zero, 8)) return ERR;
        }
    }
    return OK;
}

static void table_truncate(Table *t, size_t rows) {
    for (int c = 0; c < t->ncols; c++) {
        Col *col = &t->cols[c];
        col->valid.len = rows;
        switch (col->kind) {
        case C_STR:
            col->offs.len = (rows + 1) * 8;
            col->data.len = (size_t)((int64_t *)col->offs.p)[rows];
            break;
        case C_BOOL: col->data.len = rows; break;
        default: col->data.len = rows * 8;
        }
    }
    t->rows = rows;
}

static void table_free(Table *t) {
    if (!t->cols) return;
    for (int c = 0; c < t->ncols; c++) {
        buf_free(&t->cols[c].data);
        buf_free(&t->cols[c].offs);
        buf_free(&t->cols[c].valid);
    }
    free(t->cols);
    t->cols = NULL;
}

static inline int put_valid(Col *col, int valid) {
    unsigned char v = (unsigned char)valid;
    return buf_put(&col->valid, &v, 1);
}

static inline int end_string(Col *col) {
    int64_t end = (int64_t)col->data.len;
    return buf_put(&col->offs, &end, 8);
}

static int put_null(Col *col) {
    if (put_valid(col, 0)) return ERR;
    if (col->kind == C_STR) return end_string(col);
    if (col->kind == C_BOOL) return buf_put(&col->data, "", 1);
    int64_t zero = 0;
    return buf_put(&col->data, &zero, 8);
}

static int put_bytes(Col *col, const void *p, size_t n) {
    if (put_valid(col, 1) || buf_put(&col->data, p, n)) return ERR;
    return end_string(col);
}

/* A string node, or null when absent/null; BAD for any other JSON type. */
static int put_str(Col *col, const Tape *T, int idx) {
    if (absent(T, idx)) return put_null(col);
    if (T->nodes[idx].type != J_STR) return BAD;
    if (put_valid(col, 1) || unescape(&col->data, T, idx)) return ERR;
    return end_string(col);
}

static int put_f64(Col *col, double v) {
    if (put_valid(col, 1)) return ERR;
    return buf_put(&col->data, &v, 8);
}

static int put_i64(Col *col, int64_t v) {
    if (put_valid(col, 1)) return ERR;
    return buf_put(&col->data, &v, 8);
}

static int put_bool(Col *col, int v) {
    unsigned char b = (unsigned char)(v != 0);
    if (put_valid(col, 1)) return ERR;
    return buf_put(&col->data, &b, 1);
}

/* An integer node as int64, or null when absent/null; BAD otherwise (floats, bools, big ints). */
static int put_int_node(Col *col, const Tape *T, int idx) {
    if (absent(T, idx)) return put_null(col);
    int64_t v;
    if (T->nodes[idx].type != J_INT || int_value(T, idx, &v)) return BAD;
    return put_i64(col, v);
}

/* ---------------------------------------------------------------- the tables */

#define S C_STR
#define F C_F64
#define I C_I64
#define B C_BOOL
/* Column order must match _SEG_ARROW, _SUB_ARROW ... in documents.py. */
static const int SEG_KINDS[] = {S, S, S, S, S, B, F, F, B, S, S, I, S, S, B, B, B, S, S, S, S, S, S, S, S, I};
static const int SUB_KINDS[] = {S, S, S, S, I, S, S, F, F, B, S, S, I, B, B, B, B, S, S, S, S, S, S, S, S, S, S, S, S, B, S, S, I};
static const int DOC_KINDS[] = {S, S, B, S, I, B};
static const int ANN_KINDS[] = {S, S, S, S, I};
static const int META_KINDS[] = {S, S, S, S, I};
static const int EXC_KINDS[] = {S, S, S, S, S, B, S, I, I, I, S, I};
#undef S
#undef F
#undef I
#undef B
#define NCOLS(kinds) ((int)(sizeof(kinds) / sizeof(kinds[0])))

enum { T_SEG, T_SUB, T_DOC, T_ANN, T_META, T_EXC, N_TABLES };

/* ---------------------------------------------------------------- keys */

#define K(name) {name, sizeof(name) - 1}
enum {
    E_ID, E_NAME, E_TRACE_ID, E_START, E_END, E_IN_PROGRESS, E_PARENT_ID, E_TYPE, E_ORIGIN,
    E_INFERRED, E_HTTP, E_AWS, E_SERVICE, E_CAUSE, E_USER, E_RESOURCE_ARN, E_FAULT, E_ERROR,
    E_THROTTLE, E_NAMESPACE, E_TRACED, E_SQL, E_SUBSEGMENTS, E_ANNOTATIONS, E_METADATA, E_N
};
static const Key ENTITY_KEYS[] = {
    K("id"), K("name"), K("trace_id"), K("start_time"), K("end_time"), K("in_progress"),
    K("parent_id"), K("type"), K("origin"), K("inferred"), K("http"), K("aws"), K("service"),
    K("cause"), K("user"), K("resource_arn"), K("fault"), K("error"), K("throttle"), K("namespace"),
    K("traced"), K("sql"), K("subsegments"), K("annotations"), K("metadata")};
static KeySet ENTITY_SET = {ENTITY_KEYS, E_N, {0}};
enum { H_REQUEST, H_RESPONSE, H_N };
static const Key HTTP_KEYS[] = {K("request"), K("response")};
static KeySet HTTP_SET = {HTTP_KEYS, H_N, {0}};
enum { R_METHOD, R_URL, R_USER_AGENT, R_CLIENT_IP, R_TRACED, R_STATUS, R_N };
static const Key REQUEST_KEYS[] = {K("method"), K("url"), K("user_agent"), K("client_ip"), K("traced"), K("status")};
static KeySet REQUEST_SET = {REQUEST_KEYS, R_N, {0}};
enum {
    A_ACCOUNT_ID, A_EC2, A_XRAY, A_OPERATION, A_REGION, A_REQUEST_ID, A_TABLE_NAME,
    A_QUEUE_URL, A_FUNCTION_NAME, A_TOPIC_ARN, A_N
};
static const Key AWS_KEYS[] = {K("account_id"), K("ec2"), K("xray"), K("operation"), K("region"),
                         K("request_id"), K("table_name"), K("queue_url"), K("function_name"),
                         K("topic_arn")};
static KeySet AWS_SET = {AWS_KEYS, A_N, {0}};
enum { X_AZ, X_INSTANCE_ID, X_SDK, X_SDK_VERSION, X_VERSION, X_N };
static const Key MISC_KEYS[] = {K("availability_zone"), K("instance_id"), K("sdk"), K("sdk_version"), K("version")};
static KeySet MISC_SET = {MISC_KEYS, X_N, {0}};
enum { Q_URL, Q_CONNECTION_STRING, Q_DATABASE_TYPE, Q_SANITIZED_QUERY, Q_USER, Q_N };
static const Key SQL_KEYS[] = {K("url"), K("connection_string"), K("database_type"), K("sanitized_query"), K("user")};
static KeySet SQL_SET = {SQL_KEYS, Q_N, {0}};
enum {
    X2_ID, X2_TYPE, X2_MESSAGE, X2_REMOTE, X2_CAUSE, X2_TRUNCATED, X2_SKIPPED, X2_STACK,
    X2_EXCEPTIONS, X2_N
};
static const Key EXCEPTION_KEYS[] = {K("id"), K("type"), K("message"), K("remote"), K("cause"),
                               K("truncated"), K("skipped"), K("stack"), K("exceptions")};
static KeySet EXCEPTION_SET = {EXCEPTION_KEYS, X2_N, {0}};
enum { P_PATH, P_LINE, P_LABEL, P_N };
static const Key FRAME_KEYS[] = {K("path"), K("line"), K("label")};
static KeySet FRAME_SET = {FRAME_KEYS, P_N, {0}};
enum {
    L_TRACES, L_SEGMENTS, L_ID_UPPER, L_FORMAT, L_VERSION, L_ID, L_SUMMARIES, L_UNPROCESSED,
    L_LIMIT, L_DOCUMENT, L_N
};
static const Key LINE_KEYS[] = {K("Traces"), K("Segments"), K("Id"), K("format"), K("version"), K("id"),
                          K("TraceSummaries"), K("UnprocessedTraceIds"), K("LimitExceeded"),
                          K("Document")};
static KeySet LINE_SET = {LINE_KEYS, L_N, {0}};

/* ---------------------------------------------------------------- the scanner */

typedef struct {
    PyObject_HEAD
    Tape line, doc;
    Buf tmp2;       /* scratch */
    Buf stack;
    Table t[N_TABLES];
    PyObject *ann_values, *meta_values;
    int64_t seq;
} Scanner;

static int to_python(Scanner *S, const Tape *T, int idx, PyObject **out);

static int node_to_python(Scanner *S, const Tape *T, int idx, PyObject **out) {
    const Node *nd = &T->nodes[idx];
    switch (nd->type) {
    case J_NULL: *out = Py_NewRef(Py_None); return OK;
    case J_TRUE: *out = Py_NewRef(Py_True); return OK;
    case J_FALSE: *out = Py_NewRef(Py_False); return OK;
    case J_INT: {
        int64_t v;
        if (int_value(T, idx, &v)) return BAD;
        *out = PyLong_FromLongLong(v);
        return *out ? OK : ERR;
    }
    case J_FLOAT: {
        double v;
        if (num_value(T, idx, &v)) return BAD;
        *out = PyFloat_FromDouble(v);
        return *out ? OK : ERR;
    }
    case J_STR: {
        size_t len;
        const char *text = str_text(T, idx, &len);
        *out = PyUnicode_DecodeUTF8(text, (Py_ssize_t)len, NULL);
        return *out ? OK : ERR;
    }
    default: return to_python(S, T, idx, out);
    }
}

/* A JSON value as the Python object orjson would give. */
static int to_python(Scanner *S, const Tape *T, int idx, PyObject **out) {
    const Node *nd = &T->nodes[idx];
    if (nd->type != J_ARR && nd->type != J_OBJ) return node_to_python(S, T, idx, out);
    int is_obj = nd->type == J_OBJ;
    PyObject *c = is_obj ? PyDict_New() : PyList_New(nd->count);
    if (!c) return ERR;
    int i = idx + 1;
    for (uint32_t k = 0; k < nd->count; k++) {
        PyObject *key = NULL, *value = NULL;
        int rc;
        if (is_obj) {
            rc = node_to_python(S, T, i, &key);
            if (rc) {
                Py_DECREF(c);
                return rc;
            }
            i++;
        }
        rc = node_to_python(S, T, i, &value);
        if (rc) {
            Py_XDECREF(key);
            Py_DECREF(c);
            return rc;
        }
        if (is_obj) {
            rc = PyDict_SetItem(c, key, value);
            Py_DECREF(key);
            Py_DECREF(value);
            if (rc) {
                Py_DECREF(c);
                return ERR;
            }
        } else {
            PyList_SET_ITEM(c, k, value);
        }
        i = (int)T->nodes[i].next;
    }
    *out = c;
    return OK;
}

#define TRY(expr)                                                                              \
    do {                                                                                       \
        int rc_ = (expr);                                                                      \
        if (rc_) return rc_;                                                                   \
    } while (0)

/* Python's str() of a scalar used in a stack frame, with a default when absent. */
static int frame_part(const Tape *T, int idx, const char *dflt, Buf *out) {
    if (idx < 0) return buf_put(out, dflt, strlen(dflt));
    switch (T->nodes[idx].type) {
    case J_NULL: return buf_put(out, "None", 4);
    case J_TRUE: return buf_put(out, "True", 4);
    case J_FALSE: return buf_put(out, "False", 5);
    case J_STR: return unescape(out, T, idx);
    case J_INT: {
        int64_t v;
        char digits[32];
        if (int_value(T, idx, &v)) return BAD;
        int n = snprintf(digits, sizeof digits, "%lld", (long long)v);
        return buf_put(out, digits, (size_t)n);
    }
    default: return BAD;
    }
}

/* Whether the code point is whitespace to Python's str.rstrip(). */
static int py_space(uint32_t c) {
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) || c == 0x85 ||
           c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static void rstrip(Buf *b) {
    while (b->len) {
        const unsigned char *p = (const unsigned char *)b->p;
        size_t end = b->len, start = end - 1;
        while (start > 0 && (p[start] & 0xC0) == 0x80) start--;
        uint32_t c = p[start];
        size_t n = end - start;
        if (n == 2) c = ((c & 0x1F) << 6) | (p[start + 1] & 0x3F);
        else if (n == 3) c = ((c & 0x0F) << 12) | ((p[start + 1] & 0x3F) << 6) | (p[start + 2] & 0x3F);
        else if (n == 4) c = 0x10000; /* never whitespace */
        if (!py_space(c)) return;
        b->len = start;
    }
}

/* One metadata row: namespace and key (-1: none) are string nodes, value any node. */
static int metadata_row(Scanner *S, const Tape *T, int tid, int eid, int ns, int key, int value) {
    Col *c = S->t[T_META].cols;
    PyObject *object;
    TRY(to_python(S, T, value, &object));
    int rc = PyList_Append(S->meta_values, object);
    Py_DECREF(object);
    if (rc) return ERR;
    TRY(put_str(&c[0], T, tid));
    TRY(put_str(&c[1], T, eid));
    TRY(put_str(&c[2], T, ns));
    TRY(put_str(&c[3], T, key));
    TRY(put_i64(&c[4], S->seq));
    S->t[T_META].rows++;
    return OK;
}

/* Annotations, metadata and exceptions of one entity (documents.py: _Builder._extras). */
static int extras(Scanner *S, const Tape *T, const int *E, int tid, int eid) {
    Table *ann = &S->t[T_ANN], *exc = &S->t[T_EXC];
    int a = E[E_ANNOTATIONS];
    if (truthy(T, a)) {
        if (T->nodes[a].type != J_OBJ) return BAD;
        TRY(check_unique_keys(T, a));
        int i = a + 1;
        for (uint32_t k = 0; k < T->nodes[a].count; k++) {
            int v = i + 1, type = T->nodes[v].type;
            const char *kind = type == J_STR                         ? "string"
                               : (type == J_TRUE || type == J_FALSE) ? "boolean"
                               : (type == J_INT || type == J_FLOAT)  ? "number"
                                                                     : NULL;
            if (!kind) return BAD;
            PyObject *value;
            TRY(node_to_python(S, T, v, &value));
            int rc = PyList_Append(S->ann_values, value);
            Py_DECREF(value);
            if (rc) return ERR;
            TRY(put_str(&ann->cols[0], T, tid));
            TRY(put_str(&ann->cols[1], T, eid));
            TRY(put_str(&ann->cols[2], T, i));
            TRY(put_bytes(&ann->cols[3], kind, strlen(kind)));
            TRY(put_i64(&ann->cols[4], S->seq));
            ann->rows++;
            i = (int)T->nodes[v].next;
        }
    }
    int m = E[E_METADATA];
    if (truthy(T, m)) {
        if (T->nodes[m].type != J_OBJ) return BAD;
        TRY(check_unique_keys(T, m));
        int i = m + 1;
        for (uint32_t k = 0; k < T->nodes[m].count; k++) {
            int entries = i + 1;
            if (T->nodes[entries].type == J_OBJ) { /* a row per key */
                TRY(check_unique_keys(T, entries));
                int j = entries + 1;
                for (uint32_t e = 0; e < T->nodes[entries].count; e++) {
                    TRY(metadata_row(S, T, tid, eid, i, j, j + 1));
                    j = (int)T->nodes[j + 1].next;
                }
            } else { /* a namespace holding a value of its own: no key */
                TRY(metadata_row(S, T, tid, eid, i, -1, entries));
            }
            i = (int)T->nodes[entries].next;
        }
    }
    int c = E[E_CAUSE];
    if (truthy(T, c) && T->nodes[c].type != J_STR) {
        if (T->nodes[c].type != J_OBJ) return BAD;
        int C[X2_N];
        TRY(fields(T, c, &EXCEPTION_SET, C));
        int list = C[X2_EXCEPTIONS];
        if (!truthy(T, list)) return OK;
        if (T->nodes[list].type != J_ARR) return BAD;
        int e = list + 1;
        for (uint32_t k = 0; k < T->nodes[list].count; k++) {
            if (T->nodes[e].type != J_OBJ) return BAD;
            int X[X2_N];
            TRY(fields(T, e, &EXCEPTION_SET, X));
            Col *col = exc->cols;
            TRY(put_str(&col[0], T, tid));
            TRY(put_str(&col[1], T, eid));
            TRY(put_str(&col[2], T, X[X2_ID]));
            TRY(put_str(&col[3], T, X[X2_TYPE]));
            TRY(put_str(&col[4], T, X[X2_MESSAGE]));
            TRY(put_bool(&col[5], is_true(T, X[X2_REMOTE])));
            TRY(put_str(&col[6], T, X[X2_CAUSE]));
            for (int f = X2_TRUNCATED; f <= X2_SKIPPED; f++) {
                int64_t v;
                if (type_of(T, X[f]) == J_INT) {
                    if (int_value(T, X[f], &v)) return BAD;
                    TRY(put_i64(&col[7 + f - X2_TRUNCATED], v));
                } else {
                    TRY(put_null(&col[7 + f - X2_TRUNCATED]));
                }
            }
            int stack = X[X2_STACK];
            int depth = type_of(T, stack) == J_ARR ? (int)T->nodes[stack].count : 0;
            TRY(put_i64(&col[9], depth));
            if (depth && T->nodes[stack + 1].type == J_OBJ) {
                int P[P_N];
                TRY(fields(T, stack + 1, &FRAME_SET, P));
                Buf *out = &S->tmp2;
                out->len = 0;
                TRY(frame_part(T, P[P_PATH], "?", out));
                TRY(buf_put(out, ":", 1));
                TRY(frame_part(T, P[P_LINE], "?", out));
                TRY(buf_put(out, " ", 1));
                TRY(frame_part(T, P[P_LABEL], "", out));
                rstrip(out);
                TRY(put_bytes(&col[10], out->p, out->len));
            } else {
                TRY(put_null(&col[10]));
            }
            TRY(put_i64(&col[11], S->seq));
            exc->rows++;
            e = (int)T->nodes[e].next;
        }
    }
    return OK;
}

/* The checks every entity passes (documents.py: _usable), and its times. */
static int basics(const Tape *T, const int *E, double *start, double *end, int *has_end) {
    int id = E[E_ID], st = E[E_START], en = E[E_END];
    if (type_of(T, id) != J_STR || T->nodes[id].len == 0) return BAD;
    if (type_of(T, E[E_NAME]) != J_STR) return BAD;
    if (st < 0 || num_value(T, st, start) || !(*start >= 0.0 && *start < 1e11)) return BAD;
    *has_end = !absent(T, en);
    if (*has_end && (num_value(T, en, end) || !(*end >= 0.0 && *end < 1e11))) return BAD;
    /* no end and not flagged in progress: Python reports it (and keeps the entity) */
    if (!*has_end && !is_true(T, E[E_IN_PROGRESS])) return BAD;
    return OK;
}

/* The request and response objects of an http block (-1 when absent or not objects). */
static int http_fields(const Tape *T, int http, int *R) {
    int H[H_N], req = -1, resp = -1;
    TRY(fields(T, http, &HTTP_SET, H));
    if (type_of(T, H[H_REQUEST]) == J_OBJ) req = H[H_REQUEST];
    if (type_of(T, H[H_RESPONSE]) == J_OBJ) resp = H[H_RESPONSE];
    int Q[R_N];
    TRY(fields(T, req, &REQUEST_SET, R));
    TRY(fields(T, resp, &REQUEST_SET, Q));
    R[R_STATUS] = Q[R_STATUS];
    return OK;
}

/* aws.xray: "sdk sdk_version" as Python joins the truthy parts (NULL length 0: null). */
static int sdk_text(Scanner *S, const Tape *T, int xray, int *is_null) {
    int X[X_N];
    TRY(fields(T, xray, &MISC_SET, X));
    S->tmp2.len = 0;
    for (int f = X_SDK; f <= X_SDK_VERSION; f++) {
        if (!truthy(T, X[f])) continue;
        if (T->nodes[X[f]].type != J_STR) return BAD;
        if (S->tmp2.len) TRY(buf_put(&S->tmp2, " ", 1));
        TRY(unescape(&S->tmp2, T, X[f]));
    }
    *is_null = S->tmp2.len == 0;
    return OK;
}

static int seg_row(Scanner *S, const Tape *T, const int *E, double start, double end, int has_end) {
    Col *c = S->t[T_SEG].cols;
    int R[R_N];
    TRY(http_fields(T, E[E_HTTP], R));
    int aws = type_of(T, E[E_AWS]) == J_OBJ ? E[E_AWS] : -1;
    int A[A_N], X[X_N], xray_null = 1;
    TRY(fields(T, aws, &AWS_SET, A));
    int ec2 = type_of(T, A[A_EC2]) == J_OBJ ? A[A_EC2] : -1;
    TRY(fields(T, ec2, &MISC_SET, X));
    int service = type_of(T, E[E_SERVICE]) == J_OBJ ? E[E_SERVICE] : -1;
    int V[X_N];
    TRY(fields(T, service, &MISC_SET, V));
    TRY(put_str(&c[0], T, E[E_TRACE_ID]));
    TRY(put_str(&c[1], T, E[E_ID]));
    TRY(put_str(&c[2], T, E[E_PARENT_ID]));
    TRY(put_str(&c[3], T, E[E_NAME]));
    TRY(put_str(&c[4], T, E[E_ORIGIN]));
    TRY(put_bool(&c[5], is_true(T, E[E_INFERRED])));
    TRY(put_f64(&c[6], start));
    TRY(has_end ? put_f64(&c[7], end) : put_null(&c[7]));
    TRY(put_bool(&c[8], !has_end || is_true(T, E[E_IN_PROGRESS])));
    TRY(put_str(&c[9], T, R[R_METHOD]));
    TRY(put_str(&c[10], T, R[R_URL]));
    TRY(put_int_node(&c[11], T, R[R_STATUS]));
    TRY(put_str(&c[12], T, R[R_USER_AGENT]));
    TRY(put_str(&c[13], T, R[R_CLIENT_IP]));
    TRY(put_bool(&c[14], is_true(T, E[E_FAULT])));
    TRY(put_bool(&c[15], is_true(T, E[E_ERROR])));
    TRY(put_bool(&c[16], is_true(T, E[E_THROTTLE])));
    TRY(put_str(&c[17], T, E[E_USER]));
    TRY(put_str(&c[18], T, A[A_ACCOUNT_ID]));
    TRY(put_str(&c[19], T, E[E_RESOURCE_ARN]));
    TRY(put_str(&c[20], T, X[X_AZ]));
    TRY(put_str(&c[21], T, X[X_INSTANCE_ID]));
    if (type_of(T, A[A_XRAY]) == J_OBJ) TRY(sdk_text(S, T, A[A_XRAY], &xray_null));
    TRY(xray_null ? put_null(&c[22]) : put_bytes(&c[22], S->tmp2.p, S->tmp2.len));
    TRY(put_str(&c[23], T, V[X_VERSION]));
    TRY(type_of(T, E[E_CAUSE]) == J_STR ? put_str(&c[24], T, E[E_CAUSE]) : put_null(&c[24]));
    TRY(put_i64(&c[25], S->seq));
    S->t[T_SEG].rows++;
    return OK;
}

static int sub_row(Scanner *S, const Tape *T, const int *E, int tid, int segment, int parent,
                   int64_t depth, int anchor, int streamed, double start, double end, int has_end) {
    Col *c = S->t[T_SUB].cols;
    int R[R_N];
    TRY(http_fields(T, E[E_HTTP], R));
    int aws = type_of(T, E[E_AWS]) == J_OBJ ? E[E_AWS] : -1;
    int A[A_N];
    TRY(fields(T, aws, &AWS_SET, A));
    int sql = type_of(T, E[E_SQL]) == J_OBJ ? E[E_SQL] : -1;
    int Q[Q_N];
    TRY(fields(T, sql, &SQL_SET, Q));
    TRY(put_str(&c[0], T, tid));
    TRY(put_str(&c[1], T, segment));
    TRY(put_str(&c[2], T, E[E_ID]));
    TRY(put_str(&c[3], T, parent));
    TRY(put_i64(&c[4], depth));
    TRY(put_str(&c[5], T, E[E_NAME]));
    TRY(put_str(&c[6], T, E[E_NAMESPACE]));
    TRY(put_f64(&c[7], start));
    TRY(has_end ? put_f64(&c[8], end) : put_null(&c[8]));
    TRY(put_bool(&c[9], !has_end || is_true(T, E[E_IN_PROGRESS])));
    TRY(put_str(&c[10], T, R[R_METHOD]));
    TRY(put_str(&c[11], T, R[R_URL]));
    TRY(put_int_node(&c[12], T, R[R_STATUS]));
    TRY(put_bool(&c[13], is_true(T, E[E_FAULT])));
    TRY(put_bool(&c[14], is_true(T, E[E_ERROR])));
    TRY(put_bool(&c[15], is_true(T, E[E_THROTTLE])));
    TRY(put_bool(&c[16], is_true(T, E[E_TRACED]) || is_true(T, R[R_TRACED])));
    TRY(put_str(&c[17], T, A[A_OPERATION]));
    TRY(put_str(&c[18], T, A[A_REGION]));
    TRY(put_str(&c[19], T, A[A_ACCOUNT_ID]));
    TRY(put_str(&c[20], T, A[A_REQUEST_ID]));
    TRY(put_str(&c[21], T, A[A_TABLE_NAME]));
    TRY(put_str(&c[22], T, A[A_QUEUE_URL]));
    TRY(put_str(&c[23], T, A[A_FUNCTION_NAME]));
    TRY(put_str(&c[24], T, A[A_TOPIC_ARN]));
    /* sql.url or, when that is falsy, sql.connection_string */
    TRY(put_str(&c[25], T, truthy(T, Q[Q_URL]) ? Q[Q_URL] : Q[Q_CONNECTION_STRING]));
    TRY(put_str(&c[26], T, Q[Q_DATABASE_TYPE]));
    TRY(put_str(&c[27], T, Q[Q_SANITIZED_QUERY]));
    TRY(put_str(&c[28], T, Q[Q_USER]));
    TRY(put_bool(&c[29], streamed));
    TRY(type_of(T, E[E_CAUSE]) == J_STR ? put_str(&c[30], T, E[E_CAUSE]) : put_null(&c[30]));
    TRY(put_str(&c[31], T, anchor));
    TRY(put_i64(&c[32], S->seq));
    S->t[T_SUB].rows++;
    return OK;
}

typedef struct {
    int items, parent;
    int64_t depth;
} Pending;

/* Nested subsegments, in the order documents.py's _Builder._walk visits them. */
static int walk(Scanner *S, const Tape *T, int subs, int tid, int segment, int parent,
                int64_t depth0, int anchor) {
    S->stack.len = 0;
    Pending first = {subs, parent, depth0 + 1};
    TRY(buf_put(&S->stack, &first, sizeof first));
    while (S->stack.len) {
        S->stack.len -= sizeof(Pending);
        Pending top;
        memcpy(&top, S->stack.p + S->stack.len, sizeof top);
        if (T->nodes[top.items].type != J_ARR) return BAD;
        int child = top.items + 1;
        for (uint32_t k = 0; k < T->nodes[top.items].count; k++) {
            if (T->nodes[child].type != J_OBJ) return BAD;
            int E[E_N];
            double start, end = 0;
            int has_end;
            TRY(fields(T, child, &ENTITY_SET, E));
            TRY(basics(T, E, &start, &end, &has_end));
            TRY(sub_row(S, T, E, tid, segment, top.parent, top.depth, anchor, 0, start, end, has_end));
            if (truthy(T, E[E_ANNOTATIONS]) || truthy(T, E[E_METADATA]) || truthy(T, E[E_CAUSE]))
                TRY(extras(S, T, E, tid, E[E_ID]));
            S->seq++;
            if (truthy(T, E[E_SUBSEGMENTS])) {
                Pending next = {E[E_SUBSEGMENTS], E[E_ID], top.depth + 1};
                TRY(buf_put(&S->stack, &next, sizeof next));
            }
            child = (int)T->nodes[child].next;
        }
    }
    return OK;
}

/* One top-level document: a segment, or a subsegment sent on its own (_Builder.add_document). */
static int add_document(Scanner *S, const Tape *T, int doc, const char *text, size_t text_len) {
    if (T->nodes[doc].type != J_OBJ) return BAD;
    int E[E_N];
    double start, end = 0;
    int has_end;
    TRY(fields(T, doc, &ENTITY_SET, E));
    int streamed = str_equals(T, E[E_TYPE], "subsegment");
    if (type_of(T, E[E_TYPE]) == J_STR && T->nodes[E[E_TYPE]].esc) return BAD;
    TRY(basics(T, E, &start, &end, &has_end));
    int tid = E[E_TRACE_ID];
    if (!valid_trace_id(T, tid)) return BAD;
    int in_progress = !has_end || is_true(T, E[E_IN_PROGRESS]);
    if (streamed) {
        int parent = E[E_PARENT_ID];
        if (type_of(T, parent) != J_STR || T->nodes[parent].len == 0) return BAD;
        TRY(sub_row(S, T, E, tid, -1, parent, 1, E[E_ID], 1, start, end, has_end));
    } else {
        TRY(seg_row(S, T, E, start, end, has_end));
    }
    if (truthy(T, E[E_ANNOTATIONS]) || truthy(T, E[E_METADATA]) || truthy(T, E[E_CAUSE]))
        TRY(extras(S, T, E, tid, E[E_ID]));
    Col *d = S->t[T_DOC].cols;
    TRY(put_str(&d[0], T, tid));
    TRY(put_str(&d[1], T, E[E_ID]));
    TRY(put_bool(&d[2], in_progress));
    TRY(put_bytes(&d[3], text, text_len));
    TRY(put_i64(&d[4], S->seq));
    TRY(put_bool(&d[5], T->links)); /* its text contains "links" */
    S->t[T_DOC].rows++;
    S->seq++; /* the entity's number: its rows, extras and document row carry it */
    if (truthy(T, E[E_SUBSEGMENTS])) {
        if (streamed) TRY(walk(S, T, E[E_SUBSEGMENTS], tid, -1, E[E_ID], 1, E[E_ID]));
        else TRY(walk(S, T, E[E_SUBSEGMENTS], tid, E[E_ID], E[E_ID], 0, -1));
    }
    return OK;
}

static int add_response(Scanner *S, const int *L) {
    const Tape *T = &S->line;
    int traces = L[L_TRACES];
    if (type_of(T, traces) != J_ARR) return BAD;
    int unprocessed = L[L_UNPROCESSED];
    if (truthy(T, unprocessed) && T->nodes[unprocessed].type == J_ARR) return BAD;
    int t = traces + 1;
    for (uint32_t k = 0; k < T->nodes[traces].count; k++) {
        if (T->nodes[t].type != J_OBJ) return BAD;
        int G[L_N];
        TRY(fields(T, t, &LINE_SET, G));
        int segments = G[L_SEGMENTS];
        if (type_of(T, segments) != J_ARR || is_true(T, G[L_LIMIT])) return BAD;
        int s = segments + 1;
        for (uint32_t j = 0; j < T->nodes[segments].count; j++) {
            if (T->nodes[s].type != J_OBJ) return BAD;
            int D[L_N];
            TRY(fields(T, s, &LINE_SET, D));
            int document = D[L_DOCUMENT];
            if (type_of(T, document) != J_STR) return BAD;
            size_t len; /* the Document was decoded while the line was parsed */
            const char *text = str_text(T, document, &len);
            TRY(tape_parse(&S->doc, text, len));
            TRY(add_document(S, &S->doc, 0, text, len));
            s = (int)T->nodes[s].next;
        }
        t = (int)T->nodes[t].next;
    }
    return OK;
}

static int is_bytes_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x0b || c == 0x0c;
}

/* One line of input, routed as documents.py's _accept does. */
static int add_line(Scanner *S, const char *s, size_t n) {
    size_t a = 0, b = n;
    while (a < b && is_bytes_space((unsigned char)s[a])) a++;
    while (b > a && is_bytes_space((unsigned char)s[b - 1])) b--;
    if (a == b) return OK; /* a blank line */
    Tape *T = &S->line;
    TRY(tape_parse(T, s, n));
    if (T->nodes[0].type != J_OBJ) return BAD;
    int L[L_N];
    TRY(fields(T, 0, &LINE_SET, L));
    if (L[L_TRACES] >= 0) return add_response(S, L);
    if (L[L_SEGMENTS] >= 0 && L[L_ID_UPPER] >= 0) return BAD;
    if (L[L_FORMAT] >= 0 && L[L_VERSION] >= 0 && L[L_ID] < 0) {
        /* the daemon header: nothing to load when it is exactly what SDKs send */
        int f = L[L_FORMAT], v = L[L_VERSION];
        int64_t version;
        if (type_of(T, f) != J_STR || T->nodes[f].esc || T->nodes[f].len != 4) return BAD;
        if (strncasecmp(str_ptr(T, f), "json", 4) != 0) return BAD;
        if (type_of(T, v) != J_INT || int_value(T, v, &version) || version != 1) return BAD;
        return OK;
    }
    if (L[L_SUMMARIES] >= 0) return BAD;
    return add_document(S, T, 0, s + a, b - a);
}

typedef struct {
    size_t rows[N_TABLES];
    Py_ssize_t ann_values, meta_values;
    int64_t seq;
} Mark;

static void mark(Scanner *S, Mark *m) {
    for (int t = 0; t < N_TABLES; t++) m->rows[t] = S->t[t].rows;
    m->ann_values = PyList_GET_SIZE(S->ann_values);
    m->meta_values = PyList_GET_SIZE(S->meta_values);
    m->seq = S->seq;
}

static int rollback(Scanner *S, const Mark *m) {
    for (int t = 0; t < N_TABLES; t++) table_truncate(&S->t[t], m->rows[t]);
    S->seq = m->seq;
    if (PyList_SetSlice(S->ann_values, m->ann_values, PyList_GET_SIZE(S->ann_values), NULL))
        return ERR;
    return PyList_SetSlice(S->meta_values, m->meta_values, PyList_GET_SIZE(S->meta_values), NULL);
}

/* ---------------------------------------------------------------- Python type */

static void Scanner_dealloc(Scanner *S) {
    free(S->line.nodes);
    free(S->doc.nodes);
    buf_free(&S->line.dec);
    buf_free(&S->doc.dec);
    buf_free(&S->tmp2);
    buf_free(&S->stack);
    for (int t = 0; t < N_TABLES; t++) table_free(&S->t[t]);
    Py_XDECREF(S->ann_values);
    Py_XDECREF(S->meta_values);
    Py_TYPE(S)->tp_free((PyObject *)S);
}

static int init_tables(Scanner *S) {
    static const char *names[] = {"segments", "subsegments", "documents", "annotations", "metadata", "exceptions"};
    const int *kinds[] = {SEG_KINDS, SUB_KINDS, DOC_KINDS, ANN_KINDS, META_KINDS, EXC_KINDS};
    int counts[] = {NCOLS(SEG_KINDS), NCOLS(SUB_KINDS), NCOLS(DOC_KINDS),
                    NCOLS(ANN_KINDS), NCOLS(META_KINDS), NCOLS(EXC_KINDS)};
    for (int t = 0; t < N_TABLES; t++) {
        if (table_init(&S->t[t], names[t], kinds[t], counts[t])) return ERR;
    }
    return OK;
}

static PyObject *Scanner_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    (void)args;
    (void)kwds;
    Scanner *S = (Scanner *)type->tp_alloc(type, 0);
    if (!S) return NULL;
    S->ann_values = PyList_New(0);
    S->meta_values = PyList_New(0);
    if (!S->ann_values || !S->meta_values || init_tables(S)) {
        Py_DECREF(S);
        return NULL;
    }
    return (PyObject *)S;
}

static PyObject *Scanner_scan(Scanner *S, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, line;
    long long seq;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "y*nnLn", &view, &pos, &line, &seq, &limit)) return NULL;
    const char *data = view.buf;
    size_t n = (size_t)view.len;
    int status = DONE;
    S->seq = seq;
    if (pos < 0 || (size_t)pos > n) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pos is outside the data");
        return NULL;
    }
    size_t p = (size_t)pos;
    while (p < n) {
        const char *eol = memchr(data + p, '\n', n - p);
        size_t end = eol ? (size_t)(eol - data) + 1 : n;
        Mark m;
        mark(S, &m);
        int rc = add_line(S, data + p, end - p);
        if (rc != OK) {
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            int failed = rollback(S, &m);
            if (rc == ERR || failed) {
                if (type) PyErr_Restore(type, value, tb);
                PyBuffer_Release(&view);
                return NULL;
            }
            status = FALLBACK;
            break;
        }
        p = end;
        line++;
        if (S->t[T_DOC].cols[3].data.len >= (size_t)limit) {
            status = FULL;
            break;
        }
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("innL", status, (Py_ssize_t)p, line, (long long)S->seq);
}

/* ---------------------------------------------------------------- owned buffers */

/* Memory the scanner filled, handed to Python without a copy (Arrow wraps it, zero-copy). */
typedef struct {
    PyObject_HEAD
    Buf buf;
    Py_ssize_t exports;
} Owned;

static void Owned_dealloc(Owned *o) {
    buf_free(&o->buf);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

static int Owned_getbuffer(Owned *o, Py_buffer *view, int flags) {
    char *p = o->buf.p ? o->buf.p : (char *)"";
    if (PyBuffer_FillInfo(view, (PyObject *)o, p, (Py_ssize_t)o->buf.len, 1, flags) < 0)
        return -1;
    o->exports++;
    return 0;
}

static void Owned_releasebuffer(Owned *o, Py_buffer *view) {
    (void)view;
    o->exports--;
}

static PyBufferProcs Owned_as_buffer = {(getbufferproc)Owned_getbuffer,
                                        (releasebufferproc)Owned_releasebuffer};

static PyTypeObject OwnedType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "xraykit._scan.Buffer",
    .tp_basicsize = sizeof(Owned),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Bytes the scanner wrote, owned by this object (read-only buffer).",
    .tp_dealloc = (destructor)Owned_dealloc,
    .tp_as_buffer = &Owned_as_buffer,
};

/* Move a buffer's bytes into a Python object; the buffer starts empty again. */
static PyObject *hand_over(Buf *b) {
    Owned *o = PyObject_New(Owned, &OwnedType);
    if (!o) return NULL;
#ifdef __linux__
    if (b->mapped && page_round(b->len) < b->cap) { /* give back the pages never used */
        size_t keep = page_round(b->len ? b->len : 1);
        void *p = mremap(b->p, b->cap, keep, 0);
        if (p != MAP_FAILED) b->cap = keep;
    }
#endif
    o->buf = *b;
    o->exports = 0;
    b->p = NULL;
    b->len = b->cap = 0;
    b->mapped = 0;
    return (PyObject *)o;
}

static PyObject *bitmap(const Buf *valid, size_t rows, Py_ssize_t *nulls) {
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)((rows + 7) / 8));
    if (!out) return NULL;
    unsigned char *bits = (unsigned char *)PyBytes_AS_STRING(out);
    memset(bits, 0, (rows + 7) / 8);
    Py_ssize_t missing = 0;
    for (size_t r = 0; r < rows; r++) {
        if (valid->p[r]) bits[r >> 3] |= (unsigned char)(1u << (r & 7));
        else missing++;
    }
    *nulls = missing;
    return out;
}

/* A column as (rows, null_count, validity bitmap or None, values or offsets, string bytes or
 * None); the values and string bytes move to Python without a copy. */
static PyObject *column_tuple(Col *col, size_t rows) {
    Py_ssize_t nulls = 0;
    PyObject *validity = bitmap(&col->valid, rows, &nulls);
    if (!validity) return NULL;
    if (!nulls) {
        Py_DECREF(validity);
        validity = Py_NewRef(Py_None);
    }
    PyObject *values, *data = Py_NewRef(Py_None);
    if (col->kind == C_BOOL) {
        Py_ssize_t ignored;
        values = bitmap(&col->data, rows, &ignored);
    } else if (col->kind == C_STR) {
        values = hand_over(&col->offs);
        Py_DECREF(data);
        data = hand_over(&col->data);
    } else {
        values = hand_over(&col->data);
    }
    if (!values || !data) {
        Py_DECREF(validity);
        Py_XDECREF(values);
        Py_XDECREF(data);
        return NULL;
    }
    return Py_BuildValue("nnNNN", (Py_ssize_t)rows, nulls, validity, values, data);
}

/* Empty a table after its buffers were handed over (or to start again). */
static int table_reset(Table *t) {
    for (int c = 0; c < t->ncols; c++) {
        Col *col = &t->cols[c];
        col->data.len = col->valid.len = col->offs.len = 0;
        if (col->kind == C_STR) {
            int64_t zero = 0;
            if (buf_put(&col->offs, &zero, 8)) return ERR;
        }
    }
    t->rows = 0;
    return OK;
}

/* take(everything=True): the tables built so far, as {name: [column tuples]} plus the values
 * of annotations and metadata; take(False) takes only the documents (their text is
 * compressed as it comes, while the other tables grow until the end). */
static PyObject *Scanner_take(Scanner *S, PyObject *args) {
    int everything = 1;
    if (!PyArg_ParseTuple(args, "|p", &everything)) return NULL;
    PyObject *out = PyDict_New(), *ann = NULL, *meta = NULL;
    if (!out) return NULL;
    if (everything && (!(ann = PyList_New(0)) || !(meta = PyList_New(0)))) goto fail;
    for (int t = 0; t < N_TABLES; t++) {
        if (!everything && t != T_DOC) continue;
        Table *tab = &S->t[t];
        PyObject *cols = PyList_New(tab->ncols);
        if (!cols) goto fail;
        for (int c = 0; c < tab->ncols; c++) {
            PyObject *col = column_tuple(&tab->cols[c], tab->rows);
            if (!col) {
                Py_DECREF(cols);
                goto fail;
            }
            PyList_SET_ITEM(cols, c, col);
        }
        int rc = PyDict_SetItemString(out, tab->name, cols);
        Py_DECREF(cols);
        if (rc || table_reset(tab)) goto fail;
    }
    if (everything) {
        if (PyDict_SetItemString(out, "annotation_values", S->ann_values) ||
            PyDict_SetItemString(out, "metadata_values", S->meta_values))
            goto fail;
        Py_SETREF(S->ann_values, ann);
        Py_SETREF(S->meta_values, meta);
    }
    return out;
fail:
    /* out of memory part-way: start empty rather than keep half-handed-over tables */
    for (int t = 0; t < N_TABLES; t++) {
        for (int c = 0; c < S->t[t].ncols; c++) {
            buf_free(&S->t[t].cols[c].data);
            buf_free(&S->t[t].cols[c].offs);
            buf_free(&S->t[t].cols[c].valid);
        }
        table_reset(&S->t[t]);
    }
    PyList_SetSlice(S->ann_values, 0, PyList_GET_SIZE(S->ann_values), NULL);
    PyList_SetSlice(S->meta_values, 0, PyList_GET_SIZE(S->meta_values), NULL);
    Py_XDECREF(ann);
    Py_XDECREF(meta);
    Py_DECREF(out);
    return NULL;
}

static PyObject *Scanner_pending(Scanner *S, PyObject *unused) {
    (void)unused;
    return PyLong_FromSize_t(S->t[T_SEG].rows + S->t[T_SUB].rows + S->t[T_DOC].rows);
}

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)Scanner_scan, METH_VARARGS,
     "scan(data, pos, line, seq, limit) -> (status, pos, line, seq)"},
    {"take", (PyCFunction)Scanner_take, METH_VARARGS,
     "take(everything=True) -> dict of the tables built so far (only the documents when "
     "everything is false); what was taken starts empty again"},
    {"pending", (PyCFunction)Scanner_pending, METH_NOARGS, "rows waiting to be taken"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "xraykit._scan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Reads JSON lines of X-Ray documents into column buffers.",
    .tp_new = Scanner_new,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "xraykit._scan", "The loader's fast path (see documents.py).", -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__scan(void) {
    KeySet *sets[] = {&ENTITY_SET, &HTTP_SET, &REQUEST_SET, &AWS_SET, &MISC_SET,
                      &SQL_SET, &EXCEPTION_SET, &FRAME_SET, &LINE_SET};
    for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) keyset_index(sets[k]);
    if (PyType_Ready(&ScannerType) < 0 || PyType_Ready(&OwnedType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "Scanner", (PyObject *)&ScannerType) < 0 ||
        PyModule_AddIntConstant(m, "DONE", DONE) < 0 ||
        PyModule_AddIntConstant(m, "FULL", FULL) < 0 ||
        PyModule_AddIntConstant(m, "FALLBACK", FALLBACK) < 0 ||
        PyModule_AddStringConstant(m, "SOURCE_HASH", XRAYKIT_SCAN_SOURCE_HASH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
