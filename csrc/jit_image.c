/* jit_image.c: loads JIT images (format and rules in jit_image.h). */
#define _GNU_SOURCE
#include "jit_image.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "jit_support.h"

#define IMAGE_MAGIC "EBPFIMG1"

static int fail(char *err, uint32_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* libc functions LLVM may call on its own (it turns loops and aggregate copies into them);
 * LLJIT found them in the process, the loader names them. */
static const struct ebpfjit_jit_import libc_imports[] = {
    {"memset", (const void *)memset},
    {"memcpy", (const void *)memcpy},
    {"memmove", (const void *)memmove},
    {"memcmp", (const void *)memcmp},
    {"bcmp", (const void *)memcmp},     /* bcmp's contract is a subset of memcmp's */
};

static const void *resolve(const char *name)
{
    uint32_t n = 0;
    const struct ebpfjit_jit_import *table = ebpfjit_jit_imports(&n);
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(table[i].name, name) == 0)
            return table[i].addr;
    for (size_t i = 0; i < sizeof(libc_imports) / sizeof(libc_imports[0]); i++)
        if (strcmp(libc_imports[i].name, name) == 0)
            return libc_imports[i].addr;
    return NULL;
}

int ebpfjit_image_load(const uint8_t *blob, uint64_t len, struct ebpfjit_image *out, char *err,
                       uint32_t errlen)
{
    const void *imports[EBPFJIT_IMAGE_MAX_IMPORTS];
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

    memset(out, 0, sizeof(*out));
    if (!blob || len < EBPFJIT_IMAGE_HEADER_SIZE)
        return fail(err, errlen, "image too short (%llu bytes)", (unsigned long long)len);
    if (memcmp(blob, IMAGE_MAGIC, 8) != 0)
        return fail(err, errlen, "not a JIT image (bad magic)");
    uint32_t machine = rd32(blob + 8), flags = rd32(blob + 12);
    uint64_t exec_size = rd32(blob + 16), mem_size = rd32(blob + 20);
    uint64_t content = rd32(blob + 24), entry = rd32(blob + 28), callback = rd32(blob + 32);
    uint64_t nimports = rd32(blob + 36), nrelocs = rd32(blob + 40);
#if defined(__x86_64__)
    const uint32_t host_machine = 62;   /* EM_X86_64 */
#else
    const uint32_t host_machine = 0;    /* no image is ever valid here: LLJIT loads instead */
#endif
    if (machine != host_machine || host_machine == 0)
        return fail(err, errlen, "image for machine %u, not this host's", machine);
    if (flags != 0)
        return fail(err, errlen, "image has unknown flags");
    if (exec_size == 0 || exec_size % page || mem_size % page || exec_size > mem_size ||
        mem_size > EBPFJIT_IMAGE_MAX_SIZE)
        return fail(err, errlen, "image sizes (code %llu, memory %llu) are not page multiples "
                    "within %u bytes", (unsigned long long)exec_size,
                    (unsigned long long)mem_size, (unsigned)EBPFJIT_IMAGE_MAX_SIZE);
    if (content > mem_size)
        return fail(err, errlen, "image content (%llu bytes) exceeds its memory size",
                    (unsigned long long)content);
    if (rd32(blob + 44) > exec_size)
        return fail(err, errlen, "image code size exceeds its code pages");
    if (entry >= exec_size || (callback != EBPFJIT_IMAGE_NO_CALLBACK && callback >= exec_size))
        return fail(err, errlen, "image entry point outside its code");
    if (nimports > EBPFJIT_IMAGE_MAX_IMPORTS || nrelocs > mem_size / 8)
        return fail(err, errlen, "image has too many imports or relocations");
    uint64_t names = EBPFJIT_IMAGE_HEADER_SIZE;
    uint64_t relocs = names + nimports * EBPFJIT_IMAGE_NAME_LEN;
    uint64_t bytes = relocs + nrelocs * EBPFJIT_IMAGE_RELOC_SIZE;
    if (bytes + content != len)
        return fail(err, errlen, "image length %llu does not match its header (%llu)",
                    (unsigned long long)len, (unsigned long long)(bytes + content));
    for (uint64_t i = 0; i < nimports; i++) {
        char name[EBPFJIT_IMAGE_NAME_LEN];
        memcpy(name, blob + names + i * EBPFJIT_IMAGE_NAME_LEN, sizeof(name));
        if (name[sizeof(name) - 1] != 0)
            return fail(err, errlen, "image import %llu: name not NUL-terminated",
                        (unsigned long long)i);
        imports[i] = resolve(name);
        if (!imports[i])
            return fail(err, errlen, "image imports unknown symbol '%s'", name);
    }
    /* Check every relocation before anything is mapped. */
    for (uint64_t i = 0; i < nrelocs; i++) {
        const uint8_t *r = blob + relocs + i * EBPFJIT_IMAGE_RELOC_SIZE;
        uint64_t off = rd32(r);
        uint16_t kind, index;
        int64_t addend;
        memcpy(&kind, r + 4, 2);
        memcpy(&index, r + 6, 2);
        memcpy(&addend, r + 8, 8);
        if (off < exec_size || off + 8 > mem_size)
            return fail(err, errlen, "image relocation %llu at offset %llu: not in its data",
                        (unsigned long long)i, (unsigned long long)off);
        if (kind == EBPFJIT_IMAGE_IMPORT_ABS64) {
            if (index >= nimports)
                return fail(err, errlen, "image relocation %llu: import %u of %llu",
                            (unsigned long long)i, index, (unsigned long long)nimports);
        } else if (kind == EBPFJIT_IMAGE_BASE_ABS64) {
            if (addend < 0 || (uint64_t)addend > mem_size)
                return fail(err, errlen, "image relocation %llu: target outside the image",
                            (unsigned long long)i);
        } else {
            return fail(err, errlen, "image relocation %llu: unknown kind %u",
                        (unsigned long long)i, kind);
        }
    }
    uint8_t *base = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
    if (base == MAP_FAILED)
        return fail(err, errlen, "cannot map %llu bytes for the image",
                    (unsigned long long)mem_size);
    memcpy(base, blob + bytes, content);
    for (uint64_t i = 0; i < nrelocs; i++) {
        const uint8_t *r = blob + relocs + i * EBPFJIT_IMAGE_RELOC_SIZE;
        uint64_t off = rd32(r);
        uint16_t kind, index;
        int64_t addend;
        uint64_t value;
        memcpy(&kind, r + 4, 2);
        memcpy(&index, r + 6, 2);
        memcpy(&addend, r + 8, 8);
        if (kind == EBPFJIT_IMAGE_IMPORT_ABS64)
            value = (uint64_t)(uintptr_t)imports[index] + (uint64_t)addend;
        else
            value = (uint64_t)(uintptr_t)base + (uint64_t)addend;
        memcpy(base + off, &value, 8);
    }
    if (mprotect(base, exec_size, PROT_READ | PROT_EXEC) != 0 ||
        (mem_size > exec_size &&
         mprotect(base + exec_size, mem_size - exec_size, PROT_READ) != 0)) {
        munmap(base, mem_size);
        return fail(err, errlen, "cannot protect the image's pages");
    }
    out->base = base;
    out->size = mem_size;
    out->exec_size = exec_size;
    out->entry = (uint64_t)(uintptr_t)(base + entry);
    out->callback = callback == EBPFJIT_IMAGE_NO_CALLBACK ? 0
                                                          : (uint64_t)(uintptr_t)(base + callback);
    return 0;
}

