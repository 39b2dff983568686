/*
 * Part of xraykit.io._scan (included by _scan.c, which it shares the JSON tape with):
 * OtlpSpans, the reader of plain OTLP/JSON export requests for xraykit/io/otlp_fast.py.
 *
 * OtlpSpans().read(data, validate_trace_ids) -> list | None
 *     `data` is one export request's JSON text (a line of a file). The result has one tuple
 *     per span, in the order of the text:
 *         (resource, document, attributes, kind, subsegment, name, status_code, status_message)
 *     `resource` and `attributes` are the attribute dicts (the spans of one resource share one
 *     dict), `document` the start of the span's segment document (id, trace_id, start_time,
 *     end_time or in_progress, parent_id, type), as FastTranslator._document begins it.
 *     None when the request is not plain in the sense of otlp_fast.py, or when this reader
 *     would not read it exactly as orjson.loads and FastTranslator do: invalid JSON, a
 *     repeated key it reads, a string value that is not text where text is needed, events or
 *     links, integers that do not fit in 64 bits, attribute
 *     values other than scalars and arrays of scalars, a trace id the exporter refuses. Python
 *     then reads the request itself (and reports what it must); None costs only the time spent.
 *
 * Nothing here decides a translation rule: it reads the OTLP encoding (ids, times, enums,
 * AnyValue) the way otlp_fast.py does, and tests compare the two on every request they have.
 */

/* OTLP's span kinds that make a segment of a span with a parent (otlp.py: KIND_SERVER, ...). */
#define OTLP_KIND_SERVER 2
#define OTLP_KIND_CONSUMER 5
#define OTLP_MAX_NS_DIGITS 20          /* epoch nanoseconds below 10^20 (otlp.py: _MAX_NS) */
#define OTLP_MAX_AGE 2419200.0         /* 28 days: the exporter's oldest trace id epoch */
#define OTLP_MAX_SKEW 300.0            /* 5 minutes: a span starting before its id's epoch */
#define OTLP_KEEP_NODES ((size_t)1 << 20) /* a tape larger than this is freed after a read */

typedef struct {
    const char *text;
    size_t len;
} Name;

#define NAME(s) {s, sizeof(s) - 1}

enum { Q_RESOURCE_SPANS, Q_N };
static const Name REQUEST_KEYS[Q_N] = {NAME("resourceSpans")};
enum { R_RESOURCE, R_SCOPE_SPANS, R_LIBRARY_SPANS, R_N };
static const Name RS_KEYS[R_N] = {NAME("resource"), NAME("scopeSpans"), NAME("instrumentationLibrarySpans")};
enum { A_ATTRIBUTES, A_N };
static const Name ATTRIBUTES_KEY[A_N] = {NAME("attributes")};
enum { P_SPANS, P_N };
static const Name SCOPE_KEYS[P_N] = {NAME("spans")};
enum { S_TRACE, S_SPAN, S_PARENT, S_START, S_END, S_NAME, S_KIND, S_STATUS, S_EVENTS, S_LINKS, S_ATTRS, S_N };
static const Name SPAN_KEYS[S_N] = {
    NAME("traceId"), NAME("spanId"), NAME("parentSpanId"), NAME("startTimeUnixNano"),
    NAME("endTimeUnixNano"), NAME("name"), NAME("kind"), NAME("status"),
    NAME("events"), NAME("links"), NAME("attributes")};
enum { T_CODE, T_MESSAGE, T_N };
static const Name STATUS_KEYS[T_N] = {NAME("code"), NAME("message")};
enum { K_KEY, K_VALUE, K_N };
static const Name KV_KEYS[K_N] = {NAME("key"), NAME("value")};
enum { V_VALUES, V_N };
static const Name ARRAY_KEYS[V_N] = {NAME("values")};

