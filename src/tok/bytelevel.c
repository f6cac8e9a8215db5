/* GPT-2's byte-level alphabet: each byte is shown as one printable code point. Bytes that are
 * printable Latin-1 ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) keep their value; the other 68 bytes
 * take U+0100.. in increasing byte order. */
#include "tok_internal.h"

static int printable(unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

/* Code point of byte b. The unprintable bytes are 0x00..0x20, 0x7F..0xA0 and 0xAD. */
static unsigned byte_cp(unsigned b) {
    if (printable(b)) return b;
    if (b <= 0x20) return 256 + b;
    if (b <= 0xA0) return 256 + 33 + (b - 0x7F);
    return 256 + 67;
}

int tok_bytelevel_encode(anv_buf_t *out, const void *bytes, size_t n) {
    const unsigned char *p = bytes;
    for (size_t i = 0; i < n; i++) {
        unsigned cp = byte_cp(p[i]);
        char u[2];
        size_t k;
        if (cp < 0x80)
            u[0] = (char)cp, k = 1;
        else
            u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 63)), k = 2;
        if (anv_buf_append(out, u, k) != 0) return -1;
    }
    return 0;
}

int tok_bytelevel_decode(const char *s, size_t n, char *out, size_t *out_len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned cp;
        if (p[i] < 0x80)
            cp = p[i++];
        else if ((p[i] & 0xE0) == 0xC0 && i + 1 < n && (p[i + 1] & 0xC0) == 0x80)
            cp = (unsigned)(p[i] & 0x1F) << 6 | (p[i + 1] & 0x3F), i += 2;
        else
            return -1;
        unsigned b;
        if (cp < 256 && printable(cp))
            b = cp;
        else if (cp >= 256 && cp < 256 + 33)
            b = cp - 256;
        else if (cp >= 256 + 33 && cp < 256 + 67)
            b = 0x7F + (cp - 256 - 33);
        else if (cp == 256 + 67)
            b = 0xAD;
        else
            return -1;
        out[o++] = (char)b;
    }
    *out_len = o;
    return 0;
}
