/* bpf(2) for ebpfjit/kernel.py: the raw system call, plus compile-time proof that the attr and
 * info structs in kernel_sys.h match the uapi layout of the architecture being built.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/bpf.h>

#include "kernel_sys.h"

long ebpfjit_sys_bpf(int cmd, void *attr, unsigned int size)
{
    long r = syscall(__NR_bpf, cmd, attr, size);
    return r < 0 ? -(long)errno : r;
}

#define TEST_RUN_ROOM 4096

int64_t ebpfjit_kernel_test_run_batch(uint32_t prog_fd, const char *data, const uint32_t *lens,
                                      uint64_t n, uint32_t *retvals, char *out, uint64_t out_cap,
                                      uint32_t *out_lens, uint64_t *out_used, long *err)
{
    struct ebpfjit_bpf_test_run_attr attr;
    uint64_t i, off = 0, used = 0, room;
    long r;

    *err = 0;
    for (i = 0; i < n; i++) {
        room = (uint64_t)lens[i] + TEST_RUN_ROOM;
        if (out_cap - used < room)
            break;
        memset(&attr, 0, sizeof(attr));
        attr.prog_fd = prog_fd;
        attr.data_in = (uint64_t)(uintptr_t)(data + off);
        attr.data_size_in = lens[i];
        attr.data_out = (uint64_t)(uintptr_t)(out + used);
        attr.data_size_out = (uint32_t)room;
        r = ebpfjit_sys_bpf(BPF_PROG_TEST_RUN, &attr, sizeof(attr));
        if (r < 0) {
            *err = r;
            break;
        }
        retvals[i] = attr.retval;
        out_lens[i] = attr.data_size_out < room ? attr.data_size_out : (uint32_t)room;
        used += out_lens[i];
        off += lens[i];
    }
    *out_used = used;
    return (int64_t)i;
}

#define SAME(ours, field, theirs, theirs_field)                                        \
    _Static_assert(offsetof(struct ours, field) == offsetof(theirs, theirs_field),     \
                   #ours "." #field " is not at the uapi offset")

/* Each mirror must cover the uapi fields it names and no more than the union. */
#define FITS(ours) _Static_assert(sizeof(struct ours) <= sizeof(union bpf_attr), #ours " too big")

SAME(ebpfjit_bpf_map_create_attr, map_type, union bpf_attr, map_type);
SAME(ebpfjit_bpf_map_create_attr, key_size, union bpf_attr, key_size);
SAME(ebpfjit_bpf_map_create_attr, value_size, union bpf_attr, value_size);
SAME(ebpfjit_bpf_map_create_attr, max_entries, union bpf_attr, max_entries);
SAME(ebpfjit_bpf_map_create_attr, map_flags, union bpf_attr, map_flags);
SAME(ebpfjit_bpf_map_create_attr, inner_map_fd, union bpf_attr, inner_map_fd);
SAME(ebpfjit_bpf_map_create_attr, numa_node, union bpf_attr, numa_node);
SAME(ebpfjit_bpf_map_create_attr, map_name, union bpf_attr, map_name);
SAME(ebpfjit_bpf_map_create_attr, map_ifindex, union bpf_attr, map_ifindex);
SAME(ebpfjit_bpf_map_create_attr, btf_fd, union bpf_attr, btf_fd);
SAME(ebpfjit_bpf_map_create_attr, btf_key_type_id, union bpf_attr, btf_key_type_id);
SAME(ebpfjit_bpf_map_create_attr, btf_value_type_id, union bpf_attr, btf_value_type_id);
SAME(ebpfjit_bpf_map_create_attr, btf_vmlinux_value_type_id, union bpf_attr, btf_vmlinux_value_type_id);
SAME(ebpfjit_bpf_map_create_attr, map_extra, union bpf_attr, map_extra);
FITS(ebpfjit_bpf_map_create_attr);

