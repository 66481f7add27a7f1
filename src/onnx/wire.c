/* A pre-scan of the protobuf wire format that bounds how deeply messages
 * nest before protobuf-c unpacks them.  protobuf-c recurses once per nested
 * message (types inside types, graphs inside If/Loop attributes), so a small
 * hostile file could otherwise overflow the stack.  The scan follows the
 * message descriptors, so only fields that protobuf-c will unpack as
 * messages count; it visits every byte once and recurses at most max_depth
 * times itself. */
#include "onnx/onnx.h"

#include "onnx.pb-c.h"

typedef struct wire {
    const uint8_t *p, *end;
} wire;

/* A varint of at most 10 bytes; -1 when malformed or cut off. */
static int read_varint(wire *w, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (w->p >= w->end) return -1;
        uint8_t b = *w->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 0;
    }
    return -1;
}

static int skip(wire *w, uint64_t n) {
    if (n > (uint64_t)(w->end - w->p)) return -1;
    w->p += n;
    return 0;
}

/* The descriptor of field `id` of d when protobuf-c unpacks it as a
 * message, else NULL. */
static const ProtobufCMessageDescriptor *sub_message(const ProtobufCMessageDescriptor *d, uint64_t id) {
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].id == id) return d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE ? d->fields[i].descriptor : NULL;
    return NULL;
}

enum { SCAN_OK = 0, SCAN_MALFORMED = 1, SCAN_TOO_DEEP = 2 };

static int scan(const uint8_t *p, size_t len, const ProtobufCMessageDescriptor *d, int depth, int max_depth) {
    if (depth > max_depth) return SCAN_TOO_DEEP;
    wire w = {p, p + len};
    while (w.p < w.end) {
        uint64_t key, n;
        if (read_varint(&w, &key) || (key >> 3) == 0) return SCAN_MALFORMED;
        switch (key & 7) {
        case 0:
            if (read_varint(&w, &n)) return SCAN_MALFORMED;
            break;
        case 1:
            if (skip(&w, 8)) return SCAN_MALFORMED;
            break;
        case 5:
            if (skip(&w, 4)) return SCAN_MALFORMED;
            break;
        case 2: {
            if (read_varint(&w, &n) || n > (uint64_t)(w.end - w.p)) return SCAN_MALFORMED;
            const ProtobufCMessageDescriptor *sub = sub_message(d, key >> 3);
            if (sub) {
                int r = scan(w.p, (size_t)n, sub, depth + 1, max_depth);
                if (r) return r;
            }
            w.p += n;
            break;
        }
        default: /* groups (3, 4): protobuf-c does not take them either */
            return SCAN_MALFORMED;
        }
    }
    return SCAN_OK;
}

mtmi_status mt_onnx_check_nesting(const uint8_t *buf, size_t len, const char *what) {
    switch (scan(buf, len, &onnx__model_proto__descriptor, 1, MT_ONNX_MAX_NESTING)) {
    case SCAN_TOO_DEEP:
        return mt_fail(MTMI_ERR_PARSE, "%s: messages nested more than %d deep (types or graphs inside each other): refused",
                       what, MT_ONNX_MAX_NESTING);
    case SCAN_MALFORMED:
        return mt_fail(MTMI_ERR_PARSE, "%s: not a valid ONNX model (protobuf does not parse: truncated or corrupt)", what);
    }
    return MTMI_OK;
}
