#include "plugin_host.h"
#include "buf.h"
#include "log.h"
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Loaded images, guarded by g_lock (touched only at load/unload, never per request). */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static llmux_plugin_image *g_images[256];
static int g_n_images;
static unsigned g_generation;

static int read_file(const char *path, llmux_buf *out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno)); return -1; }
    char tmp[65536];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n < 0) { if (errno == EINTR) continue; snprintf(err, errlen, "read %s: %s", path, strerror(errno)); close(fd); return -1; }
        if (n == 0) break;
        if (llmux_buf_append(out, tmp, (size_t)n)) { snprintf(err, errlen, "out of memory"); close(fd); return -1; }
    }
    close(fd);
    return 0;
}

/* Two independent 64-bit FNV-1a lanes: a content address, not a security boundary. */
static void content_hash(const llmux_buf *b, char out[33])
{
    uint64_t h1 = 0xcbf29ce484222325ull, h2 = 0x84222325cbf29ce4ull;
    for (size_t i = 0; i < b->len; i++) {
        h1 = (h1 ^ (unsigned char)b->data[i]) * 0x100000001b3ull;
        h2 = (h2 ^ (unsigned char)b->data[b->len - 1 - i]) * 0x100000001b3ull;
    }
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h1, (unsigned long long)h2);
}

static int mkdir_p(const char *dir)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0700) < 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

static int write_copy(const char *path, const llmux_buf *b, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) == 0 && (size_t)st.st_size == b->len) return 0; /* same content already cached */
    char tmp[1100];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
        snprintf(err, errlen, "plugin cache path too long");
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) { snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno)); return -1; }
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = write(fd, b->data + off, b->len - off);
        if (n < 0) { if (errno == EINTR) continue; close(fd); unlink(tmp); snprintf(err, errlen, "write %s: %s", tmp, strerror(errno)); return -1; }
        off += (size_t)n;
    }
    close(fd);
    if (rename(tmp, path) < 0) { unlink(tmp); snprintf(err, errlen, "rename %s: %s", path, strerror(errno)); return -1; }
    return 0;
}

static int validate(const llmux_plugin *d, const char *name, char *err, size_t errlen)
{
    if (!d) { snprintf(err, errlen, "plugin %s: entry returned NULL", name); return -1; }
    if (d->magic != LLMUX_PLUGIN_MAGIC) { snprintf(err, errlen, "plugin %s: bad magic 0x%08x", name, d->magic); return -1; }
    if (d->abi_major != LLMUX_ABI_MAJOR) {
        snprintf(err, errlen, "plugin %s: ABI major %u, host speaks %u", name, d->abi_major, LLMUX_ABI_MAJOR);
        return -1;
    }
    size_t need = offsetof(llmux_plugin, fini) + sizeof d->fini;
    if (d->struct_size < need) { snprintf(err, errlen, "plugin %s: descriptor too small (%zu bytes)", name, d->struct_size); return -1; }
    if (!d->init || !d->prepare || !d->on_data || !d->on_done || !d->release) {
        snprintf(err, errlen, "plugin %s: a required callback is NULL", name);
        return -1;
    }
    return 0;
}

/* Serialises "copy + dlopen + register" against "unregister + dlclose + unlink"
 * so a copy is never removed between another load's write and its dlopen. Taken
 * only at load and unload time, never per request. Lock order: g_cache_lock, g_lock. */
static pthread_mutex_t g_cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* Removes a cache copy unless a registered image still maps it. Caller holds g_cache_lock. */
static void drop_copy(const char *path)
{
    pthread_mutex_lock(&g_lock);
    int used = 0;
    for (int i = 0; i < g_n_images && !used; i++) used = strcmp(g_images[i]->loaded_path, path) == 0;
    pthread_mutex_unlock(&g_lock);
    if (!used && unlink(path) < 0 && errno != ENOENT)
        llmux_log(LLMUX_LOG_WARN, "plugin cache: cannot remove %s: %s", path, strerror(errno));
}