SAME(ebpfjit_bpf_map_elem_attr, map_fd, union bpf_attr, map_fd);
SAME(ebpfjit_bpf_map_elem_attr, key, union bpf_attr, key);
SAME(ebpfjit_bpf_map_elem_attr, value, union bpf_attr, value);
SAME(ebpfjit_bpf_map_elem_attr, value, union bpf_attr, next_key);
SAME(ebpfjit_bpf_map_elem_attr, flags, union bpf_attr, flags);
FITS(ebpfjit_bpf_map_elem_attr);

SAME(ebpfjit_bpf_prog_load_attr, prog_type, union bpf_attr, prog_type);
SAME(ebpfjit_bpf_prog_load_attr, insn_cnt, union bpf_attr, insn_cnt);
SAME(ebpfjit_bpf_prog_load_attr, insns, union bpf_attr, insns);
SAME(ebpfjit_bpf_prog_load_attr, license, union bpf_attr, license);
SAME(ebpfjit_bpf_prog_load_attr, log_level, union bpf_attr, log_level);
SAME(ebpfjit_bpf_prog_load_attr, log_size, union bpf_attr, log_size);
SAME(ebpfjit_bpf_prog_load_attr, log_buf, union bpf_attr, log_buf);
SAME(ebpfjit_bpf_prog_load_attr, kern_version, union bpf_attr, kern_version);
SAME(ebpfjit_bpf_prog_load_attr, prog_flags, union bpf_attr, prog_flags);
SAME(ebpfjit_bpf_prog_load_attr, prog_name, union bpf_attr, prog_name);
SAME(ebpfjit_bpf_prog_load_attr, prog_ifindex, union bpf_attr, prog_ifindex);
SAME(ebpfjit_bpf_prog_load_attr, expected_attach_type, union bpf_attr, expected_attach_type);
SAME(ebpfjit_bpf_prog_load_attr, prog_btf_fd, union bpf_attr, prog_btf_fd);
SAME(ebpfjit_bpf_prog_load_attr, func_info_rec_size, union bpf_attr, func_info_rec_size);
SAME(ebpfjit_bpf_prog_load_attr, func_info, union bpf_attr, func_info);
SAME(ebpfjit_bpf_prog_load_attr, func_info_cnt, union bpf_attr, func_info_cnt);
SAME(ebpfjit_bpf_prog_load_attr, line_info_rec_size, union bpf_attr, line_info_rec_size);
SAME(ebpfjit_bpf_prog_load_attr, line_info, union bpf_attr, line_info);
SAME(ebpfjit_bpf_prog_load_attr, line_info_cnt, union bpf_attr, line_info_cnt);
SAME(ebpfjit_bpf_prog_load_attr, attach_btf_id, union bpf_attr, attach_btf_id);
SAME(ebpfjit_bpf_prog_load_attr, attach_prog_fd, union bpf_attr, attach_prog_fd);
SAME(ebpfjit_bpf_prog_load_attr, core_relo_cnt, union bpf_attr, core_relo_cnt);
SAME(ebpfjit_bpf_prog_load_attr, fd_array, union bpf_attr, fd_array);
SAME(ebpfjit_bpf_prog_load_attr, core_relos, union bpf_attr, core_relos);
SAME(ebpfjit_bpf_prog_load_attr, core_relo_rec_size, union bpf_attr, core_relo_rec_size);
FITS(ebpfjit_bpf_prog_load_attr);

