/* HMAC-SHA-256 over many short values in one call, outside the GIL (pipelines/anonymize.py).
 *
 * `digest8(ipad, opad, prefix, data, offsets)` returns, for value i = data[offsets[i] :
 * offsets[i + 1]], the first 8 bytes of HMAC-SHA-256(key, prefix || value), given the key's
 * two 64-byte pads (RFC 2104: key ^ 0x36, key ^ 0x5c). The pads are absorbed once per call
 * (two compressions), so a short value costs two compressions: the Python loop it replaces
 * spent ~0.9 us a value in hashlib calls while holding the GIL. SHA-256 compressions use the
 * x86 SHA extensions where the CPU has them, portable C otherwise; the tests check both
 * against hmac.new. Nothing is kept between calls. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86 1
#endif

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

typedef void (*compress_fn)(uint32_t state[8], const uint8_t block[64]);

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void compress_portable(uint32_t s[8], const uint8_t p[64]) {
    uint32_t w[64], a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6],
                    h = s[7];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
               (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = ROR(w[t - 15], 7) ^ ROR(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ROR(w[t - 2], 17) ^ ROR(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[t] +
                      w[t];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    s[0] += a; s[1] += b; s[2] += c; s[3] += d; s[4] += e; s[5] += f; s[6] += g; s[7] += h;
}

#ifdef HAVE_X86
/* The SHA-NI instruction sequence Intel documents: state kept as ABEF/CDGH, four rounds per
 * message vector, the schedule extended with sha256msg1/msg2. */
__attribute__((target("sha,sse4.1,ssse3"))) static void compress_shani(uint32_t s[8],
                                                                      const uint8_t p[64]) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&s[0]), 0xB1); /* CDAB */
    __m128i st1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&s[4]), 0x1B); /* EFGH */
    __m128i st0 = _mm_alignr_epi8(tmp, st1, 8);                                     /* ABEF */
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);                                          /* CDGH */
    const __m128i abef = st0, cdgh = st1;
    __m128i w[4];
    for (int i = 0; i < 16; i++) {
        __m128i x;
        if (i < 4) {
            x = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), mask);
        } else {
            x = _mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]);          /* W[t-16] + s0 */
            x = _mm_add_epi32(x, _mm_alignr_epi8(w[(i + 3) & 3], w[(i + 2) & 3], 4)); /* W[t-7] */
            x = _mm_sha256msg2_epu32(x, w[(i + 3) & 3]);                  /* + s1(W[t-2]) */
        }
        w[i & 3] = x;
        __m128i msg = _mm_add_epi32(x, _mm_loadu_si128((const __m128i *)&K[4 * i]));
        st1 = _mm_sha256rnds2_epu32(st1, st0, msg);
        st0 = _mm_sha256rnds2_epu32(st0, st1, _mm_shuffle_epi32(msg, 0x0E));
    }
    st0 = _mm_add_epi32(st0, abef);
    st1 = _mm_add_epi32(st1, cdgh);
    tmp = _mm_shuffle_epi32(st0, 0x1B);                              /* FEBA */
    st1 = _mm_shuffle_epi32(st1, 0xB1);                              /* DCHG */
    _mm_storeu_si128((__m128i *)&s[0], _mm_blend_epi16(tmp, st1, 0xF0)); /* DCBA */
    _mm_storeu_si128((__m128i *)&s[4], _mm_alignr_epi8(st1, tmp, 8));    /* HGFE */
}

static int cpu_has_shani(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3)) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 29) & 1; /* CPUID.(EAX=7,ECX=0):EBX.SHA[bit 29] */
}
#endif

/* One SHA-256 stream: a state, the bytes of an unfinished block, and the length so far. */
typedef struct {
    uint32_t s[8];
    uint8_t buf[64];
    size_t used;
    uint64_t total;
} sha_t;

static void sha_update(sha_t *h, compress_fn f, const uint8_t *p, size_t n) {
    h->total += n;
    if (h->used) {
        size_t take = 64 - h->used < n ? 64 - h->used : n;
        memcpy(h->buf + h->used, p, take);
        h->used += take; p += take; n -= take;
        if (h->used < 64) return;
        f(h->s, h->buf);
        h->used = 0;
    }
    for (; n >= 64; p += 64, n -= 64) f(h->s, p);
    memcpy(h->buf, p, n);
    h->used = n;
}