/* The document's keys and the texts every span shares, made once. */
enum { D_ID, D_TRACE_ID, D_START, D_IN_PROGRESS, D_END, D_PARENT, D_TYPE, D_SUBSEGMENT, D_SUBSEGMENTS, D_EMPTY, D_N };
static const char *DOC_TEXTS[D_N] = {"id", "trace_id", "start_time", "in_progress", "end_time",
                                     "parent_id", "type", "subsegment", "subsegments", ""};
static PyObject *doc_texts[D_N];

/* The value of each of `names` in object `obj` (-1 when absent); BAD when one of them comes
 * twice (orjson keeps the last, a reader of the first would differ). Other keys are ignored,
 * as Python ignores them. */
static int fields_of(const Tape *T, int obj, const Name *names, int n, int *out) {
    for (int k = 0; k < n; k++) out[k] = -1;
    int i = obj + 1;
    for (uint32_t c = 0; c < T->nodes[obj].count; c++) {
        size_t len;
        const char *text = str_text(T, i, &len);
        for (int k = 0; k < n; k++) {
            if (names[k].len == len && memcmp(names[k].text, text, len) == 0) {
                if (out[k] >= 0) return BAD;
                out[k] = i + 1;
                break;
            }
        }
        i = (int)T->nodes[i + 1].next;
    }
    return OK;
}

static inline int is_null(const Tape *T, int idx) { return idx < 0 || T->nodes[idx].type == J_NULL; }

/* A hex id of `digits` digits (no escapes), lowered into `out`; BAD otherwise. */
static int hex_id(const Tape *T, int idx, size_t digits, char *out) {
    if (type_of(T, idx) != J_STR || T->nodes[idx].esc || T->nodes[idx].len != digits) return BAD;
    const unsigned char *p = T->s + T->nodes[idx].start;
    for (size_t k = 0; k < digits; k++) {
        unsigned char c = p[k];
        if (c >= 'A' && c <= 'F') c = (unsigned char)(c - 'A' + 'a');
        else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return BAD;
        out[k] = (char)c;
    }
    return OK;
}

static PyObject *ascii_text(const char *p, size_t n) {
    PyObject *s = PyUnicode_New((Py_ssize_t)n, 127);
    if (s) memcpy(PyUnicode_1BYTE_DATA(s), p, n);
    return s;
}

/* Epoch nanoseconds from a string of 1..max_digits ASCII digits or a JSON integer, as
 * otlp_fast.py reads them; BAD for anything else or a value of 10^20 or more (or beyond
 * 64 bits, which Python would read: it is then Python's to read). */
static int nanos_of(const Tape *T, int idx, size_t max_digits, int64_t *out) {
    int type = type_of(T, idx);
    if (type == J_INT) {
        if (int_value(T, idx, out) || *out < 0) return BAD;
        return OK;
    }
    if (type != J_STR || T->nodes[idx].esc) return BAD;
    size_t len = T->nodes[idx].len;
    if (len == 0 || len > max_digits) return BAD;
    const unsigned char *p = T->s + T->nodes[idx].start;
    uint64_t v = 0;
    for (size_t k = 0; k < len; k++) {
        unsigned d = (unsigned)(p[k] - '0');
        if (d > 9) return BAD;
        if (v > ((uint64_t)INT64_MAX - d) / 10) return BAD;
        v = v * 10 + d;
    }
    *out = (int64_t)v;
    return OK;
}

/* OTLP's enum names (otlp.py: _KINDS, _STATUSES), after their prefix. */
typedef struct {
    Name prefix;
    Name names[6];
    long values[6];
} EnumNames;

static const EnumNames SPAN_KINDS = {NAME("SPAN_KIND_"),
                                     {NAME("INTERNAL"), NAME("SERVER"), NAME("CLIENT"), NAME("PRODUCER"),
                                      NAME("CONSUMER"), NAME("UNSPECIFIED")},
                                     {1, 2, 3, 4, 5, 0}};
static const EnumNames STATUS_CODES = {NAME("STATUS_CODE_"),
                                       {NAME("UNSET"), NAME("OK"), NAME("ERROR"), {NULL, 0}, {NULL, 0}, {NULL, 0}},
                                       {0, 1, 2, 0, 0, 0}};