SAME(ebpfjit_bpf_test_run_attr, prog_fd, union bpf_attr, test.prog_fd);
SAME(ebpfjit_bpf_test_run_attr, retval, union bpf_attr, test.retval);
SAME(ebpfjit_bpf_test_run_attr, data_size_in, union bpf_attr, test.data_size_in);
SAME(ebpfjit_bpf_test_run_attr, data_size_out, union bpf_attr, test.data_size_out);
SAME(ebpfjit_bpf_test_run_attr, data_in, union bpf_attr, test.data_in);
SAME(ebpfjit_bpf_test_run_attr, data_out, union bpf_attr, test.data_out);
SAME(ebpfjit_bpf_test_run_attr, repeat, union bpf_attr, test.repeat);
SAME(ebpfjit_bpf_test_run_attr, duration, union bpf_attr, test.duration);
SAME(ebpfjit_bpf_test_run_attr, ctx_size_in, union bpf_attr, test.ctx_size_in);
SAME(ebpfjit_bpf_test_run_attr, ctx_size_out, union bpf_attr, test.ctx_size_out);
SAME(ebpfjit_bpf_test_run_attr, ctx_in, union bpf_attr, test.ctx_in);
SAME(ebpfjit_bpf_test_run_attr, ctx_out, union bpf_attr, test.ctx_out);
SAME(ebpfjit_bpf_test_run_attr, flags, union bpf_attr, test.flags);
SAME(ebpfjit_bpf_test_run_attr, cpu, union bpf_attr, test.cpu);
SAME(ebpfjit_bpf_test_run_attr, batch_size, union bpf_attr, test.batch_size);
FITS(ebpfjit_bpf_test_run_attr);

SAME(ebpfjit_bpf_btf_load_attr, btf, union bpf_attr, btf);
SAME(ebpfjit_bpf_btf_load_attr, btf_log_buf, union bpf_attr, btf_log_buf);
SAME(ebpfjit_bpf_btf_load_attr, btf_size, union bpf_attr, btf_size);
SAME(ebpfjit_bpf_btf_load_attr, btf_log_size, union bpf_attr, btf_log_size);
SAME(ebpfjit_bpf_btf_load_attr, btf_log_level, union bpf_attr, btf_log_level);
FITS(ebpfjit_bpf_btf_load_attr);

SAME(ebpfjit_bpf_info_attr, bpf_fd, union bpf_attr, info.bpf_fd);
SAME(ebpfjit_bpf_info_attr, info_len, union bpf_attr, info.info_len);
SAME(ebpfjit_bpf_info_attr, info, union bpf_attr, info.info);
FITS(ebpfjit_bpf_info_attr);

