/* A loop of ARRAY-map lookups: key = mem[i] for each byte (at most MAP_MAX), sum of the values.
 * Input: 1024 pseudo-random bytes; the harness fills the map (eBPF) or map_lookup_table (native)
 * with the same values. Native equivalent of bpf_map_lookup_elem: a bounds-checked array index.
 */
#include "bench.h"

#define MAP_ENTRIES 256
#define MAP_MAX 1024

#ifdef __bpf__
#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) __typeof__(val) *name

struct {
	__uint(type, 2);   /* BPF_MAP_TYPE_ARRAY */
	__uint(max_entries, MAP_ENTRIES);
	__type(key, uint32_t);
	__type(value, uint64_t);
} map_table SEC(".maps");

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;

BENCH_INLINE uint64_t *map_lookup_get(uint32_t key)
{
	return bpf_map_lookup_elem(&map_table, &key);
}
#else
uint64_t map_lookup_table[MAP_ENTRIES];

BENCH_INLINE uint64_t *map_lookup_get(uint32_t key)
{
	return key < MAP_ENTRIES ? &map_lookup_table[key] : 0;
}
#endif

BENCH_PROG uint64_t map_lookup_prog(uint8_t *mem, uint64_t len)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < MAP_MAX; i++) {
		if (i >= len)
			break;
		uint64_t *v = map_lookup_get(mem[i]);
		if (v)
			sum += *v;
	}
	return sum;
}

#ifdef __bpf__
char _license[] SEC("license") = "GPL";
#endif