/* An enum as otlp.enum_number reads it: absent or null 0, a number 0..15, or a name in any
 * case with or without its prefix, or a string of digits (0 from 16 on); BAD for the rest
 * (and for names that are not ASCII, whose upper case Python's rules decide). */
static int enum_of(const Tape *T, int idx, const EnumNames *names, long *out) {
    if (is_null(T, idx)) {
        *out = 0;
        return OK;
    }
    int64_t v;
    if (type_of(T, idx) == J_INT) {
        if (int_value(T, idx, &v) || v < 0 || v >= 16) return BAD;
        *out = (long)v;
        return OK;
    }
    if (type_of(T, idx) != J_STR || T->nodes[idx].esc || T->nodes[idx].len > 32) return BAD;
    char upper[32];
    size_t len = T->nodes[idx].len;
    const unsigned char *p = T->s + T->nodes[idx].start;
    for (size_t k = 0; k < len; k++) {
        if (p[k] >= 0x80) return BAD;
        upper[k] = (char)(p[k] >= 'a' && p[k] <= 'z' ? p[k] - 'a' + 'A' : p[k]);
    }
    const char *key = upper;
    if (len >= names->prefix.len && memcmp(upper, names->prefix.text, names->prefix.len) == 0) {
        key += names->prefix.len;
        len -= names->prefix.len;
    }
    for (int k = 0; k < 6 && names->names[k].text; k++) {
        if (names->names[k].len == len && memcmp(names->names[k].text, key, len) == 0) {
            *out = names->values[k];
            return OK;
        }
    }
    if (len == 0 || len > 18) return BAD;
    uint64_t number = 0;
    for (size_t k = 0; k < len; k++) {
        unsigned d = (unsigned)(key[k] - '0');
        if (d > 9) return BAD;
        number = number * 10 + d;
    }
    *out = number < 16 ? (long)number : 0;
    return OK;
}

/* An empty or absent list (events, links). */
static int nothing_in(const Tape *T, int idx) {
    return is_null(T, idx) || (T->nodes[idx].type == J_ARR && T->nodes[idx].count == 0);
}

/* An AnyValue holding a scalar, as otlp.any_value gives it; BAD for other values. */
static int scalar_value(CacheSlot *cache, const Tape *T, int wrapped, PyObject **out) {
    if (type_of(T, wrapped) != J_OBJ || T->nodes[wrapped].count != 1) return BAD;
    int key = wrapped + 1, v = wrapped + 2, type = T->nodes[v].type;
    size_t len;
    const char *tag = str_text(T, key, &len);
#define TAG_IS(s) (len == sizeof(s) - 1 && memcmp(tag, s, len) == 0)
    if (TAG_IS("stringValue")) {
        if (type != J_STR) return BAD;
        size_t n;
        const char *text = str_text(T, v, &n);
        return cached_string(cache, text, n, out);
    }
    if (TAG_IS("boolValue")) {
        if (type != J_TRUE && type != J_FALSE) return BAD;
        *out = Py_NewRef(type == J_TRUE ? Py_True : Py_False);
        return OK;
    }
    if (TAG_IS("intValue")) {
        int64_t number;
        if (type == J_INT) {
            if (int_value(T, v, &number)) return BAD;
        } else if (type == J_STR && !T->nodes[v].esc) { /* -?[0-9]{1,18}: what int() reads alike */
            const unsigned char *p = T->s + T->nodes[v].start, *end = p + T->nodes[v].len;
            int neg = p < end && *p == '-';
            p += neg;
            if (p == end || end - p > 18) return BAD;
            uint64_t m = 0;
            for (; p < end; p++) {
                unsigned d = (unsigned)(*p - '0');
                if (d > 9) return BAD;
                m = m * 10 + d;
            }
            number = neg ? -(int64_t)m : (int64_t)m;
        } else {
            return BAD;
        }
        *out = PyLong_FromLongLong(number);
        return *out ? OK : ERR;
    }
    if (TAG_IS("doubleValue")) {
        double number;
        if (type == J_INT) {
            int64_t whole;
            if (int_value(T, v, &whole)) return BAD;
            number = (double)whole; /* rounded to nearest, as Python's float(int) */
        } else if (type != J_FLOAT || num_value(T, v, &number)) {
            return BAD;
        }
        *out = PyFloat_FromDouble(number);
        return *out ? OK : ERR;
    }
#undef TAG_IS
    return BAD;
}

