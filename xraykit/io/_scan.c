/*
 * xraykit.io._scan: the loader's fast path, in C.
 *
 * It reads JSON lines (BatchGetTraces responses, traces, raw segment documents, daemon
 * headers, and arrays of these) and writes the frames' columns straight into buffers laid out
 * as pandas and Arrow hold them, with no Python object per value (but annotation and metadata
 * values, which the frames hold as objects).
 *
 * What it reads is not written here: xraykit/io/columns.py passes the Scanner the document
 * fields with the JSON types they must have, and every column with its source (a field, the
 * first non-empty of several, string parts joined, or an "@" context such as the depth),
 * all derived from xraykit/schema.py. This file knows the contexts, and the rules that make
 * rows of annotations, metadata, exceptions and nested subsegments.
 *
 * It loads only what it can load exactly as the Python reader (xraykit/io/reader.py) would.
 * On anything else (a problem to report, a type the schema does not allow) it undoes what
 * the line added and returns FALLBACK: Python reads that line and appends its rows with
 * Scanner.append, so every column stays one buffer, in reading order. The Python reader is
 * the reference; tests compare the two.
 *
 * Scanner(fields, roles, tables)
 * Scanner.scan(data, pos, line, seq, limit, mode=LINES) -> (status, pos, line, seq)
 *     status DONE: every line of `data` from `pos` was read; FULL: `limit` bytes of document
 *     text wait to be taken; FALLBACK: the line at `pos` must be read by Python. Modes: LINES
 *     (JSON lines), VALUE (the data is one JSON value; newlines are whitespace), DOCUMENT (one
 *     segment document, as a BatchGetTraces Document string holds).
 * Scanner.append(table, row)  a row Python read, one value per column
 * Scanner.take(everything=True) -> {table: [column, ...]}, buffers handed over without a copy
 * OtlpSpans().read(data)  the spans of a plain OTLP/JSON export request (in _scan_otlp.h)
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
enum { M_LINES = 0, M_VALUE = 1, M_DOCUMENT = 2 };
#define MAX_DEPTH 512
#define MAX_DUP_CHECK 256 /* objects with more keys than this go to Python */

#define TRY(expr)                                                                              \
    do {                                                                                       \
        int rc_ = (expr);                                                                      \
        if (rc_) return rc_;                                                                   \
    } while (0)

/* ---------------------------------------------------------------- portability */

/* The index of the lowest set bit (v is not zero). */
#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_ARM64))
#include <intrin.h>
static inline int lowest_bit(uint64_t v) {
    unsigned long i;
    _BitScanForward64(&i, v);
    return (int)i;
}
#elif defined(__GNUC__) || defined(__clang__)
static inline int lowest_bit(uint64_t v) { return __builtin_ctzll(v); }
#else
static inline int lowest_bit(uint64_t v) {
    int n = 0;
    while (!(v & 1)) {
        v >>= 1;
        n++;
    }
    return n;
}
#endif

/* Eight bytes at a time in parse_string needs the first byte in the lowest bits. */
#if (defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) ||                 \
    defined(_M_X64) || defined(_M_IX86) || defined(_M_ARM64)
#define WORDS_LITTLE_ENDIAN 1
#endif

/* ---------------------------------------------------------------- growable buffers */

typedef struct {
    char *p;
    size_t len, cap;
    /* bytes from `clean` to `cap` are known to be zero: writing zeros there needs no store, so
     * a column that is mostly null costs no memory until a value comes (fresh pages of an
     * anonymous mapping read as zero and take no memory until written) */
    size_t clean;
    int mapped; /* an anonymous mapping: it grows without copying (mremap) and its memory goes
                   back to the system at once when freed */
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
            p = mremap(b->p, b->cap, cap, MREMAP_MAYMOVE); /* new pages are zero */
        } else {
            p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p != MAP_FAILED) {
                if (b->len) memcpy(p, b->p, b->len);
                free(b->p);
                b->clean = b->len;
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
    b->cap = b->clean = cap; /* realloc'd memory holds anything */
    return OK;
}

static inline int buf_put(Buf *b, const void *src, size_t n) {
    if (b->len + n > b->cap && buf_reserve(b, n)) return ERR;
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
    if (b->len > b->clean) b->clean = b->len;
    return OK;
}

/* Append n zero bytes, storing only where the memory is not known to be zero. */
static inline int buf_zeros(Buf *b, size_t n) {
    if (b->len >= b->clean && b->len + n <= b->cap) { /* the usual case: nothing to store */
        b->len += n;
        return OK;
    }
    if (b->len + n > b->cap && buf_reserve(b, n)) return ERR;
    if (b->len < b->clean) {
        size_t dirty = b->clean - b->len;
        memset(b->p + b->len, 0, dirty < n ? dirty : n);
    }
    b->len += n;
    return OK;
}

static void buf_free(Buf *b) {
    if (b->p) raw_free(b->p, b->cap, b->mapped);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- JSON to a tape */

enum { J_NULL, J_FALSE, J_TRUE, J_INT, J_FLOAT, J_STR, J_ARR, J_OBJ };

/* One node per value (and per object key). A container's children follow it; `next` is the
 * index just past its last descendant. Strings and numbers point into the source text. */
typedef struct {
    uint8_t type, esc;
    uint32_t count; /* children (arrays) or key/value pairs (objects); decoded length (strings
                       with escapes) */
    uint32_t start, len; /* containers: from the bracket to just past the closing one */
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

#ifdef WORDS_LITTLE_ENDIAN
/* Which of 8 bytes may be a quote, a backslash, a control or a non-ASCII byte: the lowest
 * flagged byte is exact (borrows only run upwards), the ones above it may be false alarms. */
static inline uint64_t special8(const unsigned char *p) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t v;
    memcpy(&v, p, 8);
    uint64_t quote = v ^ (ones * '"'), slash = v ^ (ones * '\\');
    uint64_t found = ((quote - ones) & ~quote) | ((slash - ones) & ~slash) | (v - ones * 0x20) | v;
    return found & highs;
}
#endif

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
#ifdef WORDS_LITTLE_ENDIAN
        uint64_t mask = 0;
        while (i + 8 <= n && !(mask = special8(s + i))) i += 8;
        if (mask) i += (size_t)lowest_bit(mask) >> 3;
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
    size_t open = T->i;
    T->i++; /* the bracket */
    skip_ws(T);
    unsigned char close = is_obj ? '}' : ']';
    uint32_t count = 0;
    if (T->i < T->n && T->s[T->i] == close) {
        T->i++;
    } else {
        for (;;) {
            if (is_obj) {
                if (T->i >= T->n || T->s[T->i] != '"') return BAD;
                int k = tape_node(T, J_STR, T->i);
                if (k < 0) return ERR;
                TRY(parse_string(T, k));
                skip_ws(T);
                if (T->i >= T->n || T->s[T->i] != ':') return BAD;
                T->i++;
                skip_ws(T);
            }
            TRY(parse_value(T, depth + 1));
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
    }
    if (T->i - open > UINT32_MAX) return BAD;
    T->nodes[idx].count = count;
    T->nodes[idx].len = (uint32_t)(T->i - open);
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

static void tape_start(Tape *T, const char *s, size_t n) {
    T->s = (const unsigned char *)s;
    T->n = n;
    T->i = 0;
    T->nn = 0;
    T->dec.len = 0;
    T->links = 0;
}

/* Parse s[0:n] as one JSON value with only whitespace around it. */
static int tape_parse(Tape *T, const char *s, size_t n) {
    if (n > UINT32_MAX) return BAD;
    tape_start(T, s, n);
    skip_ws(T);
    TRY(parse_value(T, 0));
    skip_ws(T);
    return T->i == T->n ? OK : BAD;
}

/* ---------------------------------------------------------------- reading the tape */

/* The text of a string node and its length (decoded when it had escapes). */
static inline const char *str_text(const Tape *T, int idx, size_t *len) {
    const Node *nd = &T->nodes[idx];
    *len = nd->esc ? nd->count : nd->len;
    return nd->esc ? T->dec.p + nd->dec : (const char *)T->s + nd->start;
}

/* Append the text of a string node to out (decoded when it had escapes). */
static int unescape(Buf *out, const Tape *T, int idx) {
    size_t len;
    const char *text = str_text(T, idx, &len);
    return buf_put(out, text, len);
}

/* An integer node as int64; BAD when it does not fit (Python would make a big int). */
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
    const unsigned char *end = p + n, *dot = NULL;
    int neg = *p == '-';
    if (neg) p++;
    if (end - p > 19) return 0; /* at most 19 digits: m cannot overflow */
    uint64_t m = 0;
    for (; p < end; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (d < 10) {
            m = m * 10 + d;
        } else if (*p == '.') {
            dot = p;
        } else {
            return 0; /* an exponent */
        }
    }
    size_t scale = dot ? (size_t)(end - dot - 1) : 0;
    if (m > ((uint64_t)1 << 53) || scale > 22) return 0;
    double v = (double)m / pow10[scale];
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

/* Python truthiness of a node; absent (negative) is false. */
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

static inline int type_of(const Tape *T, int idx) { return idx < 0 ? -1 : T->nodes[idx].type; }
static inline int is_true(const Tape *T, int idx) { return type_of(T, idx) == J_TRUE; }

static int text_equals(const Tape *T, int a, const char *text, size_t len) {
    size_t la;
    const char *x = str_text(T, a, &la);
    return la == len && memcmp(x, text, len) == 0;
}

static int key_equal(const Tape *T, int a, int b) {
    size_t lb;
    const char *y = str_text(T, b, &lb);
    return text_equals(T, a, y, lb);
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
    if (type_of(T, idx) != J_STR) return 0;
    size_t n, i = 0;
    const unsigned char *p = (const unsigned char *)str_text(T, idx, &n);
    while (i < n && p[i] >= '0' && p[i] <= '9') i++;
    if (i == 0 || n != i + 34 || p[i] != '-' || p[i + 9] != '-') return 0;
    for (size_t k = i + 1; k < n; k++) {
        if (k == i + 9) continue;
        if (hexval(p[k]) < 0) return 0;
    }
    return 1;
}

/* ASCII case-insensitive equality with a lower-case word. */
static int ascii_lower_equals(const char *p, size_t n, const char *lower) {
    if (strlen(lower) != n) return 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)p[k];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
        if (c != (unsigned char)lower[k]) return 0;
    }
    return 1;
}

