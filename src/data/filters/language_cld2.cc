// The document's language by CLD2 (Debian's libcld2, a C++ library): the one C++ file of anvil, a
// shim behind the C function anv_language_detect (anvil/filters.h).
#include <climits>
#include <cstdio>
#include <cstring>

#include <cld2/public/compact_lang_det.h>

extern "C" {
#include "anvil/filters.h"
}

static CLD2::Language detect(const char *text, int len, int *percent, int *valid) {
    CLD2::CLDHints hints = {nullptr, nullptr, 0, CLD2::UNKNOWN_LANGUAGE};
    CLD2::Language top3[3] = {CLD2::UNKNOWN_LANGUAGE, CLD2::UNKNOWN_LANGUAGE, CLD2::UNKNOWN_LANGUAGE};
    int percent3[3] = {0, 0, 0}, text_bytes = 0;
    double score3[3] = {0, 0, 0};
    bool reliable = false;
    *valid = len;
    CLD2::Language lang = CLD2::ExtDetectLanguageSummaryCheckUTF8(text, len, true, &hints, 0, top3, percent3, score3,
                                                                  nullptr, &text_bytes, &reliable, valid);
    *percent = top3[0] == lang ? percent3[0] : 0;
    return lang;
}

extern "C" void anv_language_detect(const char *text, size_t len, const char **code, double *share) {
    int n = len > INT_MAX ? INT_MAX : (int)len, percent, valid;
    CLD2::Language lang = detect(text, n, &percent, &valid);
    if (valid < n && valid > 0) lang = detect(text, valid, &percent, &valid); /* the valid UTF-8 before a bad byte */
    *code = CLD2::LanguageCode(lang);
    *share = lang == CLD2::UNKNOWN_LANGUAGE ? 0 : percent / 100.0;
}

extern "C" int anv_language_known(const char *code) {
    CLD2::Language lang = CLD2::GetLanguageFromName(code);
    return lang != CLD2::UNKNOWN_LANGUAGE && !strcmp(CLD2::LanguageCode(lang), code);
}