/* An AnyValue: a scalar, or an array of scalars (a list, untracked as to_python leaves it). */
static int attribute_value(CacheSlot *cache, const Tape *T, int wrapped, PyObject **out) {
    int rc = scalar_value(cache, T, wrapped, out);
    if (rc != BAD || type_of(T, wrapped) != J_OBJ || T->nodes[wrapped].count != 1) return rc;
    size_t len;
    const char *tag = str_text(T, wrapped + 1, &len);
    int inner = wrapped + 2;
    if (!(len == 10 && memcmp(tag, "arrayValue", 10) == 0) || type_of(T, inner) != J_OBJ) return BAD;
    int values;
    TRY(fields_of(T, inner, ARRAY_KEYS, V_N, &values));
    if (type_of(T, values) != J_ARR) return BAD;
    uint32_t count = T->nodes[values].count;
    PyObject *list = PyList_New(count);
    if (!list) return ERR;
    int i = values + 1;
    for (uint32_t k = 0; k < count; k++) {
        PyObject *item = NULL;
        int rc2 = scalar_value(cache, T, i, &item);
        if (rc2) {
            Py_DECREF(list);
            return rc2;
        }
        PyList_SET_ITEM(list, k, item);
        i = (int)T->nodes[i].next;
    }
    PyObject_GC_UnTrack(list);
    *out = list;
    return OK;
}

/* OTLP attributes (a list of {"key", "value"}; absent or null: none) as a new dict. */
static int attributes_of(CacheSlot *cache, const Tape *T, int idx, PyObject **out) {
    if (!is_null(T, idx) && T->nodes[idx].type != J_ARR) return BAD;
    PyObject *dict = PyDict_New();
    if (!dict) return ERR;
    int i = is_null(T, idx) ? -1 : idx + 1;
    uint32_t count = i < 0 ? 0 : T->nodes[idx].count;
    for (uint32_t k = 0; k < count; k++) {
        int kv[K_N];
        PyObject *key = NULL, *value = NULL;
        int rc = type_of(T, i) == J_OBJ ? fields_of(T, i, KV_KEYS, K_N, kv) : BAD;
        if (!rc && type_of(T, kv[K_KEY]) != J_STR) rc = BAD;
        if (!rc) {
            size_t len;
            const char *text = str_text(T, kv[K_KEY], &len);
            rc = cached_string(cache, text, len, &key);
        }
        if (!rc) rc = attribute_value(cache, T, kv[K_VALUE], &value);
        if (!rc && PyDict_SetItem(dict, key, value)) rc = ERR;
        Py_XDECREF(key);
        Py_XDECREF(value);
        if (rc) {
            Py_DECREF(dict);
            return rc;
        }
        i = (int)T->nodes[i].next;
    }
    *out = dict;
    return OK;
}

typedef struct {
    PyObject_HEAD
    Tape T;
    CacheSlot *cache;
    char trace_raw[32];  /* the last trace id read, as written */
    PyObject *trace_id;  /* ... and as X-Ray writes it */
    double trace_epoch;
} OtlpSpans;

