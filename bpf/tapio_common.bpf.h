/* Maps and helpers shared by every Tapio probe family. Each *.bpf.c includes this header; the maps are
 * __weak so that `bpftool gen object` links the per-family objects into one with a single copy of each map.
 */
#ifndef TAPIO_COMMON_BPF_H
#define TAPIO_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tapio_events.h"

/* One ring buffer for every record: the reader sees events in commit order. Size set by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} tapio_events SEC(".maps") __weak;

/* Runtime settings (struct tapio_config at key 0): user space rewrites it to change a policy live. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tapio_config);
} tapio_config_map SEC(".maps") __weak;

/* Kernel-side counters (enum tapio_stat), per CPU so the hot path never bounces a cache line. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TAPIO_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} tapio_stats SEC(".maps") __weak;

/* log2 of the page size, set by the loader before load (.rodata): 4 KiB pages on x86, 4/16/64 KiB on arm64. */
extern const volatile __u32 tapio_page_shift;
#define TAPIO_PAGE_SHIFT tapio_page_shift

static __always_inline struct tapio_config *tapio_config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&tapio_config_map, &zero);
}

/* The probe is on when the config map says so; a missing config (never written) means off. */
static __always_inline bool tapio_enabled(struct tapio_config *cfg, __u32 bit)
{
	return cfg && (cfg->enabled & bit);
}

static __always_inline void tapio_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&tapio_stats, &stat);
	if (v)
		*v += 1;
}

static __always_inline void *tapio_reserve(__u64 size)
{
	void *rec = bpf_ringbuf_reserve(&tapio_events, size, 0);
	if (!rec)
		tapio_count(TAPIO_STAT_RINGBUF_FULL); /* counted: user space reports kernel-side loss */
	return rec;
}

/* Commit without a wakeup (a wakeup costs ~1.5 us in a VM) until `wakeup_bytes` are pending; the reader
 * also polls with a short timeout, so a lone record still arrives promptly. `urgent` always wakes. */
static __always_inline void tapio_submit(void *rec, struct tapio_config *cfg, bool urgent)
{
	__u64 flags = BPF_RB_NO_WAKEUP;
	if (urgent || !cfg || cfg->wakeup_bytes == 0 ||
	    bpf_ringbuf_query(&tapio_events, BPF_RB_AVAIL_DATA) >= cfg->wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(rec, flags);
	tapio_count(TAPIO_STAT_SUBMITTED);
}

/* The memory cgroup's id (its directory's inode on v1 and v2) of a task. Not bpf_get_current_cgroup_id():
 * that is the v2 cgroup of the current task, which is neither the victim nor the memory hierarchy on v1. */
static __always_inline __u64 tapio_memcg_id(struct task_struct *task)
{
	int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct cgroup_subsys_state *css;
	if (id < 0 || id >= CGROUP_SUBSYS_COUNT)
		return 0;
	css = BPF_CORE_READ(task, cgroups, subsys[id]);
	if (!css)
		return 0;
	return BPF_CORE_READ(css, cgroup, kn, id);
}

/* Pre-6.2 kernels kept RSS in atomics (struct mm_rss_stat); 6.2+ use percpu_counter whose `count` is the
 * approximate sum, which is what get_mm_counter() reports. */
struct mm_rss_stat___old {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));
struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));

#define TAPIO_MM_FILEPAGES 0
#define TAPIO_MM_ANONPAGES 1
#define TAPIO_MM_SHMEMPAGES 3

static __always_inline __s64 tapio_mm_counter(struct mm_struct *mm, int member)
{
	__s64 v;
	if (bpf_core_type_exists(struct mm_rss_stat___old)) {
		struct mm_struct___old *old = (void *)mm;
		v = BPF_CORE_READ(old, rss_stat.count[member].counter);
	} else {
		v = BPF_CORE_READ(mm, rss_stat[member].count);
	}
	return v < 0 ? 0 : v;
}

static __always_inline void tapio_fill_header(struct tapio_event_header *h, __u32 type, struct task_struct *task)
{
	h->type = type;
	h->pid = BPF_CORE_READ(task, tgid);
	h->ts_ns = bpf_ktime_get_boot_ns();
	h->cgroup_id = tapio_memcg_id(task);
	BPF_CORE_READ_STR_INTO(&h->comm, task, group_leader, comm);
}


#endif