/* Whether text holds the seven characters "links" (quotes included). */
static int has_links_text(const char *text, size_t n) {
    const char *p = text, *end = text + n;
    while (end - p >= 7) {
        const char *q = memchr(p, '"', (size_t)(end - p) - 6);
        if (!q) return 0;
        if (memcmp(q, "\"links\"", 7) == 0) return 1;
        p = q + 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- the document fields */

/* JSON types a field allows (xraykit/schema.py: STRING, NUMBER, ...), as passed by columns.py */
enum { TY_STRING = 1, TY_NUMBER = 2, TY_INTEGER = 4, TY_BOOLEAN = 8, TY_OBJECT = 16, TY_ARRAY = 32 };
#define MAX_CHILDREN 64

typedef struct {
    char *key; /* NULL for a root or the items of an array */
    size_t len;
    int parent, item; /* item: the field of an array's items (-1: items unchecked) */
    int types;
    int nchildren;
    int children[MAX_CHILDREN];
    uint64_t by_first[128]; /* bit k: children[k]'s name starts with this byte */
} Field;

/* The fields the rules below need, by the names columns.py passes them under. */
enum {
    R_ENTITY, R_ID, R_NAME, R_TRACE_ID, R_START, R_END, R_IN_PROGRESS, R_PARENT_ID, R_TYPE,
    R_SUBSEGMENTS, R_ANNOTATIONS, R_METADATA, R_CAUSE, R_EXCEPTIONS, R_EXCEPTION, R_STACK,
    R_FRAME, R_FRAME_PATH, R_FRAME_LINE, R_FRAME_LABEL, N_ROLES
};
static const char *ROLE_NAMES[N_ROLES] = {
    "entity", "id", "name", "trace_id", "start_time", "end_time", "in_progress", "parent_id",
    "type", "subsegments", "annotations", "metadata", "cause", "cause.exceptions", "exception",
    "exception.stack", "frame", "frame.path", "frame.line", "frame.label"};

/* The field of key node `k` among the children of field f, or -1. */
static int field_of(const Field *fields, int f, const Tape *T, int k) {
    const Field *F = &fields[f];
    size_t len;
    const unsigned char *name = (const unsigned char *)str_text(T, k, &len);
    if (!len || name[0] >= 128) return -1;
    uint64_t candidates = F->by_first[name[0]];
    while (candidates) {
        int c = lowest_bit(candidates);
        candidates &= candidates - 1;
        const Field *C = &fields[F->children[c]];
        if (C->len == len && memcmp(C->key, name, len) == 0) return F->children[c];
    }
    return -1;
}

/* Whether node v is one of the JSON types field f allows. */
static int type_allowed(const Tape *T, int v, int types) {
    int64_t ignored;
    switch (T->nodes[v].type) {
    case J_STR: return types & TY_STRING;
    case J_FALSE:
    case J_TRUE: return types & TY_BOOLEAN;
    case J_FLOAT: return types & TY_NUMBER;
    case J_INT:
        return (types & TY_NUMBER) || ((types & TY_INTEGER) && !int_value(T, v, &ignored));
    case J_OBJ: return types & TY_OBJECT;
    case J_ARR: return types & TY_ARRAY;
    default: return 0;
    }
}

/* ---------------------------------------------------------------- columns */

/* Column kinds: the layout of each column's buffers (columns.py turns them into pandas). */
enum { K_STR, K_BOOL, K_INT, K_NINT, K_FLOAT, K_TIME, K_OBJ, K_I32, N_KINDS };
static const char *KIND_NAMES[N_KINDS] = {"str", "bool", "int64", "Int64", "float64", "time", "object", "int32"};
/* How a column finds its value. */
enum { OP_FIELD, OP_FIRST, OP_JOIN, OP_CONTEXT };
#define MAX_ARGS 4

/* What the reader knows from where a row sits ("@" sources in schema.py). */
enum {
    CX_TRACE_ID, CX_SEGMENT_ID, CX_PARENT_ID, CX_DEPTH, CX_IN_PROGRESS, CX_STREAMED, CX_ANCHOR,
    CX_SEQ, CX_ENTITY_ID, CX_KEY, CX_VALUE, CX_VALUE_TYPE, CX_NAMESPACE, CX_STACK_DEPTH,
    CX_TOP_FRAME, CX_TEXT, CX_HAS_LINKS, CX_TRACE_CODE, N_CONTEXTS
};
static const char *CONTEXT_NAMES[N_CONTEXTS] = {
    "trace_id", "segment_id", "parent_id", "depth", "in_progress", "streamed", "anchor",
    "seq", "entity_id", "key", "value", "value_type", "namespace", "stack_depth",
    "top_frame", "text", "has_links", "trace_code"};
/* The kinds each context can fill (bit per kind). */
#define KB(k) (1 << (k))
static const int CONTEXT_KINDS[N_CONTEXTS] = {
    KB(K_STR), KB(K_STR), KB(K_STR), KB(K_NINT) | KB(K_INT), KB(K_BOOL), KB(K_BOOL), KB(K_STR),
    KB(K_INT) | KB(K_I32), KB(K_STR), KB(K_STR), KB(K_OBJ), KB(K_STR), KB(K_STR), KB(K_INT) | KB(K_NINT),
    KB(K_STR), KB(K_STR), KB(K_BOOL), KB(K_I32)};

typedef struct {
    int kind, op, upper, nargs;
    int args[MAX_ARGS];
    Buf data;  /* string bytes, or values (8 bytes each, or 1 byte per bool; objects: a new
                  reference each) */
    Buf offs;  /* int64 offsets of strings */
    Buf valid; /* one byte per row (strings, nullable integers) */
} Col;

typedef struct {
    PyObject *name;
    int ncols;
    Col *cols;
    size_t rows;
} Table;

enum { T_SEG, T_SUB, T_DOC, T_DIDX, T_ANN, T_META, T_EXC, N_TABLES };
/* documents: their text, taken as it comes to be compressed; document_index: the rest of what
 * the document store keeps of each, one buffer per column until the end */
static const char *TABLE_NAMES[N_TABLES] = {"segments", "subsegments", "documents", "document_index", "annotations", "metadata", "exceptions"};

/* One row's values that do not come from its fields. Tape nodes are -1 when absent. */
typedef struct {
    const Tape *T;
    const int *vals; /* where the row's fields are on the tape (see walk) */
    int trace_id, segment_id, parent_id, anchor, entity_id, key, value, name_space;
    int64_t depth;
    int in_progress, streamed, has_links;
    int64_t stack_depth;
    const char *value_type;
    const char *text; /* the document's JSON text (documents), or the top frame */
    size_t text_len;
    int has_text;
} Row;

static void row_init(Row *r, const Tape *T, const int *vals) {
    memset(r, 0, sizeof *r);
    r->T = T;
    r->vals = vals;
    r->trace_id = r->segment_id = r->parent_id = r->anchor = r->entity_id = -1;
    r->key = r->value = r->name_space = -1;
}

static inline int put_valid(Col *col, int valid) {
    unsigned char v = (unsigned char)valid;
    return valid ? buf_put(&col->valid, &v, 1) : buf_zeros(&col->valid, 1);
}

static inline int end_string(Col *col) {
    int64_t end = (int64_t)col->data.len;
    return end ? buf_put(&col->offs, &end, 8) : buf_zeros(&col->offs, 8);
}

/* An object column takes the reference. */
static int put_object(Col *col, PyObject *object) {
    if (buf_put(&col->data, &object, sizeof object)) {
        Py_DECREF(object);
        return ERR;
    }
    return OK;
}

static int put_null(Col *col) {
    switch (col->kind) {
    case K_STR:
        TRY(put_valid(col, 0));
        return end_string(col);
    case K_BOOL: return buf_zeros(&col->data, 1);
    case K_NINT:
        TRY(put_valid(col, 0));
        return buf_zeros(&col->data, 8);
    case K_FLOAT: {
        double nan = Py_NAN;
        return buf_put(&col->data, &nan, 8);
    }
    case K_TIME: {
        int64_t nat = INT64_MIN;
        return buf_put(&col->data, &nat, 8);
    }
    case K_OBJ: return put_object(col, Py_NewRef(Py_None));
    case K_I32: return buf_zeros(&col->data, 4);
    default: return buf_zeros(&col->data, 8);
    }
}

static int put_bytes(Col *col, const char *p, size_t n, int upper) {
    if (upper) {
        size_t at = col->data.len;
        TRY(buf_put(&col->data, p, n));
        for (size_t k = 0; k < n; k++) {
            unsigned char c = (unsigned char)col->data.p[at + k];
            if (c >= 0x80) return BAD; /* Python's str.upper() knows more than ASCII */
            if (c >= 'a' && c <= 'z') col->data.p[at + k] = (char)(c - 32);
        }
    } else {
        TRY(buf_put(&col->data, p, n));
    }
    TRY(put_valid(col, 1));
    return end_string(col);
}

static int put_string_node(Col *col, const Tape *T, int idx) {
    if (type_of(T, idx) != J_STR) return put_null(col);
    size_t len;
    const char *text = str_text(T, idx, &len);
    return put_bytes(col, text, len, col->upper);
}

static int put_i64(Col *col, int64_t v) {
    if (col->kind == K_NINT) TRY(put_valid(col, 1));
    return v ? buf_put(&col->data, &v, 8) : buf_zeros(&col->data, 8);
}

static int put_bool(Col *col, int v) {
    unsigned char b = 1;
    return v ? buf_put(&col->data, &b, 1) : buf_zeros(&col->data, 1);
}

/* Epoch seconds to microseconds as numpy rounds them (half to even), the default
 * floating-point rounding mode. */
static int put_time(Col *col, double seconds) {
    int64_t us = (int64_t)nearbyint(seconds * 1e6);
    return buf_put(&col->data, &us, 8);
}

static int put_double(Col *col, double v) { return buf_put(&col->data, &v, 8); }

static int put_i32(Col *col, int32_t v) { return v ? buf_put(&col->data, &v, 4) : buf_zeros(&col->data, 4); }

/* A value of the tape as its column holds it: absent or of another JSON type is null
 * (the types were checked against the schema before). */
static int put_node(Col *col, const Tape *T, int idx) {
    if (idx < 0 || T->nodes[idx].type == J_NULL) return put_null(col);
    switch (col->kind) {
    case K_STR: return put_string_node(col, T, idx);
    case K_BOOL: return put_bool(col, T->nodes[idx].type == J_TRUE);
    case K_NINT:
    case K_INT: {
        int64_t v;
        if (T->nodes[idx].type != J_INT || int_value(T, idx, &v)) return put_null(col);
        return put_i64(col, v);
    }
    case K_FLOAT:
    case K_TIME: {
        double v;
        if (T->nodes[idx].type != J_INT && T->nodes[idx].type != J_FLOAT) return put_null(col);
        if (num_value(T, idx, &v)) return BAD;
        return col->kind == K_TIME ? put_time(col, v) : put_double(col, v);
    }
    default: return BAD;
    }
}

/* ---------------------------------------------------------------- the scanner */

#define CACHE_SLOTS 4096
#define CACHE_MAX_LEN 48

/* Short strings met again (metadata keys, annotation values) share one Python object. */
typedef struct {
    uint64_t hash;
    size_t len;
    char text[CACHE_MAX_LEN];
    PyObject *object;
} CacheSlot;

static void cache_free(CacheSlot *cache) {
    if (!cache) return;
    for (int k = 0; k < CACHE_SLOTS; k++) Py_XDECREF(cache[k].object);
    PyMem_Free(cache);
}

static int cached_string(CacheSlot *cache, const char *text, size_t len, PyObject **out) {
    if (len > CACHE_MAX_LEN) {
        *out = PyUnicode_DecodeUTF8(text, (Py_ssize_t)len, NULL);
        return *out ? OK : ERR;
    }
    uint64_t h = 1469598103934665603ULL;
    for (size_t k = 0; k < len; k++) h = (h ^ (unsigned char)text[k]) * 1099511628211ULL;
    CacheSlot *slot = &cache[h & (CACHE_SLOTS - 1)];
    if (slot->object && slot->hash == h && slot->len == len && !memcmp(slot->text, text, len)) {
        *out = Py_NewRef(slot->object);
        return OK;
    }
    PyObject *s = PyUnicode_DecodeUTF8(text, (Py_ssize_t)len, NULL);
    if (!s) return ERR;
    Py_XSETREF(slot->object, Py_NewRef(s));
    slot->hash = h;
    slot->len = len;
    memcpy(slot->text, text, len);
    *out = s;
    return OK;
}

static int to_python(CacheSlot *cache, const Tape *T, int idx, PyObject **out, int depth);

static int scalar_to_python(CacheSlot *cache, const Tape *T, int idx, PyObject **out) {
    const Node *nd = &T->nodes[idx];
    switch (nd->type) {
    case J_NULL: *out = Py_NewRef(Py_None); return OK;
    case J_TRUE: *out = Py_NewRef(Py_True); return OK;
    case J_FALSE: *out = Py_NewRef(Py_False); return OK;
    case J_INT: {
        int64_t v;
        if (int_value(T, idx, &v)) return BAD; /* Python makes a big int */
        *out = PyLong_FromLongLong(v);
        return *out ? OK : ERR;
    }
    case J_FLOAT: {
        double v;
        if (num_value(T, idx, &v)) return BAD;
        *out = PyFloat_FromDouble(v);
        return *out ? OK : ERR;
    }
    default: {
        size_t len;
        const char *text = str_text(T, idx, &len);
        return cached_string(cache, text, len, out);
    }
    }
}

/* A JSON value as the Python object orjson would give.
 *
 * Its lists and dicts are not tracked by the cyclic garbage collector: a value read from JSON
 * is a tree, it holds no reference cycle, so the collector has nothing to find in it (CPython
 * itself untracks dicts of plain values). Tracking them made every collection during and after
 * a load walk hundreds of thousands of metadata values. A dict given a container later is
 * tracked again by CPython; a list made to contain itself would only never be freed. */
static int to_python(CacheSlot *cache, const Tape *T, int idx, PyObject **out, int depth) {
    const Node *nd = &T->nodes[idx];
    if (nd->type != J_ARR && nd->type != J_OBJ) return scalar_to_python(cache, T, idx, out);
    if (depth > MAX_DEPTH) return BAD;
    int is_obj = nd->type == J_OBJ;
    PyObject *c = is_obj ? PyDict_New() : PyList_New(nd->count);
    if (!c) return ERR;
    int i = idx + 1;
    for (uint32_t k = 0; k < nd->count; k++) {
        PyObject *key = NULL, *value = NULL;
        int rc = OK;
        if (is_obj) {
            rc = scalar_to_python(cache, T, i, &key);
            i++;
        }
        if (!rc) rc = to_python(cache, T, i, &value, depth + 1);
        if (!rc && is_obj) {
            rc = PyDict_SetItem(c, key, value) ? ERR : OK;
            Py_DECREF(value);
        } else if (!rc) {
            PyList_SET_ITEM(c, k, value);
        }
        Py_XDECREF(key);
        if (rc) {
            Py_DECREF(c);
            return rc;
        }
        i = (int)T->nodes[i].next;
    }
    PyObject_GC_UnTrack(c);
    *out = c;
    return OK;
}

/* ---------------------------------------------------------------- trace codes */

/* Each distinct trace id gets a number, in the order the ids first come: the finishing steps
 * group rows by these numbers instead of hashing the id strings once more. */
typedef struct {
    Buf text, offs;  /* the distinct ids, laid out as an Arrow large string column */
    int32_t *slots;  /* open addressing: code + 1, 0 for an empty slot */
    size_t nslots;
    int32_t count;
} TraceMap;

static uint64_t fnv1a(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t k = 0; k < n; k++) h = (h ^ (unsigned char)p[k]) * 1099511628211ULL;
    return h;
}

static const char *trace_text(const TraceMap *M, int32_t code, size_t *len) {
    const int64_t *offs = (const int64_t *)M->offs.p;
    *len = (size_t)(offs[code + 1] - offs[code]);
    return M->text.p + offs[code];
}

static void trace_place(TraceMap *M, int32_t code) {
    size_t len;
    const char *t = trace_text(M, code, &len);
    size_t mask = M->nslots - 1, i = (size_t)fnv1a(t, len) & mask;
    while (M->slots[i]) i = (i + 1) & mask;
    M->slots[i] = code + 1;
}

static int trace_code(TraceMap *M, const char *p, size_t n, int32_t *out) {
    if (2 * (size_t)M->count >= M->nslots) { /* grow: place every id again */
        size_t nslots = M->nslots ? 2 * M->nslots : 1024;
        int32_t *slots = PyMem_Calloc(nslots, sizeof(int32_t));
        if (!slots) {
            PyErr_NoMemory();
            return ERR;
        }
        PyMem_Free(M->slots);
        M->slots = slots;
        M->nslots = nslots;
        for (int32_t code = 0; code < M->count; code++) trace_place(M, code);
    }
    if (!M->offs.len) {
        int64_t zero = 0;
        TRY(buf_put(&M->offs, &zero, 8));
    }
    size_t mask = M->nslots - 1, i = (size_t)fnv1a(p, n) & mask;
    while (M->slots[i]) {
        size_t len;
        const char *t = trace_text(M, M->slots[i] - 1, &len);
        if (len == n && !memcmp(t, p, n)) {
            *out = M->slots[i] - 1;
            return OK;
        }
        i = (i + 1) & mask;
    }
    if (M->count == INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "more than 2**31 traces");
        return ERR;
    }
    TRY(buf_put(&M->text, p, n));
    int64_t end = (int64_t)M->text.len;
    TRY(buf_put(&M->offs, &end, 8));
    *out = M->count;
    M->slots[i] = ++M->count;
    return OK;
}