/* The trace id as X-Ray writes it, kept for the next span of the same trace. */
static int xray_trace_id(OtlpSpans *R, const Tape *T, int idx, PyObject **out, double *epoch) {
    const Node *nd = &T->nodes[idx];
    if (type_of(T, idx) != J_STR || nd->esc || nd->len != 32) return BAD;
    const char *raw = (const char *)T->s + nd->start;
    if (!R->trace_id || memcmp(raw, R->trace_raw, 32) != 0) {
        char low[32], text[35];
        TRY(hex_id(T, idx, 32, low));
        text[0] = '1';
        text[1] = '-';
        memcpy(text + 2, low, 8);
        text[10] = '-';
        memcpy(text + 11, low + 8, 24);
        PyObject *id = ascii_text(text, 35);
        if (!id) return ERR;
        Py_XSETREF(R->trace_id, id);
        memcpy(R->trace_raw, raw, 32);
        uint32_t seconds = 0;
        for (int k = 0; k < 8; k++) seconds = seconds * 16 + (uint32_t)hexval((unsigned char)low[k]);
        R->trace_epoch = (double)seconds;
    }
    *out = Py_NewRef(R->trace_id);
    *epoch = R->trace_epoch;
    return OK;
}

static int set_new(PyObject *dict, int key, PyObject *value) {
    if (!value) return ERR;
    int rc = PyDict_SetItem(dict, doc_texts[key], value) ? ERR : OK;
    Py_DECREF(value);
    return rc;
}

/* One span's tuple (see the top of this file). */
static int read_span(OtlpSpans *R, const Tape *T, int item, PyObject *resource, int validate,
                     PyObject *out) {
    CacheSlot *cache = R->cache;
    int f[S_N];
    if (type_of(T, item) != J_OBJ) return BAD;
    TRY(fields_of(T, item, SPAN_KEYS, S_N, f));
    char span_id[16], parent_id[16];
    int has_parent = 0;
    TRY(hex_id(T, f[S_SPAN], 16, span_id));
    if (!is_null(T, f[S_PARENT]) && !(type_of(T, f[S_PARENT]) == J_STR && T->nodes[f[S_PARENT]].len == 0)) {
        TRY(hex_id(T, f[S_PARENT], 16, parent_id));
        has_parent = memcmp(parent_id, "0000000000000000", 16) != 0;
    }
    int64_t start, end = 0;
    TRY(nanos_of(T, f[S_START], OTLP_MAX_NS_DIGITS, &start));
    if (start <= 0) return BAD;
    if (!is_null(T, f[S_END])) TRY(nanos_of(T, f[S_END], 24, &end));
    long kind, status_code = 0;
    TRY(enum_of(T, f[S_KIND], &SPAN_KINDS, &kind));
    int message = -1;
    if (!is_null(T, f[S_STATUS])) {
        int st[T_N];
        if (type_of(T, f[S_STATUS]) != J_OBJ) return BAD;
        TRY(fields_of(T, f[S_STATUS], STATUS_KEYS, T_N, st));
        TRY(enum_of(T, st[T_CODE], &STATUS_CODES, &status_code));
        if (type_of(T, st[T_MESSAGE]) == J_STR) message = st[T_MESSAGE];
    }
    if (!nothing_in(T, f[S_EVENTS]) || !nothing_in(T, f[S_LINKS])) return BAD;
    double start_s = (double)(start / 1000) / 1e6, epoch;
    PyObject *trace_id = NULL;
    TRY(xray_trace_id(R, T, f[S_TRACE], &trace_id, &epoch));
    if (validate) {
        double delta = start_s - epoch;
        if (delta > OTLP_MAX_AGE || delta < -OTLP_MAX_SKEW) {
            Py_DECREF(trace_id);
            return BAD;
        }
    }
    int subsegment = kind != OTLP_KIND_SERVER && kind != OTLP_KIND_CONSUMER && has_parent;
    PyObject *doc = PyDict_New(), *attrs = NULL, *name = NULL, *text = NULL;
    int rc = doc ? OK : ERR;
    if (!rc) rc = set_new(doc, D_ID, ascii_text(span_id, 16));
    if (!rc) rc = set_new(doc, D_TRACE_ID, trace_id);
    else Py_DECREF(trace_id);
    if (!rc) rc = set_new(doc, D_START, PyFloat_FromDouble(start_s));
    if (!rc && end == 0) rc = PyDict_SetItem(doc, doc_texts[D_IN_PROGRESS], Py_True) ? ERR : OK;
    if (!rc && end != 0) rc = set_new(doc, D_END, PyFloat_FromDouble((double)(end / 1000) / 1e6));
    if (!rc && has_parent) rc = set_new(doc, D_PARENT, ascii_text(parent_id, 16));
    if (!rc && subsegment) rc = PyDict_SetItem(doc, doc_texts[D_TYPE], doc_texts[D_SUBSEGMENT]) ? ERR : OK;
    if (!rc) rc = attributes_of(cache, T, f[S_ATTRS], &attrs);
    if (!rc && type_of(T, f[S_NAME]) == J_STR) {
        size_t len;
        const char *p = str_text(T, f[S_NAME], &len);
        rc = cached_string(cache, p, len, &name);
    } else if (!rc) {
        name = Py_NewRef(doc_texts[D_EMPTY]);
    }
    if (!rc && message >= 0) {
        size_t len;
        const char *p = str_text(T, message, &len);
        rc = cached_string(cache, p, len, &text);
    } else if (!rc) {
        text = Py_NewRef(doc_texts[D_EMPTY]);
    }
    PyObject *tuple = NULL;
    if (!rc) {
        tuple = Py_BuildValue("(OOOlOOlO)", resource, doc, attrs, kind, subsegment ? Py_True : Py_False,
                              name, status_code, text);
        if (!tuple || PyList_Append(out, tuple)) rc = ERR;
    }
    Py_XDECREF(tuple);
    Py_XDECREF(doc);
    Py_XDECREF(attrs);
    Py_XDECREF(name);
    Py_XDECREF(text);
    return rc;
}