llmux_plugin_image *llmux_plugin_load(const char *plugin_dir, const char *cache_dir, const char *name,
                                      char *err, size_t errlen)
{
    for (const char *p = name; *p; p++)
        if (*p == '/' || *p == '.') { snprintf(err, errlen, "bad plugin name %s", name); return NULL; }
    char src[1024], dst[1200];
    snprintf(src, sizeof src, "%s/%s.so", plugin_dir, name);
    llmux_buf content = {0};
    if (read_file(src, &content, err, errlen)) { llmux_buf_free(&content); return NULL; }
    char hash[33];
    content_hash(&content, hash);

    pthread_mutex_lock(&g_cache_lock);
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_n_images; i++) {
        llmux_plugin_image *img = g_images[i];
        if (strcmp(img->name, name) == 0 && strcmp(img->hash, hash) == 0) {
            atomic_fetch_add(&img->refs, 1);
            pthread_mutex_unlock(&g_lock);
            pthread_mutex_unlock(&g_cache_lock);
            llmux_buf_free(&content);
            return img;
        }
    }
    int full = g_n_images >= (int)(sizeof g_images / sizeof g_images[0]);
    pthread_mutex_unlock(&g_lock);
    void *h = NULL;
    if (full) {
        snprintf(err, errlen, "plugin %s: too many plugin images loaded (old generations still draining)", name);
        goto fail_nocopy;
    }
    if (mkdir_p(cache_dir) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", cache_dir, strerror(errno));
        goto fail_nocopy;
    }
    snprintf(dst, sizeof dst, "%s/%s-%s.so", cache_dir, name, hash);
    if (write_copy(dst, &content, err, errlen)) goto fail_nocopy;
    h = dlopen(dst, RTLD_NOW | RTLD_LOCAL);
    if (!h && access(dst, F_OK) < 0 && write_copy(dst, &content, err, errlen) == 0)
        h = dlopen(dst, RTLD_NOW | RTLD_LOCAL); /* another process sharing the cache dir pruned it */
    if (!h) { snprintf(err, errlen, "plugin %s: dlopen: %s", name, dlerror()); goto fail; }
    llmux_plugin_entry_fn entry;
    *(void **)&entry = dlsym(h, LLMUX_PLUGIN_ENTRY);
    if (!entry) { snprintf(err, errlen, "plugin %s: no exported %s symbol (not an llmux plugin?)", name, LLMUX_PLUGIN_ENTRY); goto fail; }
    const llmux_plugin *d = entry();
    if (validate(d, name, err, errlen)) goto fail;

    llmux_plugin_image *img = calloc(1, sizeof *img);
    if (!img) { snprintf(err, errlen, "out of memory"); goto fail; }
    /* An older minor's descriptor is shorter: copy what it has, the rest stays NULL. */
    memcpy(&img->d, d, d->struct_size < sizeof img->d ? d->struct_size : sizeof img->d);
    img->name = strdup(name);
    img->source_path = strdup(src);
    img->loaded_path = strdup(dst);
    memcpy(img->hash, hash, sizeof hash);
    img->handle = h;
    img->loaded_at = time(NULL);
    atomic_init(&img->refs, 1);
    pthread_mutex_lock(&g_lock);
    img->generation = ++g_generation;
    g_images[g_n_images++] = img;
    pthread_mutex_unlock(&g_lock);
    pthread_mutex_unlock(&g_cache_lock);
    llmux_buf_free(&content);
    llmux_log(LLMUX_LOG_INFO, "plugin %s %s loaded (abi %u.%u, %zu-byte descriptor, hash %.12s, generation %u)", name,
              d->version ? d->version : "?", d->abi_major, d->abi_minor, d->struct_size, hash, img->generation);
    return img;
fail:
    if (h) dlclose(h);
    drop_copy(dst); /* a refused build must not accumulate in the cache */
fail_nocopy:
    pthread_mutex_unlock(&g_cache_lock);
    llmux_buf_free(&content);
    llmux_log(LLMUX_LOG_WARN, "plugin %s refused: %s", name, err);
    return NULL;
}

void llmux_plugin_image_ref(llmux_plugin_image *img) { atomic_fetch_add(&img->refs, 1); }

void llmux_plugin_image_unref(llmux_plugin_image *img)
{
    if (!img) return;
    pthread_mutex_lock(&g_cache_lock);
    pthread_mutex_lock(&g_lock);
    if (atomic_fetch_sub(&img->refs, 1) != 1) {
        pthread_mutex_unlock(&g_lock);
        pthread_mutex_unlock(&g_cache_lock);
        return;
    }
    for (int i = 0; i < g_n_images; i++)
        if (g_images[i] == img) { g_images[i] = g_images[--g_n_images]; break; }
    pthread_mutex_unlock(&g_lock);
    char version[64]; /* the descriptor's strings live in the image: copy before dlclose */
    snprintf(version, sizeof version, "%s", img->d.version ? img->d.version : "?");
    dlclose(img->handle);
    /* Check the image really left the address space: a plugin with NODELETE or
     * unique (C++ inline static) symbols stays mapped after dlclose. */
    void *still = dlopen(img->loaded_path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (still) {
        dlclose(still);
        llmux_log(LLMUX_LOG_WARN, "plugin %s generation %u released but still mapped after dlclose", img->name,
                  img->generation);
    } else {
        llmux_log(LLMUX_LOG_INFO, "plugin %s %s generation %u unloaded", img->name, version, img->generation);
    }
    drop_copy(img->loaded_path);
    pthread_mutex_unlock(&g_cache_lock);
    free(img->name);
    free(img->source_path);
    free(img->loaded_path);
    free(img);
}

int llmux_plugin_list_json(llmux_buf *out)
{
    int rc = llmux_buf_append_char(out, '[');
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_n_images; i++) {
        llmux_plugin_image *img = g_images[i];
        if (i) rc |= llmux_buf_append_char(out, ',');
        rc |= llmux_buf_append_str(out, "{\"name\":");
        rc |= llmux_buf_append_jstr(out, img->name);
        rc |= llmux_buf_append_str(out, ",\"version\":");
        rc |= llmux_buf_append_jstr(out, img->d.version ? img->d.version : "");
        rc |= llmux_buf_printf(out, ",\"abi\":\"%u.%u\",\"generation\":%u,\"hash\":\"%s\",\"inflight\":%d,"
                                    "\"refs\":%d,\"loaded_at\":%lld,\"path\":",
                               img->d.abi_major, img->d.abi_minor, img->generation, img->hash,
                               atomic_load(&img->inflight), atomic_load(&img->refs), (long long)img->loaded_at);
        rc |= llmux_buf_append_jstr(out, img->loaded_path);
        rc |= llmux_buf_append_char(out, '}');
    }
    pthread_mutex_unlock(&g_lock);
    rc |= llmux_buf_append_char(out, ']');
    return rc;
}
