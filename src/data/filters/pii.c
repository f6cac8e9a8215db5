/* Personal data: e-mail addresses and public IPv4 addresses, and optionally phone numbers, replaced by
 * placeholders. See anvil/filters.h. */
#include "filter_internal.h"

#include <string.h>

static const char EMAIL[] = "email@example.com", IP[] = "192.0.2.1", PHONE[] = "555-0100";

static int is_alnum(unsigned char c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_local(unsigned char c) { return is_alnum(c) || (c && strchr("._%+-", c)); }

/* An address around the '@' at t[at]: its start and end, or 0. */
static int email_at(const unsigned char *t, size_t n, size_t at, size_t *start, size_t *end) {
    size_t a = at;
    while (a > 0 && is_local(t[a - 1])) a--;
    while (a < at && t[a] == '.') a++;
    if (a == at) return 0;
    size_t e = at + 1, label = e, dots = 0, last_label_letters = 1;
    while (e < n && (is_alnum(t[e]) || t[e] == '-' || (t[e] == '.' && e > label && e + 1 < n && is_alnum(t[e + 1])))) {
        if (t[e] == '.') {
            dots++;
            label = e + 1;
            last_label_letters = 1;
        } else if (!((t[e] | 0x20) >= 'a' && (t[e] | 0x20) <= 'z')) {
            last_label_letters = 0;
        }
        e++;
    }
    if (!dots || e - label < 2 || !last_label_letters) return 0;
    *start = a;
    *end = e;
    return 1;
}

/* Public: not private (10/8, 172.16/12, 192.168/16), loopback, link-local, shared (100.64/10),
 * unspecified (0/8), documentation (192.0.2/24, 198.51.100/24, 203.0.113/24), multicast or reserved. */
static int is_public(const int *o) {
    if (o[0] == 10 || o[0] == 127 || o[0] == 0 || o[0] >= 224) return 0;
    if (o[0] == 172 && o[1] >= 16 && o[1] <= 31) return 0;
    if (o[0] == 192 && o[1] == 168) return 0;
    if (o[0] == 169 && o[1] == 254) return 0;
    if (o[0] == 100 && o[1] >= 64 && o[1] <= 127) return 0;
    if ((o[0] == 192 && o[1] == 0 && o[2] == 2) || (o[0] == 198 && o[1] == 51 && o[2] == 100) ||
        (o[0] == 203 && o[1] == 0 && o[2] == 113))
        return 0;
    return 1;
}

/* A dotted IPv4 address starting at t[i]: its end, with the octets, or 0. */
static size_t ipv4_at(const unsigned char *t, size_t n, size_t i, int *o) {
    if (i > 0 && (is_alnum(t[i - 1]) || t[i - 1] == '.')) return 0;
    for (int k = 0; k < 4; k++) {
        if (k) {
            if (i >= n || t[i] != '.') return 0;
            i++;
        }
        size_t d = 0;
        o[k] = 0;
        while (i < n && is_digit(t[i]) && d < 4) o[k] = o[k] * 10 + (t[i++] - '0'), d++;
        if (d == 0 || d > 3 || o[k] > 255) return 0;
    }
    if (i < n && (is_alnum(t[i]) || (t[i] == '.' && i + 1 < n && is_digit(t[i + 1])))) return 0;
    return i;
}

/* A phone number starting at t[i]: an optional +country code, then groups of 2-4 digits split by single
 * spaces, dashes or dots (the first maybe in parentheses), 10 to 15 digits in 3 groups or more. */
static size_t phone_at(const unsigned char *t, size_t n, size_t i) {
    if (i > 0 && (is_alnum(t[i - 1]) || t[i - 1] == '+' || t[i - 1] == '-' || t[i - 1] == '.')) return 0;
    size_t p = i, digits = 0, groups = 0;
    if (t[p] == '+') {
        p++;
        size_t d = 0;
        while (p < n && is_digit(t[p]) && d < 4) p++, d++;
        if (d == 0 || d > 3 || p >= n || !strchr(" -.", t[p])) return 0;
        digits += d;
        groups++;
        p++;
    }
    size_t end = 0;
    for (;;) {
        int paren = p < n && t[p] == '(';
        p += (size_t)paren;
        size_t d = 0;
        while (p < n && is_digit(t[p])) p++, d++;
        if (d < 2 || d > 4 || (paren && (p >= n || t[p++] != ')'))) break;
        digits += d;
        groups++;
        end = p;
        if (p + 1 < n && strchr(" -.", t[p]) && (is_digit(t[p + 1]) || t[p + 1] == '('))
            p++;
        else
            break;
    }
    if (!end || groups < 3 || digits < 10 || digits > 15 || (end < n && is_alnum(t[end]))) return 0;
    return end;
}

int anv_pii_scrub(const char *text, size_t len, int phones, anv_buf_t *out, anv_pii_counts_t *counts) {
    const unsigned char *t = (const unsigned char *)text;
    size_t copied = 0, found = 0;
    out->len = 0;
    for (size_t i = 0; i < len; i++) {
        size_t start = i, end = 0;
        const char *with = NULL;
        int o[4];
        if (t[i] == '@' && email_at(t, len, i, &start, &end)) {
            with = EMAIL;
            counts->emails++;
        } else if (is_digit(t[i]) && (end = ipv4_at(t, len, i, o))) {
            if (!is_public(o)) {
                i = end - 1;
                continue;
            }
            with = IP;
            counts->ips++;
        } else if (phones && (is_digit(t[i]) || t[i] == '+' || t[i] == '(') && (end = phone_at(t, len, i))) {
            with = PHONE;
            counts->phones++;
        }
        if (!with) continue;
        if (start < copied) start = copied; /* never re-emit what an earlier match already replaced */
        if (anv_buf_append(out, text + copied, start - copied) != 0 || anv_buf_puts(out, with) != 0) return -1;
        copied = end;
        i = end - 1;
        found++;
    }
    if (!found) return 0;
    if (anv_buf_append(out, text + copied, len - copied) != 0) return -1;
    return (int)(found > 0x7fffffff ? 0x7fffffff : found);
}
