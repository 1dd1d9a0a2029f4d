/* The bpf(2) system call and the pieces of `union bpf_attr` / `struct bpf_prog_info` that
 * ebpfjit/kernel.py uses, as named structs so cffi can declare and check them.
 *
 * The uapi header is deliberately not included here: this file is #included into the cffi
 * module next to every other csrc header, and <linux/bpf.h> defines BPF_* macros that would
 * leak into their namespace. kernel.c includes the uapi header instead and static-asserts
 * that every field below sits at the uapi offset, so the layout has one source of truth. The
 * padding fields make the 8-byte alignment of `__aligned_u64` explicit; the layout is the
 * same on x86-64 and aarch64 (LP64, little endian).
 */
#ifndef EBPFJIT_KERNEL_SYS_H
#define EBPFJIT_KERNEL_SYS_H

#include <stdint.h>
/* cffi:begin */

#define EBPFJIT_BPF_OBJ_NAME_LEN 16
#define EBPFJIT_BPF_TAG_SIZE 8

/* BPF_MAP_CREATE */
struct ebpfjit_bpf_map_create_attr {
    uint32_t map_type;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
    uint32_t map_flags;
    uint32_t inner_map_fd;
    uint32_t numa_node;
    char map_name[EBPFJIT_BPF_OBJ_NAME_LEN];
    uint32_t map_ifindex;
    uint32_t btf_fd;
    uint32_t btf_key_type_id;
    uint32_t btf_value_type_id;
    uint32_t btf_vmlinux_value_type_id;
    uint64_t map_extra;
};

/* BPF_MAP_{LOOKUP,UPDATE,DELETE}_ELEM, BPF_MAP_GET_NEXT_KEY, BPF_MAP_FREEZE */
struct ebpfjit_bpf_map_elem_attr {
    uint32_t map_fd;
    uint32_t pad0;
    uint64_t key;
    uint64_t value;     /* or next_key */
    uint64_t flags;
};

/* BPF_PROG_LOAD */
struct ebpfjit_bpf_prog_load_attr {
    uint32_t prog_type;
    uint32_t insn_cnt;
    uint64_t insns;
    uint64_t license;
    uint32_t log_level;
    uint32_t log_size;
    uint64_t log_buf;
    uint32_t kern_version;
    uint32_t prog_flags;
    char prog_name[EBPFJIT_BPF_OBJ_NAME_LEN];
    uint32_t prog_ifindex;
    uint32_t expected_attach_type;
    uint32_t prog_btf_fd;
    uint32_t func_info_rec_size;
    uint64_t func_info;
    uint32_t func_info_cnt;
    uint32_t line_info_rec_size;
    uint64_t line_info;
    uint32_t line_info_cnt;
    uint32_t attach_btf_id;
    uint32_t attach_prog_fd;
    uint32_t core_relo_cnt;
    uint64_t fd_array;
    uint64_t core_relos;
    uint32_t core_relo_rec_size;
    uint32_t pad0;
};

/* BPF_PROG_TEST_RUN */
struct ebpfjit_bpf_test_run_attr {
    uint32_t prog_fd;
    uint32_t retval;
    uint32_t data_size_in;
    uint32_t data_size_out;
    uint64_t data_in;
    uint64_t data_out;
    uint32_t repeat;
    uint32_t duration;
    uint32_t ctx_size_in;
    uint32_t ctx_size_out;
    uint64_t ctx_in;
    uint64_t ctx_out;
    uint32_t flags;
    uint32_t cpu;
    uint32_t batch_size;
    uint32_t pad0;
};

/* BPF_BTF_LOAD */
struct ebpfjit_bpf_btf_load_attr {
    uint64_t btf;
    uint64_t btf_log_buf;
    uint32_t btf_size;
    uint32_t btf_log_size;
    uint32_t btf_log_level;
    uint32_t pad0;
};

/* BPF_OBJ_GET_INFO_BY_FD */
struct ebpfjit_bpf_info_attr {
    uint32_t bpf_fd;
    uint32_t info_len;
    uint64_t info;
};

/* struct bpf_prog_info; `flags` bit 0 is the uapi bitfield gpl_compatible. */
struct ebpfjit_bpf_prog_info {
    uint32_t type;
    uint32_t id;
    uint8_t tag[EBPFJIT_BPF_TAG_SIZE];
    uint32_t jited_prog_len;
    uint32_t xlated_prog_len;
    uint64_t jited_prog_insns;
    uint64_t xlated_prog_insns;
    uint64_t load_time;
    uint32_t created_by_uid;
    uint32_t nr_map_ids;
    uint64_t map_ids;
    char name[EBPFJIT_BPF_OBJ_NAME_LEN];
    uint32_t ifindex;
    uint32_t flags;
    uint64_t netns_dev;
    uint64_t netns_ino;
    uint32_t nr_jited_ksyms;
    uint32_t nr_jited_func_lens;
    uint64_t jited_ksyms;
    uint64_t jited_func_lens;
    uint32_t btf_id;
    uint32_t func_info_rec_size;
    uint64_t func_info;
    uint32_t nr_func_info;
    uint32_t nr_line_info;
    uint64_t line_info;
    uint64_t jited_line_info;
    uint32_t nr_jited_line_info;
    uint32_t line_info_rec_size;
    uint32_t jited_line_info_rec_size;
    uint32_t nr_prog_tags;
    uint64_t prog_tags;
    uint64_t run_time_ns;
    uint64_t run_cnt;
    uint64_t recursion_misses;
    uint32_t verified_insns;
    uint32_t attach_btf_obj_id;
    uint32_t attach_btf_id;
    uint32_t pad0;
};

/* struct bpf_map_info */
struct ebpfjit_bpf_map_info {
    uint32_t type;
    uint32_t id;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
    uint32_t map_flags;
    char name[EBPFJIT_BPF_OBJ_NAME_LEN];
    uint32_t ifindex;
    uint32_t btf_vmlinux_value_type_id;
    uint64_t netns_dev;
    uint64_t netns_ino;
    uint32_t btf_id;
    uint32_t btf_key_type_id;
    uint32_t btf_value_type_id;
    uint32_t pad0;
    uint64_t map_extra;
};

/* bpf(cmd, attr, size): the new fd or 0 on success, -errno on failure (never sets errno). */
long ebpfjit_sys_bpf(int cmd, void *attr, unsigned int size);
/* One BPF_PROG_TEST_RUN (repeat 1) per packet from C, for `ebpfjit compare` over a capture:
 * packets laid end to end in `data` (lengths `lens`); retvals[i] and the output packet appended
 * to `out` (out_lens[i] bytes; each packet gets len + 4096 bytes of room, as kernel.py's
 * test_run). Returns the packets run; it stops early with *err = 0 when `out` has no room for
 * the next one, and with *err = -errno when the kernel refused a run (that packet not run). */
int64_t ebpfjit_kernel_test_run_batch(uint32_t prog_fd, const char *data, const uint32_t *lens,
                                      uint64_t n, uint32_t *retvals, char *out, uint64_t out_cap,
                                      uint32_t *out_lens, uint64_t *out_used, long *err);


/* cffi:end */
#endif /* EBPFJIT_KERNEL_SYS_H */
