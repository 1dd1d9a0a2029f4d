// One trivial program per libbpf section-name rule, to pin section name -> program type.
// Not loadable as a whole by bpftool (custom and uprobe sections need an attach target).
#include "common.h"

#define TRIVIAL(sec, fn) SEC(sec) int fn(void *ctx) { return 0; }

TRIVIAL("kprobe/do_nanosleep", sec_kprobe)
TRIVIAL("kretprobe/do_nanosleep", sec_kretprobe)
TRIVIAL("uprobe//bin/true:main", sec_uprobe)
TRIVIAL("uretprobe//bin/true:main", sec_uretprobe)
TRIVIAL("tracepoint/syscalls/sys_enter_nanosleep", sec_tracepoint)
TRIVIAL("tp/syscalls/sys_exit_nanosleep", sec_tp)
TRIVIAL("raw_tracepoint/sys_enter", sec_raw_tracepoint)
TRIVIAL("raw_tp/sys_exit", sec_raw_tp)
TRIVIAL("fentry/do_nanosleep", sec_fentry)
TRIVIAL("fexit/do_nanosleep", sec_fexit)
TRIVIAL("perf_event", sec_perf_event)
TRIVIAL("classifier", sec_classifier)
TRIVIAL("tc", sec_tc)
TRIVIAL("tcx/ingress", sec_tcx_ingress)
TRIVIAL("action", sec_action)
TRIVIAL("xdp.frags", sec_xdp_frags)
TRIVIAL("socket", sec_socket)
TRIVIAL("cgroup_skb/ingress", sec_cgroup_skb_ingress)
TRIVIAL("lsm/file_open", sec_lsm)
TRIVIAL("syscall", sec_syscall)
TRIVIAL("my_custom_section", sec_custom)

char LICENSE[] SEC("license") = "GPL";
