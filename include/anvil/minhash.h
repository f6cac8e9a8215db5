/* Near-duplicate documents by MinHash LSH, with FineWeb's parameters: signatures of 112 hashes over
 * word 5-grams, 14 bands of 8 rows. Documents that share a band are candidates; a candidate pair
 * whose signatures agree in at least `threshold` of their hashes (the estimated Jaccard similarity of
 * their 5-gram sets, 0.8 by default) is linked, and each cluster of linked documents keeps its first.
 * The chance that a pair of true similarity s becomes a candidate is 1 - (1 - s^8)^14.
 *
 * Words are maximal runs of ASCII letters and digits and of non-ASCII bytes, ASCII lowercased; a
 * document of fewer than 5 words is one shingle of all of them, and one without words takes no part.
 *
 * Memory: about 250 bytes per document (band tables, cluster links); the signatures themselves go to
 * an unnamed temporary file and are read back only for candidates. */
#ifndef ANVIL_MINHASH_H
#define ANVIL_MINHASH_H

#include "anvil/base.h"

#define ANV_MINHASH_HASHES 112
#define ANV_MINHASH_BANDS 14
#define ANV_MINHASH_ROWS (ANV_MINHASH_HASHES / ANV_MINHASH_BANDS)
#define ANV_MINHASH_NGRAM 5

typedef struct {
    uint32_t h[ANV_MINHASH_HASHES];
    int empty; /* the document has no words */
} anv_minhash_t;

void anv_minhash_sign(const char *text, size_t len, anv_minhash_t *sig);
/* The share of equal hashes: the estimated Jaccard similarity of the two 5-gram sets. */
double anv_minhash_similarity(const anv_minhash_t *a, const anv_minhash_t *b);

typedef struct anv_neardup anv_neardup_t;
int anv_neardup_init(double threshold, anv_neardup_t **out);
/* Adds the next document (ids 0, 1, 2, ... in the order added) and links it to the earlier documents
 * it is a near-duplicate of. */
int anv_neardup_add(anv_neardup_t *d, const anv_minhash_t *sig);
uint64_t anv_neardup_count(const anv_neardup_t *d); /* documents added */
/* The first document of id's cluster (id itself when it is kept), and the highest estimated
 * similarity of id's links (0 when it has none: a cluster of its own). Valid once every document is
 * added. */
uint64_t anv_neardup_keeper(anv_neardup_t *d, uint64_t id, double *similarity);
void anv_neardup_free(anv_neardup_t *d);

#endif