SAME(ebpfjit_bpf_prog_info, type, struct bpf_prog_info, type);
SAME(ebpfjit_bpf_prog_info, id, struct bpf_prog_info, id);
SAME(ebpfjit_bpf_prog_info, tag, struct bpf_prog_info, tag);
SAME(ebpfjit_bpf_prog_info, jited_prog_len, struct bpf_prog_info, jited_prog_len);
SAME(ebpfjit_bpf_prog_info, xlated_prog_len, struct bpf_prog_info, xlated_prog_len);
SAME(ebpfjit_bpf_prog_info, jited_prog_insns, struct bpf_prog_info, jited_prog_insns);
SAME(ebpfjit_bpf_prog_info, xlated_prog_insns, struct bpf_prog_info, xlated_prog_insns);
SAME(ebpfjit_bpf_prog_info, load_time, struct bpf_prog_info, load_time);
SAME(ebpfjit_bpf_prog_info, created_by_uid, struct bpf_prog_info, created_by_uid);
SAME(ebpfjit_bpf_prog_info, nr_map_ids, struct bpf_prog_info, nr_map_ids);
SAME(ebpfjit_bpf_prog_info, map_ids, struct bpf_prog_info, map_ids);
SAME(ebpfjit_bpf_prog_info, name, struct bpf_prog_info, name);
SAME(ebpfjit_bpf_prog_info, ifindex, struct bpf_prog_info, ifindex);
/* `flags` holds the gpl_compatible bitfield, which offsetof cannot name. */
SAME(ebpfjit_bpf_prog_info, netns_dev, struct bpf_prog_info, netns_dev);
SAME(ebpfjit_bpf_prog_info, netns_ino, struct bpf_prog_info, netns_ino);
SAME(ebpfjit_bpf_prog_info, nr_jited_ksyms, struct bpf_prog_info, nr_jited_ksyms);
SAME(ebpfjit_bpf_prog_info, nr_jited_func_lens, struct bpf_prog_info, nr_jited_func_lens);
SAME(ebpfjit_bpf_prog_info, jited_ksyms, struct bpf_prog_info, jited_ksyms);
SAME(ebpfjit_bpf_prog_info, jited_func_lens, struct bpf_prog_info, jited_func_lens);
SAME(ebpfjit_bpf_prog_info, btf_id, struct bpf_prog_info, btf_id);
SAME(ebpfjit_bpf_prog_info, func_info_rec_size, struct bpf_prog_info, func_info_rec_size);
SAME(ebpfjit_bpf_prog_info, func_info, struct bpf_prog_info, func_info);
SAME(ebpfjit_bpf_prog_info, nr_func_info, struct bpf_prog_info, nr_func_info);
SAME(ebpfjit_bpf_prog_info, nr_line_info, struct bpf_prog_info, nr_line_info);
SAME(ebpfjit_bpf_prog_info, line_info, struct bpf_prog_info, line_info);
SAME(ebpfjit_bpf_prog_info, jited_line_info, struct bpf_prog_info, jited_line_info);
SAME(ebpfjit_bpf_prog_info, nr_jited_line_info, struct bpf_prog_info, nr_jited_line_info);
SAME(ebpfjit_bpf_prog_info, line_info_rec_size, struct bpf_prog_info, line_info_rec_size);
SAME(ebpfjit_bpf_prog_info, jited_line_info_rec_size, struct bpf_prog_info, jited_line_info_rec_size);
SAME(ebpfjit_bpf_prog_info, nr_prog_tags, struct bpf_prog_info, nr_prog_tags);
SAME(ebpfjit_bpf_prog_info, prog_tags, struct bpf_prog_info, prog_tags);
SAME(ebpfjit_bpf_prog_info, run_time_ns, struct bpf_prog_info, run_time_ns);
SAME(ebpfjit_bpf_prog_info, run_cnt, struct bpf_prog_info, run_cnt);
SAME(ebpfjit_bpf_prog_info, recursion_misses, struct bpf_prog_info, recursion_misses);
SAME(ebpfjit_bpf_prog_info, verified_insns, struct bpf_prog_info, verified_insns);
SAME(ebpfjit_bpf_prog_info, attach_btf_obj_id, struct bpf_prog_info, attach_btf_obj_id);
SAME(ebpfjit_bpf_prog_info, attach_btf_id, struct bpf_prog_info, attach_btf_id);
_Static_assert(sizeof(struct ebpfjit_bpf_prog_info) == sizeof(struct bpf_prog_info),
               "ebpfjit_bpf_prog_info size differs from the uapi");

SAME(ebpfjit_bpf_map_info, type, struct bpf_map_info, type);
SAME(ebpfjit_bpf_map_info, id, struct bpf_map_info, id);
SAME(ebpfjit_bpf_map_info, key_size, struct bpf_map_info, key_size);
SAME(ebpfjit_bpf_map_info, value_size, struct bpf_map_info, value_size);
SAME(ebpfjit_bpf_map_info, max_entries, struct bpf_map_info, max_entries);
SAME(ebpfjit_bpf_map_info, map_flags, struct bpf_map_info, map_flags);
SAME(ebpfjit_bpf_map_info, name, struct bpf_map_info, name);
SAME(ebpfjit_bpf_map_info, ifindex, struct bpf_map_info, ifindex);
SAME(ebpfjit_bpf_map_info, btf_vmlinux_value_type_id, struct bpf_map_info, btf_vmlinux_value_type_id);
SAME(ebpfjit_bpf_map_info, netns_dev, struct bpf_map_info, netns_dev);
SAME(ebpfjit_bpf_map_info, netns_ino, struct bpf_map_info, netns_ino);
SAME(ebpfjit_bpf_map_info, btf_id, struct bpf_map_info, btf_id);
SAME(ebpfjit_bpf_map_info, btf_key_type_id, struct bpf_map_info, btf_key_type_id);
SAME(ebpfjit_bpf_map_info, btf_value_type_id, struct bpf_map_info, btf_value_type_id);
SAME(ebpfjit_bpf_map_info, map_extra, struct bpf_map_info, map_extra);
_Static_assert(sizeof(struct ebpfjit_bpf_map_info) == sizeof(struct bpf_map_info),
               "ebpfjit_bpf_map_info size differs from the uapi");