/* The spans of one element of resourceSpans. */
static int read_resource_spans(OtlpSpans *R, const Tape *T, int rs, int validate, PyObject *out) {
    int f[R_N];
    if (type_of(T, rs) != J_OBJ) return BAD;
    TRY(fields_of(T, rs, RS_KEYS, R_N, f));
    int attributes = -1;
    if (!is_null(T, f[R_RESOURCE])) {
        if (type_of(T, f[R_RESOURCE]) != J_OBJ) return BAD;
        TRY(fields_of(T, f[R_RESOURCE], ATTRIBUTES_KEY, A_N, &attributes));
    }
    PyObject *resource = NULL;
    TRY(attributes_of(R->cache, T, attributes, &resource));
    int scopes = f[R_SCOPE_SPANS] >= 0 ? f[R_SCOPE_SPANS] : f[R_LIBRARY_SPANS];
    int rc = OK;
    if (!is_null(T, scopes)) {
        if (type_of(T, scopes) != J_ARR) rc = BAD;
        int scope = scopes + 1;
        for (uint32_t k = 0; !rc && k < T->nodes[scopes].count; k++) {
            int spans;
            if (type_of(T, scope) != J_OBJ) rc = BAD;
            if (!rc) rc = fields_of(T, scope, SCOPE_KEYS, P_N, &spans);
            if (!rc && !is_null(T, spans)) {
                if (type_of(T, spans) != J_ARR) rc = BAD;
                int item = spans + 1;
                for (uint32_t j = 0; !rc && j < T->nodes[spans].count; j++) {
                    rc = read_span(R, T, item, resource, validate, out);
                    item = (int)T->nodes[item].next;
                }
            }
            scope = (int)T->nodes[scope].next;
        }
    }
    Py_DECREF(resource);
    return rc;
}

