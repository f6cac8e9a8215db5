/* File helpers: whole-file reads, directories, atomic replacement, memory maps. */
#define _GNU_SOURCE
#include "anvil/base.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int anv_read_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return anv_error("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        fclose(f);
        return anv_error("%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    char *buf = anv_alloc(size + 1, path);
    if (!buf) {
        fclose(f);
        return -1;
    }
    size_t got = fread(buf, 1, size, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != size) {
        anv_free(buf);
        return anv_error("%s: read failed after %zu of %zu bytes", path, got, size);
    }
    buf[size] = 0;
    *data = buf;
    *len = size;
    return 0;
}

int anv_path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int anv_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int anv_mkdir_p(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return anv_error("%s: bad directory path", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return anv_error("%s: cannot create directory: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    if (!anv_is_dir(path)) return anv_error("%s: exists and is not a directory", path);
    return 0;
}

int anv_dir_has_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : anv_error("%s: cannot read the directory: %s", dir, strerror(errno));
    const struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d))) found = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return found;
}

int anv_path_join(char *buf, size_t size, const char *dir, const char *name) {
    int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size) return anv_error("%s/%s: path too long", dir, name);
    return 0;
}

static size_t write_limit(void) {
    const char *s = getenv("ANVIL_WRITE_LIMIT");
    return s && *s ? (size_t)strtoull(s, NULL, 10) : (size_t)-1;
}

int anv_atomic_open(anv_atomic_file_t *af, const char *path) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->path = anv_strdup(path);
    af->tmp = anv_alloc(n, "temporary file name");
    if (!af->path || !af->tmp) {
        anv_free(af->path);
        anv_free(af->tmp);
        return -1;
    }
    snprintf(af->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        int e = errno;
        anv_free(af->path);
        anv_free(af->tmp);
        memset(af, 0, sizeof *af);
        return anv_error("%s: cannot create: %s", path, strerror(e));
    }
    return 0;
}

int anv_atomic_write(anv_atomic_file_t *af, const void *data, size_t n) {
    if (af->failed) return -1;
    if (af->written + n > write_limit()) {
        af->failed = 1;
        return anv_error("%s: write failed: %s", af->path, strerror(ENOSPC));
    }
    if (n && fwrite(data, 1, n, af->f) != n) {
        af->failed = 1;
        return anv_error("%s: write failed: %s", af->path, strerror(errno));
    }
    af->written += n;
    return 0;
}

int anv_atomic_seek(anv_atomic_file_t *af, long offset) {
    if (af->failed) return -1;
    if (fseek(af->f, offset, SEEK_SET) != 0) {
        af->failed = 1;
        return anv_error("%s: seek failed: %s", af->path, strerror(errno));
    }
    return 0;
}

static void atomic_release(anv_atomic_file_t *af) {
    anv_free(af->path);
    anv_free(af->tmp);
    memset(af, 0, sizeof *af);
}

void anv_atomic_abort(anv_atomic_file_t *af) {
    if (!af->tmp) return;
    if (af->f) fclose(af->f);
    unlink(af->tmp);
    atomic_release(af);
}

int anv_atomic_commit(anv_atomic_file_t *af) {
    if (af->failed) {
        anv_atomic_abort(af);
        return -1;
    }
    int rc = 0;
    if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0)
        rc = anv_error("%s: write failed: %s", af->path, strerror(errno));
    if (fclose(af->f) != 0 && rc == 0) rc = anv_error("%s: close failed: %s", af->path, strerror(errno));
    af->f = NULL;
    if (rc == 0 && rename(af->tmp, af->path) != 0) rc = anv_error("%s: rename failed: %s", af->path, strerror(errno));
    if (rc != 0) {
        unlink(af->tmp);
        atomic_release(af);
        return rc;
    }
    /* Make the rename itself durable. */
    char *dir_copy = anv_strdup(af->path);
    if (dir_copy) {
        int dfd = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        anv_free(dir_copy);
    }
    atomic_release(af);
    return 0;
}

int anv_write_file_atomic(const char *path, const void *data, size_t n) {
    anv_atomic_file_t af;
    if (anv_atomic_open(&af, path) != 0) return -1;
    if (anv_atomic_write(&af, data, n) != 0) {
        anv_atomic_abort(&af);
        return -1;
    }
    return anv_atomic_commit(&af);
}

int anv_copy_file_atomic(const char *from, const char *to) {
    char *data;
    size_t len;
    if (anv_read_file(from, &data, &len) != 0) return -1;
    int rc = anv_write_file_atomic(to, data, len);
    anv_free(data);
    return rc;
}

int anv_mmap_open(const char *path, anv_mmap_t *m) {
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return anv_error("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return anv_error("%s: not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return anv_error("%s: mmap failed: %s", path, strerror(e));
        }
        m->data = p;
        m->size = (size_t)st.st_size;
    }
    close(fd);
    return 0;
}

void anv_mmap_close(anv_mmap_t *m) {
    if (m->data) munmap(m->data, m->size);
    m->data = NULL;
    m->size = 0;
}