static void trace_map_free(TraceMap *M) {
    buf_free(&M->text);
    buf_free(&M->offs);
    PyMem_Free(M->slots);
    memset(M, 0, sizeof *M);
}

typedef struct {
    PyObject_HEAD
    Tape line, doc;
    Buf tmp; /* scratch: stack frames, sdk names */
    Buf stack;
    Field *fields;
    int nfields;
    int role[N_ROLES];
    int *vals, *xvals, *fvals; /* where an entity's, an exception's, a frame's fields are */
    Table t[N_TABLES];
    CacheSlot *cache;
    TraceMap traces;
    int64_t seq;
} Scanner;

/* Check the fields of object `obj` against field f and, with `vals`, note where each one's
 * value is (-2: given as null). BAD when a field has a type the schema does not allow or, when
 * noting, a field repeats (Python keeps only the last value, which could differ in type). */
static int walk(Scanner *S, const Tape *T, int obj, int f, int *vals, int depth) {
    if (depth > MAX_DEPTH) return BAD;
    const Field *fields = S->fields;
    int i = obj + 1;
    for (uint32_t pair = 0; pair < T->nodes[obj].count; pair++) {
        int v = i + 1, child = field_of(fields, f, T, i);
        if (child >= 0) {
            if (vals && vals[child] != -1) return BAD;
            int type = T->nodes[v].type;
            if (type == J_NULL) {
                if (vals) vals[child] = -2;
            } else {
                if (!type_allowed(T, v, fields[child].types)) return BAD;
                if (vals) vals[child] = v;
                if (type == J_OBJ && fields[child].nchildren)
                    TRY(walk(S, T, v, child, vals, depth + 1));
                else if (type == J_ARR && fields[child].item >= 0) {
                    const Field *I = &fields[fields[child].item];
                    int item = v + 1;
                    for (uint32_t k = 0; k < T->nodes[v].count; k++) {
                        if (!type_allowed(T, item, I->types)) return BAD;
                        if (T->nodes[item].type == J_OBJ && I->nchildren)
                            TRY(walk(S, T, item, fields[child].item, NULL, depth + 1));
                        item = (int)T->nodes[item].next;
                    }
                }
            }
        }
        i = (int)T->nodes[v].next;
    }
    return OK;
}

static void clear_vals(Scanner *S, int *vals) {
    for (int k = 0; k < S->nfields; k++) vals[k] = -1;
}

/* A column whose source lists fields: the first with a truthy value (else the last one, as
 * Python's `or` gives), or the truthy strings joined with a space. */
static int put_choice(Scanner *S, Col *col, const Row *r) {
    const Tape *T = r->T;
    if (col->op == OP_FIRST) {
        int chosen = -1;
        for (int a = 0; a < col->nargs; a++) {
            chosen = r->vals[col->args[a]];
            if (truthy(T, chosen)) break;
        }
        return put_node(col, T, chosen);
    }
    Buf *out = &S->tmp;
    out->len = 0;
    int any = 0;
    for (int a = 0; a < col->nargs; a++) {
        int v = r->vals[col->args[a]];
        if (!truthy(T, v)) continue;
        if (any) TRY(buf_put(out, " ", 1));
        TRY(unescape(out, T, v));
        any = 1;
    }
    return any ? put_bytes(col, out->p, out->len, col->upper) : put_null(col);
}