static PyObject *OtlpSpans_read(OtlpSpans *R, PyObject *args) {
    Py_buffer view;
    int validate = 1;
    if (!PyArg_ParseTuple(args, "y*|p", &view, &validate)) return NULL;
    Tape *T = &R->T;
    PyObject *out = PyList_New(0);
    int rc = out ? OK : ERR;
    if (!rc) rc = tape_parse(T, view.buf, (size_t)view.len);
    int f;
    if (!rc && type_of(T, 0) != J_OBJ) rc = BAD;
    if (!rc) rc = fields_of(T, 0, REQUEST_KEYS, Q_N, &f);
    if (!rc && type_of(T, f) != J_ARR) rc = BAD;
    if (!rc) {
        int rs = f + 1;
        for (uint32_t k = 0; !rc && k < T->nodes[f].count; k++) {
            rc = read_resource_spans(R, T, rs, validate, out);
            rs = (int)T->nodes[rs].next;
        }
    }
    PyBuffer_Release(&view);
    if (T->cap > OTLP_KEEP_NODES) { /* a huge request: give its memory back */
        free(T->nodes);
        T->nodes = NULL;
        T->cap = T->nn = 0;
    }
    if (T->dec.cap > OTLP_KEEP_NODES * sizeof(Node)) buf_free(&T->dec);
    if (rc == OK) return out;
    Py_XDECREF(out);
    if (rc == ERR) return NULL;
    Py_RETURN_NONE;
}

static void OtlpSpans_dealloc(OtlpSpans *R) {
    free(R->T.nodes);
    buf_free(&R->T.dec);
    cache_free(R->cache);
    Py_XDECREF(R->trace_id);
    Py_TYPE(R)->tp_free((PyObject *)R);
}

static PyObject *OtlpSpans_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    if (!PyArg_ParseTuple(args, "") || (kwds && PyDict_Size(kwds))) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "OtlpSpans() takes no arguments");
        return NULL;
    }
    OtlpSpans *R = (OtlpSpans *)type->tp_alloc(type, 0);
    if (!R) return NULL;
    R->cache = PyMem_Calloc(CACHE_SLOTS, sizeof(CacheSlot));
    if (!R->cache) {
        Py_DECREF(R);
        return PyErr_NoMemory();
    }
    return (PyObject *)R;
}

