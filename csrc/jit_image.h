/* jit_image.h: the loader of JIT images (owned by the JIT; see ebpfjit/jit/image.py).
 *
 * A JIT image is position-independent machine code laid out as it will sit in memory, plus
 * the few 64-bit words that need a process address: the image's own base (a GOT slot of a
 * local symbol) or a runtime function of the JIT import table (csrc/jit_support.c) or of libc
 * (memset & co.). ebpfjit/jit/image.py makes one from the relocatable object LLVM emits (every
 * PC-relative relocation resolved there); the on-disk cache stores it; this loader maps it
 * without LLVM: read-write anonymous memory, the bytes copied in, the words patched, then the
 * code pages made read+execute and the rest read-only (W^X: no page is ever writable and
 * executable at once; code pages are never patched at load). Every field is checked before
 * use (the cache authenticates its entries, this does not rely on it): a bad image is an error
 * message, never a crash and never executable memory.
 *
 * Layout (little-endian):
 *   header (48 bytes): magic "EBPFIMG1", machine (ELF e_machine), flags (0), exec_size,
 *     mem_size, content_size, entry, callback (EBPFJIT_IMAGE_NO_CALLBACK: none), nimports,
 *     nrelocs, code_bytes (the functions' size, informational, <= exec_size)
 *   nimports names, EBPFJIT_IMAGE_NAME_LEN bytes each, NUL-padded
 *   nrelocs relocations: u32 offset, u16 kind, u16 index, i64 addend
 *   content_size bytes: the image's first bytes (the rest up to mem_size is zero)
 */
#ifndef EBPFJIT_JIT_IMAGE_H
#define EBPFJIT_JIT_IMAGE_H

#include <stdint.h>

/* cffi:begin */
#define EBPFJIT_IMAGE_HEADER_SIZE 48
#define EBPFJIT_IMAGE_NAME_LEN 48
#define EBPFJIT_IMAGE_RELOC_SIZE 16
#define EBPFJIT_IMAGE_MAX_SIZE (64 << 20)
#define EBPFJIT_IMAGE_MAX_IMPORTS 256
#define EBPFJIT_IMAGE_NO_CALLBACK 0xFFFFFFFF
/* Relocation kinds: the 64-bit word at `offset` becomes import[index] + addend, or the image's
 * base + addend. */
#define EBPFJIT_IMAGE_IMPORT_ABS64 1
#define EBPFJIT_IMAGE_BASE_ABS64 2

/* A loaded image: `entry` is the ebpfjit_jit_fn, `callback` the ebpfjit_jit_callback_fn or 0. */
struct ebpfjit_image {
    void *base;
    uint64_t size;
    uint64_t exec_size;
    uint64_t entry;
    uint64_t callback;
};

/* Map `blob[0..len)` (an image as above) into *out. Returns 0, or -1 with a NUL-terminated
 * reason in err[0..errlen) and nothing mapped. */
int ebpfjit_image_load(const uint8_t *blob, uint64_t len, struct ebpfjit_image *out, char *err,
                       uint32_t errlen);
/* Unmap a loaded image (no-op on one never loaded or already freed). */
void ebpfjit_image_free(struct ebpfjit_image *img);

/* The host CPU's identity as LLVM sees it when it picks the host CPU name and features (x86:
 * the cpuid leaves and XCR0 it reads, per-core fields such as the APIC id left out): up to
 * `max` words into out; returns how many (0: not available on this architecture). */
uint32_t ebpfjit_host_cpu_id(uint32_t *out, uint32_t max);
/* cffi:end */
#endif