static int put_context(Scanner *S, Col *col, const Row *r) {
    const Tape *T = r->T;
    switch (col->args[0]) {
    case CX_TRACE_ID: return put_string_node(col, T, r->trace_id);
    case CX_SEGMENT_ID: return put_string_node(col, T, r->segment_id);
    case CX_PARENT_ID: return put_string_node(col, T, r->parent_id);
    case CX_ANCHOR: return put_string_node(col, T, r->anchor);
    case CX_ENTITY_ID: return put_string_node(col, T, r->entity_id);
    case CX_KEY: return put_string_node(col, T, r->key);
    case CX_NAMESPACE: return put_string_node(col, T, r->name_space);
    case CX_DEPTH: return put_i64(col, r->depth);
    case CX_STACK_DEPTH: return put_i64(col, r->stack_depth);
    case CX_SEQ: return col->kind == K_I32 ? put_i32(col, (int32_t)S->seq) : put_i64(col, S->seq);
    case CX_IN_PROGRESS: return put_bool(col, r->in_progress);
    case CX_STREAMED: return put_bool(col, r->streamed);
    case CX_HAS_LINKS: return put_bool(col, r->has_links);
    case CX_VALUE_TYPE: return put_bytes(col, r->value_type, strlen(r->value_type), 0);
    case CX_TRACE_CODE: {
        size_t len;
        int32_t code;
        const char *text = str_text(T, r->trace_id, &len);
        TRY(trace_code(&S->traces, text, len, &code));
        return put_i32(col, code);
    }
    case CX_TEXT:
    case CX_TOP_FRAME:
        return r->has_text ? put_bytes(col, r->text, r->text_len, 0) : put_null(col);
    case CX_VALUE: {
        PyObject *object;
        if (!S->cache && !(S->cache = PyMem_Calloc(CACHE_SLOTS, sizeof(CacheSlot)))) {
            PyErr_NoMemory();
            return ERR;
        }
        TRY(to_python(S->cache, T, r->value, &object, 0));
        return put_object(col, object);
    }
    default: return BAD;
    }
}

static int put_row(Scanner *S, int table, const Row *r) {
    Table *t = &S->t[table];
    for (int c = 0; c < t->ncols; c++) {
        Col *col = &t->cols[c];
        switch (col->op) {
        case OP_FIELD: TRY(put_node(col, r->T, r->vals[col->args[0]])); break;
        case OP_CONTEXT: TRY(put_context(S, col, r)); break;
        default: TRY(put_choice(S, col, r));
        }
    }
    t->rows++;
    return OK;
}

/* ---------------------------------------------------------------- entities */