static PyMethodDef OtlpSpans_methods[] = {
    {"read", (PyCFunction)OtlpSpans_read, METH_VARARGS,
     "read(data, validate_trace_ids=True) -> the spans of a plain OTLP/JSON export request, or None"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject OtlpSpansType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "xraykit.io._scan.OtlpSpans",
    .tp_basicsize = sizeof(OtlpSpans),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Reads plain OTLP/JSON export requests into spans (see xraykit/io/otlp_fast.py).",
    .tp_new = OtlpSpans_new,
    .tp_dealloc = (destructor)OtlpSpans_dealloc,
    .tp_methods = OtlpSpans_methods,
};

/* nest_documents(docs, max_nesting) -> list | None
 *
 * otlp_fast._nest in C: each subsegment document whose parent (the last document of the same
 * trace_id with its parent_id as id) comes before it moves into that parent's "subsegments",
 * without its trace_id, type and parent_id; the list of the others is returned (`docs` itself
 * when nothing moved). None, with nothing changed, when Python must nest them: a parent after
 * its child, nesting deeper than `max_nesting`, more than NEST_MAX_DOCS documents, or values
 * that are not what the translation writes (dicts, text ids). */
#define NEST_MAX_DOCS 512

static int text_field(PyObject *doc, PyObject *key, PyObject **out) {
    *out = PyDict_GetItemWithError(doc, key); /* borrowed: docs do not change until moved */
    if (!*out) return PyErr_Occurred() ? ERR : OK;
    return PyUnicode_CheckExact(*out) ? OK : BAD;
}

static int same_text(PyObject *a, PyObject *b) {
    return a == b || (a && b && PyUnicode_GET_LENGTH(a) == PyUnicode_GET_LENGTH(b) && PyUnicode_Compare(a, b) == 0);
}

static PyObject *nest_documents(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *docs;
    int max_nesting;
    if (!PyArg_ParseTuple(args, "O!i", &PyList_Type, &docs, &max_nesting)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(docs);
    if (n > NEST_MAX_DOCS) Py_RETURN_NONE;
    PyObject *trace[NEST_MAX_DOCS], *id[NEST_MAX_DOCS];
    int parent[NEST_MAX_DOCS], depth[NEST_MAX_DOCS], nested = 0, rc = OK;
    for (Py_ssize_t i = 0; !rc && i < n; i++) {
        PyObject *doc = PyList_GET_ITEM(docs, i);
        if (!PyDict_CheckExact(doc)) rc = BAD;
        if (!rc) rc = text_field(doc, doc_texts[D_TRACE_ID], &trace[i]);
        if (!rc) rc = text_field(doc, doc_texts[D_ID], &id[i]);
        if (!rc && (!trace[i] || !id[i])) rc = BAD;
        parent[i] = -1;
        depth[i] = 0;
    }
    for (Py_ssize_t i = 0; !rc && i < n; i++) {
        PyObject *doc = PyList_GET_ITEM(docs, i), *type, *parent_id, *subs;
        rc = text_field(doc, doc_texts[D_TYPE], &type);
        if (rc || !type || !same_text(type, doc_texts[D_SUBSEGMENT])) {
            if (rc == BAD) rc = OK; /* a type that is not text is not "subsegment" either */
            continue;
        }
        rc = text_field(doc, doc_texts[D_PARENT], &parent_id);
        if (rc || !parent_id) continue;
        Py_ssize_t j = n - 1;
        while (j >= 0 && !(same_text(id[j], parent_id) && same_text(trace[j], trace[i]))) j--;
        if (j < 0) continue;
        if (j >= i || depth[j] >= max_nesting) {
            rc = BAD;
            break;
        }
        subs = PyDict_GetItemWithError(PyList_GET_ITEM(docs, j), doc_texts[D_SUBSEGMENTS]);
        if (subs ? !PyList_CheckExact(subs) : PyErr_Occurred() != NULL) {
            rc = PyErr_Occurred() ? ERR : BAD;
            break;
        }
        parent[i] = (int)j;
        depth[i] = depth[j] + 1;
        nested = 1;
    }
    if (rc == ERR) return NULL;
    if (rc == BAD) Py_RETURN_NONE;
    if (!nested) return Py_NewRef(docs);
    PyObject *top = PyList_New(0);
    for (Py_ssize_t i = 0; top && i < n; i++) {
        PyObject *doc = PyList_GET_ITEM(docs, i);
        if (!depth[i]) {
            if (PyList_Append(top, doc)) Py_CLEAR(top);
            continue;
        }
        PyObject *parent_doc = PyList_GET_ITEM(docs, parent[i]);
        PyObject *subs = PyDict_GetItemWithError(parent_doc, doc_texts[D_SUBSEGMENTS]);
        if (!subs && !PyErr_Occurred()) {
            PyObject *list = PyList_New(0);
            if (list && !PyDict_SetItem(parent_doc, doc_texts[D_SUBSEGMENTS], list)) subs = list;
            Py_XDECREF(list); /* the parent holds it */
        }
        if (!subs || PyDict_DelItem(doc, doc_texts[D_TRACE_ID]) || PyDict_DelItem(doc, doc_texts[D_TYPE]) ||
            PyDict_DelItem(doc, doc_texts[D_PARENT]) || PyList_Append(subs, doc))
            Py_CLEAR(top);
    }
    return top;
}

/* The shared texts and the type, at module creation. */
static int otlp_init(PyObject *m) {
    for (int k = 0; k < D_N; k++) {
        if (!doc_texts[k] && !(doc_texts[k] = PyUnicode_InternFromString(DOC_TEXTS[k]))) return -1;
    }
    if (PyType_Ready(&OtlpSpansType) < 0) return -1;
    return PyModule_AddObjectRef(m, "OtlpSpans", (PyObject *)&OtlpSpansType);
}