static void sha_final(sha_t *h, compress_fn f, uint8_t out[32]) {
    uint64_t bits = h->total * 8;
    h->buf[h->used++] = 0x80;
    if (h->used > 56) {
        memset(h->buf + h->used, 0, 64 - h->used);
        f(h->s, h->buf);
        h->used = 0;
    }
    memset(h->buf + h->used, 0, 56 - h->used);
    for (int i = 0; i < 8; i++) h->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    f(h->s, h->buf);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(h->s[i] >> 24); out[4 * i + 1] = (uint8_t)(h->s[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h->s[i] >> 8); out[4 * i + 3] = (uint8_t)h->s[i];
    }
}

static compress_fn best = compress_portable;

static PyObject *digest8(PyObject *self, PyObject *args) {
    Py_buffer ipad, opad, prefix, data, offs;
    int portable = 0;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*|p", &ipad, &opad, &prefix, &data, &offs, &portable))
        return NULL;
    PyObject *out = NULL;
    Py_ssize_t n = offs.len / (Py_ssize_t)sizeof(int64_t) - 1;
    const int64_t *o = (const int64_t *)offs.buf;
    if (ipad.len != 64 || opad.len != 64 || prefix.len > 64 ||
        offs.len % (Py_ssize_t)sizeof(int64_t) || n < 0) {
        PyErr_SetString(PyExc_ValueError, "digest8: pads of 64 bytes, a prefix of at most 64 "
                                          "and n + 1 int64 offsets expected");
        goto done;
    }
    for (Py_ssize_t i = 0; i <= n; i++)
        if (o[i] < 0 || o[i] > data.len || (i && o[i] < o[i - 1])) {
            PyErr_SetString(PyExc_ValueError, "digest8: offsets out of order or past the data");
            goto done;
        }
    out = PyBytes_FromStringAndSize(NULL, n * 8);
    if (!out) goto done;
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
    compress_fn f = portable ? compress_portable : best;
    Py_BEGIN_ALLOW_THREADS
    sha_t inner0 = {.used = 0, .total = 0}, outer0 = {.used = 0, .total = 0};
    memcpy(inner0.s, H0, sizeof H0);
    memcpy(outer0.s, H0, sizeof H0);
    sha_update(&inner0, f, ipad.buf, 64);
    sha_update(&inner0, f, prefix.buf, (size_t)prefix.len);
    sha_update(&outer0, f, opad.buf, 64);
    const uint8_t *base = (const uint8_t *)data.buf;
    uint8_t digest[32];
    for (Py_ssize_t i = 0; i < n; i++) {
        sha_t h = inner0;
        sha_update(&h, f, base + o[i], (size_t)(o[i + 1] - o[i]));
        sha_final(&h, f, digest);
        h = outer0;
        sha_update(&h, f, digest, 32);
        sha_final(&h, f, digest);
        memcpy(dst + 8 * i, digest, 8);
    }
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&ipad); PyBuffer_Release(&opad); PyBuffer_Release(&prefix);
    PyBuffer_Release(&data); PyBuffer_Release(&offs);
    return out;
}

static PyObject *accelerated(PyObject *self, PyObject *unused) {
    return PyBool_FromLong(best != compress_portable);
}

static PyMethodDef methods[] = {
    {"digest8", digest8, METH_VARARGS,
     "digest8(ipad, opad, prefix, data, offsets, portable=False) -> bytes: the first 8 bytes "
     "of HMAC-SHA-256(key, prefix || data[offsets[i]:offsets[i+1]]) for each i."},
    {"accelerated", accelerated, METH_NOARGS, "True where the CPU's SHA extensions are used."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_hmac",
                                    "Batched HMAC-SHA-256 for tokenization.", -1, methods};

PyMODINIT_FUNC PyInit__hmac(void) {
#ifdef HAVE_X86
    if (cpu_has_shani()) best = compress_shani;
#endif
    return PyModule_Create(&module);
}