void ebpfjit_image_free(struct ebpfjit_image *img)
{
    if (img && img->base) {
        munmap(img->base, img->size);
        memset(img, 0, sizeof(*img));
    }
}

#if defined(__x86_64__)
#include <cpuid.h>

static void leaf(uint32_t *out, uint32_t *n, uint32_t max, uint32_t top, uint32_t id,
                 uint32_t sub, uint32_t mask_ebx)
{
    uint32_t a = 0, b = 0, c = 0, d = 0;
    if (id <= top)
        __cpuid_count(id, sub, a, b, c, d);
    uint32_t words[5] = {id, a, b & mask_ebx, c, d};
    for (int i = 0; i < 5 && *n < max; i++)
        out[(*n)++] = words[i];
}

uint32_t ebpfjit_host_cpu_id(uint32_t *out, uint32_t max)
{
    uint32_t n = 0, a, b, c, d;
    __cpuid(0, a, b, c, d);
    uint32_t top = a;
    __cpuid(0x80000000, a, b, c, d);
    uint32_t ext = a;
    leaf(out, &n, max, top, 0, 0, ~0u);
    /* Leaf 1's EBX holds the APIC id and the logical-processor count: per core, unused by
     * LLVM's feature detection. */
    leaf(out, &n, max, top, 1, 0, 0);
    leaf(out, &n, max, top, 7, 0, ~0u);
    leaf(out, &n, max, top, 7, 1, ~0u);
    leaf(out, &n, max, top, 0xd, 1, ~0u);
    leaf(out, &n, max, top, 0x14, 0, ~0u);
    leaf(out, &n, max, top, 0x19, 0, ~0u);
    leaf(out, &n, max, top, 0x24, 0, ~0u);
    leaf(out, &n, max, ext, 0x80000000, 0, ~0u);
    leaf(out, &n, max, ext, 0x80000001, 0, ~0u);
    leaf(out, &n, max, ext, 0x80000008, 0, ~0u);
    uint32_t lo = 0, hi = 0;
    __cpuid(1, a, b, c, d);
    if (c & (1u << 27))     /* OSXSAVE: XCR0 says which register states the OS enabled */
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if (n < max)
        out[n++] = lo;
    if (n < max)
        out[n++] = hi;
    return n;
}
#else
uint32_t ebpfjit_host_cpu_id(uint32_t *out, uint32_t max)
{
    (void)out;
    (void)max;
    return 0;
}
#endif