/* Python's str() of a stack frame's part, with a default when absent. */
static int frame_part(const Tape *T, int idx, const char *dflt, Buf *out) {
    if (idx < 0) return buf_put(out, dflt, strlen(dflt));
    if (T->nodes[idx].type == J_STR) return unescape(out, T, idx);
    int64_t v;
    char digits[32];
    if (T->nodes[idx].type != J_INT || int_value(T, idx, &v)) return BAD;
    int n = snprintf(digits, sizeof digits, "%lld", (long long)v);
    return buf_put(out, digits, (size_t)n);
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

/* Annotations, metadata and exceptions of one entity (reader.py: Reader._extras). */
static int extras(Scanner *S, const Tape *T, int tid, int eid) {
    const int *E = S->vals;
    Row r;
    int a = E[S->role[R_ANNOTATIONS]];
    if (truthy(T, a)) {
        TRY(check_unique_keys(T, a));
        int i = a + 1;
        for (uint32_t k = 0; k < T->nodes[a].count; k++) {
            int v = i + 1, type = T->nodes[v].type;
            row_init(&r, T, NULL);
            r.value_type = type == J_STR                         ? "string"
                           : (type == J_TRUE || type == J_FALSE) ? "boolean"
                           : (type == J_INT || type == J_FLOAT)  ? "number"
                                                                 : NULL;
            if (!r.value_type) return BAD;
            r.trace_id = tid;
            r.entity_id = eid;
            r.key = i;
            r.value = v;
            TRY(put_row(S, T_ANN, &r));
            i = (int)T->nodes[v].next;
        }
    }
    int m = E[S->role[R_METADATA]];
    if (truthy(T, m)) {
        TRY(check_unique_keys(T, m));
        int i = m + 1;
        for (uint32_t k = 0; k < T->nodes[m].count; k++) {
            int entries = i + 1;
            row_init(&r, T, NULL);
            r.trace_id = tid;
            r.entity_id = eid;
            r.name_space = i;
            if (T->nodes[entries].type == J_OBJ) { /* a row per key */
                TRY(check_unique_keys(T, entries));
                int j = entries + 1;
                for (uint32_t e = 0; e < T->nodes[entries].count; e++) {
                    r.key = j;
                    r.value = j + 1;
                    TRY(put_row(S, T_META, &r));
                    j = (int)T->nodes[j + 1].next;
                }
            } else { /* a namespace holding a value of its own: no key */
                r.value = entries;
                TRY(put_row(S, T_META, &r));
            }
            i = (int)T->nodes[entries].next;
        }
    }
    int list = E[S->role[R_EXCEPTIONS]];
    if (type_of(T, E[S->role[R_CAUSE]]) != J_OBJ || !truthy(T, list)) return OK;
    int e = list + 1;
    for (uint32_t k = 0; k < T->nodes[list].count; k++) {
        clear_vals(S, S->xvals);
        TRY(walk(S, T, e, S->role[R_EXCEPTION], S->xvals, 0));
        row_init(&r, T, S->xvals);
        r.trace_id = tid;
        r.entity_id = eid;
        int stack = S->xvals[S->role[R_STACK]];
        r.stack_depth = type_of(T, stack) == J_ARR ? T->nodes[stack].count : 0;
        if (r.stack_depth && T->nodes[stack + 1].type == J_OBJ) {
            int *P = S->fvals;
            clear_vals(S, P);
            TRY(walk(S, T, stack + 1, S->role[R_FRAME], P, 0));
            Buf *out = &S->tmp;
            out->len = 0;
            TRY(frame_part(T, P[S->role[R_FRAME_PATH]], "?", out));
            TRY(buf_put(out, ":", 1));
            TRY(frame_part(T, P[S->role[R_FRAME_LINE]], "?", out));
            TRY(buf_put(out, " ", 1));
            TRY(frame_part(T, P[S->role[R_FRAME_LABEL]], "", out));
            rstrip(out);
            r.text = out->p;
            r.text_len = out->len;
            r.has_text = 1;
        }
        TRY(put_row(S, T_EXC, &r));
        e = (int)T->nodes[e].next;
    }
    return OK;
}

/* The checks every entity passes (reader.py: entity_error), and its fields noted in
 * S->vals; `in_progress` says whether it has no end or says so. */
static int read_entity(Scanner *S, const Tape *T, int obj, int *in_progress) {
    if (T->nodes[obj].type != J_OBJ) return BAD;
    int *E = S->vals;
    clear_vals(S, E);
    TRY(walk(S, T, obj, S->role[R_ENTITY], E, 0));
    int id = E[S->role[R_ID]], st = E[S->role[R_START]], en = E[S->role[R_END]];
    double start, end;
    if (type_of(T, id) != J_STR || T->nodes[id].len == 0) return BAD;
    if (type_of(T, E[S->role[R_NAME]]) != J_STR) return BAD;
    if (st < 0 || num_value(T, st, &start) || !(start >= 0.0 && start < 1e11)) return BAD;
    int has_end = en >= 0;
    if (has_end && (num_value(T, en, &end) || !(end >= 0.0 && end < 1e11))) return BAD;
    /* no end and not flagged in progress: Python reports it (and keeps the entity) */
    if (!has_end && !is_true(T, E[S->role[R_IN_PROGRESS]])) return BAD;
    *in_progress = !has_end || is_true(T, E[S->role[R_IN_PROGRESS]]);
    return OK;
}

typedef struct {
    int items, parent;
    int64_t depth;
} Pending;

/* Nested subsegments, in the order reader.py's Reader visits them. */
static int nested(Scanner *S, const Tape *T, int subs, int tid, int segment, int parent,
                  int64_t depth0, int anchor) {
    S->stack.len = 0;
    Pending first = {subs, parent, depth0 + 1};
    TRY(buf_put(&S->stack, &first, sizeof first));
    while (S->stack.len) {
        S->stack.len -= sizeof(Pending);
        Pending top;
        memcpy(&top, S->stack.p + S->stack.len, sizeof top);
        int child = top.items + 1;
        for (uint32_t k = 0; k < T->nodes[top.items].count; k++) {
            Row r;
            int in_progress;
            TRY(read_entity(S, T, child, &in_progress));
            row_init(&r, T, S->vals);
            r.trace_id = tid;
            r.segment_id = segment;
            r.parent_id = top.parent;
            r.depth = top.depth;
            r.anchor = anchor;
            r.in_progress = in_progress;
            TRY(put_row(S, T_SUB, &r));
            int eid = S->vals[S->role[R_ID]];
            TRY(extras(S, T, tid, eid));
            S->seq++;
            int subs2 = S->vals[S->role[R_SUBSEGMENTS]];
            if (truthy(T, subs2)) {
                Pending next = {subs2, eid, top.depth + 1};
                TRY(buf_put(&S->stack, &next, sizeof next));
            }
            child = (int)T->nodes[child].next;
        }
    }
    return OK;
}

/* One top-level document: a segment, or a subsegment sent on its own (Reader.document). */
static int add_document(Scanner *S, const Tape *T, int doc, const char *text, size_t text_len,
                        int links) {
    int in_progress;
    TRY(read_entity(S, T, doc, &in_progress));
    const int *E = S->vals;
    int tid = E[S->role[R_TRACE_ID]], eid = E[S->role[R_ID]], type = E[S->role[R_TYPE]];
    if (!valid_trace_id(T, tid)) return BAD;
    int streamed = type_of(T, type) == J_STR && text_equals(T, type, "subsegment", 10);
    Row r;
    row_init(&r, T, S->vals);
    r.trace_id = tid;
    r.in_progress = in_progress;
    if (streamed) {
        int parent = E[S->role[R_PARENT_ID]];
        if (type_of(T, parent) != J_STR || T->nodes[parent].len == 0) return BAD;
        r.parent_id = parent;
        r.depth = 1;
        r.anchor = eid;
        r.streamed = 1;
        TRY(put_row(S, T_SUB, &r));
    } else {
        TRY(put_row(S, T_SEG, &r));
    }
    TRY(extras(S, T, tid, eid));
    row_init(&r, T, NULL);
    r.trace_id = tid;
    r.entity_id = eid;
    r.in_progress = in_progress;
    r.text = text;
    r.text_len = text_len;
    r.has_text = 1;
    r.has_links = links;
    TRY(put_row(S, T_DOC, &r));
    TRY(put_row(S, T_DIDX, &r));
    S->seq++; /* the entity's number: its rows, extras and document row carry it */
    int subs = S->vals[S->role[R_SUBSEGMENTS]];
    if (truthy(T, subs)) {
        if (streamed) TRY(nested(S, T, subs, tid, -1, eid, 1, eid));
        else TRY(nested(S, T, subs, tid, eid, eid, 0, -1));
    }
    return OK;
}

/* ---------------------------------------------------------------- routing lines */

/* The keys that tell what a line is. */
enum { L_TRACES, L_SEGMENTS, L_ID_UPPER, L_FORMAT, L_VERSION, L_ID, L_SUMMARIES, L_UNPROCESSED, L_LIMIT, L_DOCUMENT, L_N };
static const char *LINE_KEYS[L_N] = {"Traces", "Segments", "Id", "format", "version", "id", "TraceSummaries", "UnprocessedTraceIds", "LimitExceeded", "Document"};

/* For each key of LINE_KEYS, the value in object `obj` (the last one, as in a Python dict). */
static void line_fields(const Tape *T, int obj, int *out) {
    for (int k = 0; k < L_N; k++) out[k] = -1;
    int i = obj + 1;
    for (uint32_t pair = 0; pair < T->nodes[obj].count; pair++) {
        for (int k = 0; k < L_N; k++) {
            if (text_equals(T, i, LINE_KEYS[k], strlen(LINE_KEYS[k]))) out[k] = i + 1;
        }
        i = (int)T->nodes[i + 1].next;
    }
}

/* One trace of a BatchGetTraces response: its Segments' Documents (reader.py: Reader.trace). */
static int add_trace(Scanner *S, const Tape *T, int trace) {
    if (T->nodes[trace].type != J_OBJ) return BAD;
    int G[L_N];
    line_fields(T, trace, G);
    int segments = G[L_SEGMENTS];
    if (type_of(T, segments) != J_ARR || is_true(T, G[L_LIMIT])) return BAD;
    int s = segments + 1;
    for (uint32_t j = 0; j < T->nodes[segments].count; j++) {
        if (T->nodes[s].type != J_OBJ) return BAD;
        int D[L_N];
        line_fields(T, s, D);
        int document = D[L_DOCUMENT];
        if (type_of(T, document) != J_STR) return BAD; /* an object would need Python's dumps */
        size_t len; /* the Document was decoded while the line was parsed */
        const char *text = str_text(T, document, &len);
        TRY(tape_parse(&S->doc, text, len));
        TRY(add_document(S, &S->doc, 0, text, len, S->doc.links));
        s = (int)T->nodes[s].next;
    }
    return OK;
}

/* A JSON value, routed as reader.py's Reader.accept routes it; `text` is its raw text. */
static int route(Scanner *S, const Tape *T, int idx, const char *text, size_t len, int links) {
    int type = T->nodes[idx].type;
    if (type == J_ARR) {
        int item = idx + 1;
        for (uint32_t k = 0; k < T->nodes[idx].count; k++) {
            const char *raw = (const char *)T->s + T->nodes[item].start;
            size_t n = T->nodes[item].len;
            if (T->nodes[item].type != J_OBJ && T->nodes[item].type != J_ARR) return BAD;
            TRY(route(S, T, item, raw, n, has_links_text(raw, n)));
            item = (int)T->nodes[item].next;
        }
        return OK;
    }
    if (type != J_OBJ) return BAD;
    int L[L_N];
    line_fields(T, idx, L);
    if (L[L_TRACES] >= 0) {
        int traces = L[L_TRACES], unprocessed = L[L_UNPROCESSED];
        if (type_of(T, traces) != J_ARR) return BAD;
        if (truthy(T, unprocessed) && T->nodes[unprocessed].type == J_ARR) return BAD;
        int t = traces + 1;
        for (uint32_t k = 0; k < T->nodes[traces].count; k++) {
            TRY(add_trace(S, T, t));
            t = (int)T->nodes[t].next;
        }
        return OK;
    }
    if (L[L_SEGMENTS] >= 0 && L[L_ID_UPPER] >= 0) return add_trace(S, T, idx);
    if (L[L_FORMAT] >= 0 && L[L_VERSION] >= 0 && L[L_ID] < 0) {
        /* the daemon header: nothing to load when it is exactly what SDKs send */
        int f = L[L_FORMAT], v = L[L_VERSION];
        int64_t version;
        size_t n;
        if (type_of(T, f) != J_STR) return BAD;
        const char *fmt = str_text(T, f, &n);
        if (!ascii_lower_equals(fmt, n, "json")) return BAD;
        if (type_of(T, v) != J_INT || int_value(T, v, &version) || version != 1) return BAD;
        return OK;
    }
    if (L[L_SUMMARIES] >= 0) return BAD;
    return add_document(S, T, idx, text, len, links);
}

static int is_json_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int is_bytes_space(unsigned char c) { return is_json_space(c) || c == 0x0b || c == 0x0c; }

/* One line of input (or the input's one value). A top-level array is read an element at a
 * time, so a long line of documents never makes a long tape. */
static int add_line(Scanner *S, const char *s, size_t n, int mode) {
    size_t a = 0, b = n;
    while (a < b && is_bytes_space((unsigned char)s[a])) a++;
    if (a == b) return mode == M_LINES ? OK : BAD; /* Python skips a blank line */
    a = 0; /* JSON allows only space, tab, CR and LF around a value */
    while (a < b && is_json_space((unsigned char)s[a])) a++;
    while (b > a && is_json_space((unsigned char)s[b - 1])) b--;
    Tape *T = &S->line;
    if (mode == M_DOCUMENT) {
        TRY(tape_parse(T, s + a, b - a));
        return add_document(S, T, 0, s, n, T->links);
    }
    if (s[a] != '[') {
        TRY(tape_parse(T, s + a, b - a));
        return route(S, T, 0, s + a, b - a, T->links);
    }
    if (b - a > UINT32_MAX) return BAD;
    tape_start(T, s + a, b - a);
    T->i = 1;
    skip_ws(T);
    if (T->i < T->n && T->s[T->i] == ']') {
        T->i++;
    } else {
        for (;;) {
            size_t from = T->i;
            T->nn = 0;
            T->dec.len = 0;
            TRY(parse_value(T, 1));
            const char *raw = s + a + from;
            size_t len = T->i - from;
            if (T->nodes[0].type != J_OBJ && T->nodes[0].type != J_ARR) return BAD;
            TRY(route(S, T, 0, raw, len, has_links_text(raw, len)));
            skip_ws(T);
            if (T->i >= T->n) return BAD;
            if (T->s[T->i] == ',') {
                T->i++;
                skip_ws(T);
                continue;
            }
            if (T->s[T->i] != ']') return BAD;
            T->i++;
            break;
        }
    }
    skip_ws(T);
    return T->i == T->n ? OK : BAD;
}

/* ---------------------------------------------------------------- undoing a line */

typedef struct {
    size_t rows[N_TABLES];
    int64_t seq;
} Mark;

static void mark(Scanner *S, Mark *m) {
    for (int t = 0; t < N_TABLES; t++) m->rows[t] = S->t[t].rows;
    m->seq = S->seq;
}

static int table_truncate(Table *t, size_t rows) {
    for (int c = 0; c < t->ncols; c++) {
        Col *col = &t->cols[c];
        switch (col->kind) {
        case K_STR:
            col->valid.len = rows;
            col->offs.len = (rows + 1) * 8;
            col->data.len = (size_t)((int64_t *)col->offs.p)[rows];
            break;
        case K_BOOL: col->data.len = rows; break;
        case K_I32: col->data.len = rows * 4; break;
        case K_NINT:
            col->valid.len = rows;
            col->data.len = rows * 8;
            break;
        case K_OBJ:
            while (col->data.len > rows * sizeof(PyObject *)) {
                col->data.len -= sizeof(PyObject *);
                PyObject *object;
                memcpy(&object, col->data.p + col->data.len, sizeof object);
                Py_DECREF(object);
            }
            break;
        default: col->data.len = rows * 8;
        }
    }
    t->rows = rows;
    return OK;
}

/* Undo what was added since the mark; an exception that is set stays set. */
static int rollback(Scanner *S, const Mark *m) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    int rc = OK;
    for (int t = 0; t < N_TABLES; t++) {
        if (table_truncate(&S->t[t], m->rows[t])) rc = ERR;
    }
    S->seq = m->seq;
    if (type) {
        if (rc) PyErr_Clear();
        PyErr_Restore(type, value, tb);
        return ERR;
    }
    return rc;
}

/* ---------------------------------------------------------------- building the scanner */

/* Let go of the objects an object column holds. */
static void table_truncate_objects(Col *col) {
    for (size_t at = 0; at + sizeof(PyObject *) <= col->data.len; at += sizeof(PyObject *)) {
        PyObject *object;
        memcpy(&object, col->data.p + at, sizeof object);
        Py_DECREF(object);
    }
    col->data.len = 0;
}

static void table_free(Table *t) {
    if (!t->cols) return;
    for (int c = 0; c < t->ncols; c++) {
        if (t->cols[c].kind == K_OBJ) table_truncate_objects(&t->cols[c]);
        buf_free(&t->cols[c].data);
        buf_free(&t->cols[c].offs);
        buf_free(&t->cols[c].valid);
    }
    PyMem_Free(t->cols);
    t->cols = NULL;
    Py_CLEAR(t->name);
}

/* Empty a column: after its buffers were handed over, or to start again. */
static int col_reset(Col *col) {
    col->data.len = col->valid.len = col->offs.len = 0;
    if (col->kind == K_STR) TRY(buf_zeros(&col->offs, 8));
    return OK;
}

static int index_of(const char *const *names, int n, PyObject *name) {
    const char *text = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    if (!text) return -1;
    for (int k = 0; k < n; k++) {
        if (strcmp(names[k], text) == 0) return k;
    }
    return -1;
}

static int init_fields(Scanner *S, PyObject *fields) {
    PyObject *seq = PySequence_Fast(fields, "fields must be a sequence");
    if (!seq) return ERR;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    S->fields = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Field));
    S->vals = PyMem_Calloc((size_t)(3 * (n ? n : 1)), sizeof(int));
    if (!S->fields || !S->vals) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return ERR;
    }
    S->xvals = S->vals + n;
    S->fvals = S->vals + 2 * n;
    S->nfields = (int)n;
    for (Py_ssize_t k = 0; k < n; k++) {
        Field *F = &S->fields[k];
        int parent, types;
        PyObject *key;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, k), "iOi", &parent, &key, &types)) goto fail;
        F->parent = parent;
        F->types = types;
        F->item = -1;
        if (parent >= k || (parent < 0 && key != Py_None)) {
            PyErr_Format(PyExc_ValueError, "field %zd: its parent %d must come before it", k, parent);
            goto fail;
        }
        if (key != Py_None) {
            Py_ssize_t len;
            const char *text = PyUnicode_AsUTF8AndSize(key, &len);
            if (!text) goto fail;
            F->key = PyMem_Malloc((size_t)len + 1);
            if (!F->key) {
                PyErr_NoMemory();
                goto fail;
            }
            memcpy(F->key, text, (size_t)len + 1);
            F->len = (size_t)len;
            Field *P = &S->fields[parent];
            if (P->nchildren == MAX_CHILDREN || !len || (unsigned char)text[0] >= 128) {
                PyErr_Format(PyExc_ValueError, "field %R: at most %d ASCII-named fields per object", key, MAX_CHILDREN);
                goto fail;
            }
            P->by_first[(unsigned char)text[0]] |= (uint64_t)1 << P->nchildren;
            P->children[P->nchildren++] = (int)k;
        } else if (parent >= 0) {
            S->fields[parent].item = (int)k;
        }
    }
    Py_DECREF(seq);
    return OK;
fail:
    Py_DECREF(seq);
    return ERR;
}

static int init_roles(Scanner *S, PyObject *roles) {
    for (int r = 0; r < N_ROLES; r++) {
        PyObject *value = PyMapping_GetItemString(roles, ROLE_NAMES[r]);
        if (!value) return ERR;
        long k = PyLong_AsLong(value);
        Py_DECREF(value);
        if (k == -1 && PyErr_Occurred()) return ERR;
        if (k < 0 || k >= S->nfields) {
            PyErr_Format(PyExc_ValueError, "role %s: no field %ld", ROLE_NAMES[r], k);
            return ERR;
        }
        S->role[r] = (int)k;
    }
    return OK;
}

static int init_table(Scanner *S, int t, PyObject *columns) {
    Table *tab = &S->t[t];
    tab->name = PyUnicode_FromString(TABLE_NAMES[t]);
    PyObject *seq = PySequence_Fast(columns, "a table must be a sequence of columns");
    if (!tab->name || !seq) {
        Py_XDECREF(seq);
        return ERR;
    }
    tab->ncols = (int)PySequence_Fast_GET_SIZE(seq);
    tab->cols = PyMem_Calloc((size_t)(tab->ncols ? tab->ncols : 1), sizeof(Col));
    if (!tab->cols) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return ERR;
    }
    for (int c = 0; c < tab->ncols; c++) {
        Col *col = &tab->cols[c];
        PyObject *kind, *args;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, c), "UiO!p", &kind, &col->op, &PyTuple_Type, &args, &col->upper))
            goto fail;
        col->kind = index_of(KIND_NAMES, N_KINDS, kind);
        col->nargs = (int)PyTuple_GET_SIZE(args);
        if (col->kind < 0 || col->op < OP_FIELD || col->op > OP_CONTEXT || col->nargs < 1 || col->nargs > MAX_ARGS) {
            PyErr_Format(PyExc_ValueError, "%s column %d: unknown kind %R or source", TABLE_NAMES[t], c, kind);
            goto fail;
        }
        for (int a = 0; a < col->nargs; a++) {
            long v = PyLong_AsLong(PyTuple_GET_ITEM(args, a));
            if (v == -1 && PyErr_Occurred()) goto fail;
            /* a context's second argument is a column of the row (@trace_code: its trace id) */
            int limit = col->op != OP_CONTEXT ? S->nfields : a == 0 ? N_CONTEXTS : tab->ncols;
            if (v < 0 || v >= limit) {
                PyErr_Format(PyExc_ValueError, "%s column %d: no field or context %ld", TABLE_NAMES[t], c, v);
                goto fail;
            }
            col->args[a] = (int)v;
        }
        if (col->op == OP_CONTEXT && !(CONTEXT_KINDS[col->args[0]] & KB(col->kind))) {
            PyErr_Format(PyExc_ValueError, "%s column %d: @%s cannot fill a %s column", TABLE_NAMES[t], c,
                         CONTEXT_NAMES[col->args[0]], KIND_NAMES[col->kind]);
            goto fail;
        }
        if (col->kind == K_OBJ && col->op != OP_CONTEXT) {
            PyErr_Format(PyExc_ValueError, "%s column %d: only @value fills an object column", TABLE_NAMES[t], c);
            goto fail;
        }
        if (col_reset(col)) goto fail;
    }
    Py_DECREF(seq);
    return OK;
fail:
    Py_DECREF(seq);
    return ERR;
}

static void Scanner_dealloc(Scanner *S) {
    PyMem_Free(S->line.nodes);
    PyMem_Free(S->doc.nodes);
    buf_free(&S->line.dec);
    buf_free(&S->doc.dec);
    buf_free(&S->tmp);
    buf_free(&S->stack);
    for (int t = 0; t < N_TABLES; t++) table_free(&S->t[t]);
    trace_map_free(&S->traces);
    if (S->fields) {
        for (int k = 0; k < S->nfields; k++) PyMem_Free(S->fields[k].key);
    }
    PyMem_Free(S->fields);
    PyMem_Free(S->vals);
    cache_free(S->cache);
    Py_TYPE(S)->tp_free((PyObject *)S);
}

static PyObject *Scanner_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"fields", "roles", "tables", NULL};
    PyObject *fields, *roles, *tables;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO", keywords, &fields, &roles, &tables)) return NULL;
    Scanner *S = (Scanner *)type->tp_alloc(type, 0);
    if (!S) return NULL;
    if (init_fields(S, fields) || init_roles(S, roles)) goto fail;
    for (int t = 0; t < N_TABLES; t++) {
        PyObject *columns = PyMapping_GetItemString(tables, TABLE_NAMES[t]);
        if (!columns) goto fail;
        int rc = init_table(S, t, columns);
        Py_DECREF(columns);
        if (rc) goto fail;
    }
    return (PyObject *)S;
fail:
    Py_DECREF(S);
    return NULL;
}

/* ---------------------------------------------------------------- reading */

/* The string bytes a table holds (the documents' text, mostly). */
static size_t text_bytes(const Table *t) {
    size_t n = 0;
    for (int c = 0; c < t->ncols; c++) {
        if (t->cols[c].kind == K_STR) n += t->cols[c].data.len;
    }
    return n;
}

static PyObject *Scanner_scan(Scanner *S, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, line, limit;
    long long seq;
    int mode = M_LINES;
    if (!PyArg_ParseTuple(args, "y*nnLn|i", &view, &pos, &line, &seq, &limit, &mode)) return NULL;
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
    /* a value or a document is the whole data, read even when empty (an empty Document is a
     * problem for Python to report) */
    int once = mode != M_LINES && p == 0;
    while (p < n || once) {
        const char *eol = mode != M_LINES ? NULL : memchr(data + p, '\n', n - p);
        size_t end = eol ? (size_t)(eol - data) + 1 : n;
        once = 0;
        Mark m;
        mark(S, &m);
        int rc = add_line(S, data + p, end - p, mode);
        if (rc != OK) {
            if (rollback(S, &m) || rc == ERR) {
                PyBuffer_Release(&view);
                return NULL;
            }
            status = FALLBACK;
            break;
        }
        p = end;
        line++;
        if (text_bytes(&S->t[T_DOC]) >= (size_t)limit) {
            status = FULL;
            break;
        }
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("innL", status, (Py_ssize_t)p, line, (long long)S->seq);
}

/* One value from Python, as column `col` holds it. */
static int put_python(Col *col, PyObject *v) {
    if (col->kind == K_OBJ) return put_object(col, Py_NewRef(v));
    if (v == Py_None) return put_null(col);
    switch (col->kind) {
    case K_STR: {
        if (PyUnicode_Check(v)) {
            Py_ssize_t len;
            const char *text = PyUnicode_AsUTF8AndSize(v, &len);
            return text ? put_bytes(col, text, (size_t)len, 0) : ERR;
        }
        Py_buffer view;
        if (PyObject_GetBuffer(v, &view, PyBUF_SIMPLE)) return ERR;
        int rc = put_bytes(col, view.buf, (size_t)view.len, 0);
        PyBuffer_Release(&view);
        return rc;
    }
    case K_BOOL: {
        int truth = PyObject_IsTrue(v);
        return truth < 0 ? ERR : put_bool(col, truth);
    }
    case K_FLOAT: {
        double d = PyFloat_AsDouble(v);
        return d == -1.0 && PyErr_Occurred() ? ERR : put_double(col, d);
    }
    default: { /* the integers, and times in microseconds */
        long long i = PyLong_AsLongLong(v);
        if (i == -1 && PyErr_Occurred()) return ERR;
        if (col->kind == K_I32) {
            if (i < INT32_MIN || i > INT32_MAX) {
                PyErr_SetString(PyExc_OverflowError, "a value beyond a 32-bit column");
                return ERR;
            }
            return put_i32(col, (int32_t)i);
        }
        return col->kind == K_TIME ? buf_put(&col->data, &i, 8) : put_i64(col, (int64_t)i);
    }
    }
}

/* The code of a trace id given by Python (a str or bytes). */
static int put_python_trace_code(Scanner *S, Col *col, PyObject *v) {
    Py_ssize_t len;
    const char *text;
    if (PyUnicode_Check(v)) {
        text = PyUnicode_AsUTF8AndSize(v, &len);
        if (!text) return ERR;
    } else if (PyBytes_Check(v)) {
        text = PyBytes_AS_STRING(v);
        len = PyBytes_GET_SIZE(v);
    } else {
        PyErr_Format(PyExc_TypeError, "a trace id must be text, not %R", v);
        return ERR;
    }
    int32_t code;
    TRY(trace_code(&S->traces, text, (size_t)len, &code));
    return put_i32(col, code);
}

static int table_arg(PyObject *name) {
    int t = index_of(TABLE_NAMES, N_TABLES, name);
    if (t < 0) PyErr_Format(PyExc_ValueError, "no table %R", name);
    return t;
}

static PyObject *Scanner_append(Scanner *S, PyObject *args) {
    PyObject *name, *row;
    if (!PyArg_ParseTuple(args, "UO!", &name, &PyTuple_Type, &row)) return NULL;
    int t = table_arg(name);
    if (t < 0) return NULL;
    Table *tab = &S->t[t];
    if (PyTuple_GET_SIZE(row) != tab->ncols) {
        PyErr_Format(PyExc_ValueError, "a %s row has %d values, not %zd", TABLE_NAMES[t], tab->ncols, PyTuple_GET_SIZE(row));
        return NULL;
    }
    Mark m;
    mark(S, &m);
    for (int c = 0; c < tab->ncols; c++) {
        Col *col = &tab->cols[c];
        int rc;
        if (col->op == OP_CONTEXT && col->args[0] == CX_TRACE_CODE) {
            rc = put_python_trace_code(S, col, PyTuple_GET_ITEM(row, col->args[1]));
        } else {
            rc = put_python(col, PyTuple_GET_ITEM(row, c));
        }
        if (rc) {
            rollback(S, &m);
            return NULL;
        }
    }
    tab->rows++;
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- handing over */

/* Memory the scanner filled, handed to Python without a copy (numpy and Arrow wrap it). */
typedef struct {
    PyObject_HEAD
    Buf buf;
} Owned;

static void Owned_dealloc(Owned *o) {
    buf_free(&o->buf);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

static int Owned_getbuffer(Owned *o, Py_buffer *view, int flags) {
    static char empty[8];
    char *p = o->buf.p ? o->buf.p : empty;
    return PyBuffer_FillInfo(view, (PyObject *)o, p, (Py_ssize_t)o->buf.len, 0, flags);
}

static PyBufferProcs Owned_as_buffer = {(getbufferproc)Owned_getbuffer, NULL};

static PyTypeObject OwnedType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "xraykit.io._scan.Buffer",
    .tp_basicsize = sizeof(Owned),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Bytes the scanner wrote, owned by this object.",
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
    memset(b, 0, sizeof *b);
    return (PyObject *)o;
}

/* One bit per row from one byte per row (Arrow's validity bitmap). */
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

/* A column for Python (columns.py reads these by kind):
 *   str: (rows, nulls, validity bitmap or None, int64 offsets, bytes)
 *   Int64: (rows, int64 values, mask: one byte per row, 1 where missing)
 *   object: (rows, list); the others: (rows, values). */
static PyObject *column_tuple(Col *col, size_t rows) {
    switch (col->kind) {
    case K_STR: {
        Py_ssize_t nulls = 0;
        PyObject *validity = bitmap(&col->valid, rows, &nulls);
        if (!validity) return NULL;
        buf_free(&col->valid); /* a byte per row, now a bit per row */
        if (!nulls) Py_SETREF(validity, Py_NewRef(Py_None));
        return Py_BuildValue("nnNNN", (Py_ssize_t)rows, nulls, validity, hand_over(&col->offs), hand_over(&col->data));
    }
    case K_NINT:
        for (size_t r = 0; r < rows; r++) col->valid.p[r] = !col->valid.p[r];
        return Py_BuildValue("nNN", (Py_ssize_t)rows, hand_over(&col->data), hand_over(&col->valid));
    case K_OBJ: { /* the list takes the column's references */
        PyObject *list = PyList_New((Py_ssize_t)rows);
        if (!list) return NULL;
        for (size_t r = 0; r < rows; r++) {
            PyObject *object;
            memcpy(&object, col->data.p + r * sizeof object, sizeof object);
            PyList_SET_ITEM(list, (Py_ssize_t)r, object);
        }
        buf_free(&col->data); /* the list holds the references now */
        return Py_BuildValue("nN", (Py_ssize_t)rows, list);
    }
    default: return Py_BuildValue("nN", (Py_ssize_t)rows, hand_over(&col->data));
    }
}

/* take(everything=True): the tables built so far, {name: [column, ...]}; take(False) takes
 * only the documents (their text is compressed as it comes, while the other tables grow
 * until the end, each column one buffer). What was taken starts empty again. */
static PyObject *Scanner_take(Scanner *S, PyObject *args) {
    int everything = 1;
    if (!PyArg_ParseTuple(args, "|p", &everything)) return NULL;
    PyObject *out = PyDict_New();
    if (!out) return NULL;
    for (int t = 0; t < N_TABLES; t++) {
        if (!everything && t != T_DOC) continue;
        Table *tab = &S->t[t];
        PyObject *cols = PyList_New(tab->ncols);
        if (!cols) goto fail;
        for (int c = 0; c < tab->ncols; c++) {
            if (tab->rows == 0 && tab->cols[c].kind == K_STR && !tab->cols[c].offs.len && buf_zeros(&tab->cols[c].offs, 8)) {
                Py_DECREF(cols);
                goto fail;
            }
            PyObject *col = column_tuple(&tab->cols[c], tab->rows);
            if (!col || col_reset(&tab->cols[c])) {
                Py_XDECREF(col);
                Py_DECREF(cols);
                goto fail;
            }
            PyList_SET_ITEM(cols, c, col);
        }
        tab->rows = 0;
        int rc = PyDict_SetItem(out, tab->name, cols);
        Py_DECREF(cols);
        if (rc) goto fail;
    }
    if (everything) { /* the distinct trace ids, numbered by the rows' trace codes */
        TraceMap *M = &S->traces;
        if (!M->offs.len) {
            int64_t zero = 0;
            if (buf_put(&M->offs, &zero, 8)) goto fail;
        }
        PyObject *ids = Py_BuildValue("nnONN", (Py_ssize_t)M->count, (Py_ssize_t)0, Py_None,
                                      hand_over(&M->offs), hand_over(&M->text));
        PyMem_Free(M->slots);
        memset(M, 0, sizeof *M);
        /* a load ends with a take of everything: what served reading goes now, not after the
         * frames are finished (a load's peak memory) */
        cache_free(S->cache);
        S->cache = NULL; /* made again when a value is read */
        PyMem_Free(S->line.nodes);
        PyMem_Free(S->doc.nodes);
        S->line.nodes = S->doc.nodes = NULL;
        S->line.cap = S->doc.cap = S->line.nn = S->doc.nn = 0;
        buf_free(&S->line.dec);
        buf_free(&S->doc.dec);
        buf_free(&S->tmp);
        buf_free(&S->stack);
        int rc = ids ? PyDict_SetItemString(out, "trace_ids", ids) : -1;
        Py_XDECREF(ids);
        if (rc) goto fail;
    }
    return out;
fail:
    /* out of memory part-way: start empty rather than keep half-handed-over tables */
    for (int t = 0; t < N_TABLES; t++) {
        for (int c = 0; c < S->t[t].ncols; c++) {
            Col *col = &S->t[t].cols[c];
            if (col->kind == K_OBJ) table_truncate_objects(col);
            buf_free(&col->data);
            buf_free(&col->offs);
            buf_free(&col->valid);
            if (col_reset(col)) PyErr_Clear();
        }
        S->t[t].rows = 0;
    }
    Py_DECREF(out);
    return NULL;
}

static PyObject *Scanner_pending(Scanner *S, PyObject *unused) {
    (void)unused;
    size_t rows = 0;
    for (int t = 0; t < N_TABLES; t++) rows += S->t[t].rows;
    return PyLong_FromSize_t(rows);
}

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)Scanner_scan, METH_VARARGS,
     "scan(data, pos, line, seq, limit, mode=LINES) -> (status, pos, line, seq)"},
    {"append", (PyCFunction)Scanner_append, METH_VARARGS,
     "append(table, row): add a row Python read (one value per column)"},
    {"take", (PyCFunction)Scanner_take, METH_VARARGS,
     "take(everything=True) -> the tables built so far (only the documents when everything "
     "is false); what was taken starts empty again"},
    {"pending", (PyCFunction)Scanner_pending, METH_NOARGS, "rows waiting to be taken"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "xraykit.io._scan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Reads JSON lines of X-Ray documents into column buffers (see xraykit/io/columns.py).",
    .tp_new = Scanner_new,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
};

/* json_values(data) -> list: the elements of a JSON array, as orjson would give them (their
 * containers untracked, see to_python). ValueError for anything it does not read exactly as
 * orjson would (integers beyond 64 bits, deeper nesting, invalid JSON): read it with orjson. */
static PyObject *json_values(PyObject *module, PyObject *arg) {
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE)) return NULL;
    Tape T;
    memset(&T, 0, sizeof T);
    CacheSlot *cache = PyMem_Calloc(CACHE_SLOTS, sizeof(CacheSlot));
    PyObject *out = PyList_New(0);
    int rc = (!cache || !out) ? ERR : OK;
    if (!cache) PyErr_NoMemory();
    if (!rc && (size_t)view.len > UINT32_MAX) rc = BAD;
    if (!rc) {
        tape_start(&T, view.buf, (size_t)view.len);
        skip_ws(&T);
        if (T.i >= T.n || T.s[T.i] != '[') rc = BAD;
        else {
            T.i++;
            skip_ws(&T);
        }
    }
    while (!rc) {
        if (T.i < T.n && T.s[T.i] == ']') {
            T.i++;
            skip_ws(&T);
            if (T.i != T.n) rc = BAD;
            break;
        }
        T.nn = 0;
        T.dec.len = 0;
        PyObject *value = NULL;
        rc = parse_value(&T, 1);
        if (!rc) rc = to_python(cache, &T, 0, &value, 1);
        if (!rc) {
            rc = PyList_Append(out, value) ? ERR : OK;
            Py_DECREF(value);
        }
        if (rc) break;
        skip_ws(&T);
        if (T.i < T.n && T.s[T.i] == ',') {
            T.i++;
            skip_ws(&T);
            if (T.i < T.n && T.s[T.i] == ']') rc = BAD; /* a trailing comma */
        } else if (!(T.i < T.n && T.s[T.i] == ']')) {
            rc = BAD;
        }
    }
    PyBuffer_Release(&view);
    PyMem_Free(T.nodes);
    buf_free(&T.dec);
    cache_free(cache);
    if (rc) {
        Py_XDECREF(out);
        if (rc == BAD) PyErr_SetString(PyExc_ValueError, "not a JSON array this reader reads exactly as orjson");
        return NULL;
    }
    return out;
}

/* ---------------------------------------------------------------- entity ids */

/* A column of ids: trace codes (int32), and the ids as an Arrow large string column. */
typedef struct {
    Py_buffer codes, offsets, data, validity;
    Py_ssize_t n;
    int has_validity;
} Ids;

static void ids_release(Ids *x) {
    if (x->codes.obj) PyBuffer_Release(&x->codes);
    if (x->offsets.obj) PyBuffer_Release(&x->offsets);
    if (x->data.obj) PyBuffer_Release(&x->data);
    if (x->validity.obj) PyBuffer_Release(&x->validity);
}

static int ids_get(PyObject *spec, Ids *x) {
    PyObject *codes, *offsets, *data, *validity;
    memset(x, 0, sizeof *x);
    if (!PyArg_ParseTuple(spec, "nOOOO", &x->n, &codes, &offsets, &data, &validity)) return ERR;
    if (PyObject_GetBuffer(codes, &x->codes, PyBUF_SIMPLE) || PyObject_GetBuffer(offsets, &x->offsets, PyBUF_SIMPLE) ||
        PyObject_GetBuffer(data, &x->data, PyBUF_SIMPLE))
        return ERR;
    if (validity != Py_None) {
        if (PyObject_GetBuffer(validity, &x->validity, PyBUF_SIMPLE)) return ERR;
        x->has_validity = 1;
    }
    if (x->n < 0 || (size_t)x->codes.len < (size_t)x->n * 4 || (size_t)x->offsets.len < ((size_t)x->n + 1) * 8 ||
        (x->has_validity && (size_t)x->validity.len * 8 < (size_t)x->n)) {
        PyErr_SetString(PyExc_ValueError, "a column of ids is shorter than its rows");
        return ERR;
    }
    const int64_t *o = x->offsets.buf;
    for (Py_ssize_t r = 0; r < x->n; r++) { /* offsets within the data: nothing read out of it */
        if (o[r] < 0 || o[r] > o[r + 1] || o[r + 1] > x->data.len) {
            PyErr_SetString(PyExc_ValueError, "string offsets outside their data");
            return ERR;
        }
    }
    return OK;
}

static inline int id_at(const Ids *x, Py_ssize_t r, const char **p, size_t *len, int32_t *code) {
    if (x->has_validity && !(((const unsigned char *)x->validity.buf)[r >> 3] >> (r & 7) & 1)) return 0;
    const int64_t *o = x->offsets.buf;
    *p = (const char *)x->data.buf + o[r];
    *len = (size_t)(o[r + 1] - o[r]);
    *code = ((const int32_t *)x->codes.buf)[r];
    return 1;
}

static inline uint64_t id_hash(const char *p, size_t len, int32_t code) {
    return fnv1a(p, len) ^ ((uint64_t)(uint32_t)code * 0x9E3779B97F4A7C15ULL);
}

/* entity_index(segment_ids, subsegment_ids, parent_ids) -> (segments repeat an id,
 * subsegments repeat an id, whether each segment's parent is an entity of its trace).
 * Each argument is (rows, trace codes, offsets, data, validity or None): the buffers of an int32
 * column and of an Arrow large string column. An id counts within its trace; a repeat within
 * segments or within subsegments is what duplicates are; the caller may be any entity. */
static PyObject *entity_index(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *a, *b, *c;
    if (!PyArg_ParseTuple(args, "OOO", &a, &b, &c)) return NULL;
    Ids seg, sub, parent;
    memset(&seg, 0, sizeof seg);
    memset(&sub, 0, sizeof sub);
    memset(&parent, 0, sizeof parent);
    PyObject *out = NULL, *inside = NULL;
    uint32_t *slots = NULL;
    Buf table; /* an anonymous mapping when large: its memory goes back at once when done */
    memset(&table, 0, sizeof table);
    if (ids_get(a, &seg) || ids_get(b, &sub) || ids_get(c, &parent)) goto done;
    if (parent.n != seg.n) {
        PyErr_SetString(PyExc_ValueError, "one parent id per segment");
        goto done;
    }
    size_t rows = (size_t)seg.n + (size_t)sub.n, nslots = 1024;
    while (nslots < 2 * rows) nslots *= 2;
    if (rows >= UINT32_MAX / 2) {
        PyErr_SetString(PyExc_OverflowError, "too many entities");
        goto done;
    }
    if (buf_zeros(&table, nslots * sizeof(uint32_t))) goto done; /* row + 1; 0: empty */
    slots = (uint32_t *)table.p;
    inside = PyBytes_FromStringAndSize(NULL, seg.n);
    if (!inside) goto done;
    size_t mask = nslots - 1;
    int repeats[2] = {0, 0};
    for (size_t row = 0; row < rows; row++) {
        const Ids *x = row < (size_t)seg.n ? &seg : &sub;
        Py_ssize_t r = row < (size_t)seg.n ? (Py_ssize_t)row : (Py_ssize_t)(row - (size_t)seg.n);
        const char *p;
        size_t len;
        int32_t code;
        if (!id_at(x, r, &p, &len, &code)) continue;
        size_t i = (size_t)id_hash(p, len, code) & mask;
        int placed = 0;
        while (slots[i]) {
            size_t other = slots[i] - 1;
            const Ids *y = other < (size_t)seg.n ? &seg : &sub;
            Py_ssize_t s = other < (size_t)seg.n ? (Py_ssize_t)other : (Py_ssize_t)(other - (size_t)seg.n);
            const char *q = NULL;
            size_t qlen = 0;
            int32_t qcode = -1;
            id_at(y, s, &q, &qlen, &qcode);
            if (qcode == code && qlen == len && !memcmp(p, q, len)) {
                if (x == y) repeats[x == &sub] = 1;
                placed = 1; /* the first row of an id stands for it */
                break;
            }
            i = (i + 1) & mask;
        }
        if (!placed) slots[i] = (uint32_t)row + 1;
    }
    char *hit = PyBytes_AS_STRING(inside);
    for (Py_ssize_t r = 0; r < seg.n; r++) {
        const char *p;
        size_t len;
        int32_t code;
        hit[r] = 0;
        if (!id_at(&parent, r, &p, &len, &code)) continue;
        size_t i = (size_t)id_hash(p, len, code) & mask;
        while (slots[i]) {
            size_t other = slots[i] - 1;
            const Ids *y = other < (size_t)seg.n ? &seg : &sub;
            Py_ssize_t s = other < (size_t)seg.n ? (Py_ssize_t)other : (Py_ssize_t)(other - (size_t)seg.n);
            const char *q = NULL;
            size_t qlen = 0;
            int32_t qcode = -1;
            id_at(y, s, &q, &qlen, &qcode);
            if (qcode == code && qlen == len && !memcmp(p, q, len)) {
                hit[r] = 1;
                break;
            }
            i = (i + 1) & mask;
        }
    }
    out = Py_BuildValue("OON", repeats[0] ? Py_True : Py_False, repeats[1] ? Py_True : Py_False, inside);
    inside = NULL;
done:
    ids_release(&seg);
    ids_release(&sub);
    ids_release(&parent);
    buf_free(&table);
    Py_XDECREF(inside);
    return out;
}

/* ---------------------------------------------------------------- OTLP/JSON spans */

#include "_scan_otlp.h"

static PyMethodDef module_methods[] = {
    {"json_values", (PyCFunction)json_values, METH_O, "json_values(data) -> the elements of a JSON array"},
    {"nest_documents", (PyCFunction)nest_documents, METH_VARARGS,
     "nest_documents(docs, max_nesting) -> subsegment documents moved into their parents, or None"},
    {"entity_index", (PyCFunction)entity_index, METH_VARARGS,
     "entity_index(segment_ids, subsegment_ids, parent_ids) -> (segments repeat an id, "
     "subsegments repeat an id, whether each segment's parent is an entity of its trace)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "xraykit.io._scan", "The loader's fast path (see xraykit/io/columns.py).", -1, module_methods, NULL, NULL, NULL, NULL,
};

/* PyModule_AddObjectRef, stealing the reference (PyModule_Add is Python 3.13+). */
static int add_new(PyObject *m, const char *name, PyObject *value) {
    int rc = value ? PyModule_AddObjectRef(m, name, value) : -1;
    Py_XDECREF(value);
    return rc;
}

static PyObject *names_tuple(const char *const *names, int n) {
    PyObject *t = PyTuple_New(n);
    if (!t) return NULL;
    for (int k = 0; k < n; k++) {
        PyObject *s = PyUnicode_FromString(names[k]);
        if (!s) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, k, s);
    }
    return t;
}

PyMODINIT_FUNC PyInit__scan(void) {
    if (PyType_Ready(&ScannerType) < 0 || PyType_Ready(&OwnedType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    PyObject *types = Py_BuildValue("{sisisisisisi}", "string", TY_STRING, "number", TY_NUMBER, "integer", TY_INTEGER,
                                    "boolean", TY_BOOLEAN, "object", TY_OBJECT, "array", TY_ARRAY);
    if (PyModule_AddObjectRef(m, "Scanner", (PyObject *)&ScannerType) < 0 ||
        add_new(m, "TYPES", types) < 0 ||
        add_new(m, "KINDS", names_tuple(KIND_NAMES, N_KINDS)) < 0 ||
        add_new(m, "CONTEXTS", names_tuple(CONTEXT_NAMES, N_CONTEXTS)) < 0 ||
        add_new(m, "ROLES", names_tuple(ROLE_NAMES, N_ROLES)) < 0 ||
        add_new(m, "TABLES", names_tuple(TABLE_NAMES, N_TABLES)) < 0 ||
        PyModule_AddIntConstant(m, "FIELD", OP_FIELD) < 0 || PyModule_AddIntConstant(m, "FIRST", OP_FIRST) < 0 ||
        PyModule_AddIntConstant(m, "JOIN", OP_JOIN) < 0 || PyModule_AddIntConstant(m, "CONTEXT", OP_CONTEXT) < 0 ||
        PyModule_AddIntConstant(m, "DONE", DONE) < 0 || PyModule_AddIntConstant(m, "FULL", FULL) < 0 ||
        PyModule_AddIntConstant(m, "FALLBACK", FALLBACK) < 0 || PyModule_AddIntConstant(m, "LINES", M_LINES) < 0 ||
        PyModule_AddIntConstant(m, "VALUE", M_VALUE) < 0 || PyModule_AddIntConstant(m, "DOCUMENT", M_DOCUMENT) < 0 ||
        PyModule_AddStringConstant(m, "SOURCE_HASH", XRAYKIT_SCAN_SOURCE_HASH) < 0 || otlp_init(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
