/* Memory probes: a perf_event sampler of the task on the CPU, tp_btf/rss_stat for tasks that allocate
 * while the sampler misses them (rate-limited to one record per `rss_threshold_bytes` of movement per mm),
 * and an iter/task snapshot of every process — sleeping ones included — run when user space asks. */
#include "tapio_common.bpf.h"

/* Last RSS (bytes) reported per mm by the rss_stat program; LRU so exited processes age out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} rss_last SEC(".maps");

/* Per-CPU countdown for the sampling divisor. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sample_tick SEC(".maps");

static __always_inline int emit_memory(struct task_struct *task, struct mm_struct *mm, __u32 source,
				       struct tapio_config *cfg, __u64 anon, __u64 file, __u64 shmem)
{
	struct tapio_memory_event *e = tapio_reserve(sizeof(*e));
	if (!e)
		return 0;
	tapio_fill_header(&e->hdr, TAPIO_EV_MEMORY, task);
	e->anon_bytes = anon;
	e->file_bytes = file;
	e->shmem_bytes = shmem;
	e->source = source;
	e->tid = BPF_CORE_READ(task, pid);
	tapio_submit(e, cfg, false);
	return 0;
}

SEC("perf_event")
int tapio_memory_sample(struct bpf_perf_event_data *ctx)
{
	struct tapio_config *cfg = tapio_config();
	struct task_struct *task;
	struct mm_struct *mm;
	__u32 zero = 0, *tick;

	if (!tapio_enabled(cfg, TAPIO_PROBE_MEMORY_SAMPLER))
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	mm = BPF_CORE_READ(task, mm);
	if (!mm) /* kernel threads and the idle task have no user memory */
		return 0;
	if (cfg->ignore_tgid && BPF_CORE_READ(task, tgid) == cfg->ignore_tgid)
		return 0;
	/* Keep one sample in `sample_divisor` on this CPU: a cheap policy knob with no re-attach. */
	tick = bpf_map_lookup_elem(&sample_tick, &zero);
	if (tick && cfg->sample_divisor > 1) {
		*tick += 1;
		if (*tick < cfg->sample_divisor) {
			tapio_count(TAPIO_STAT_SAMPLED_OUT);
			return 0;
		}
		*tick = 0;
	}
	return emit_memory(task, mm, TAPIO_MEM_PERF, cfg,
			   (__u64)tapio_mm_counter(mm, TAPIO_MM_ANONPAGES) << TAPIO_PAGE_SHIFT,
			   (__u64)tapio_mm_counter(mm, TAPIO_MM_FILEPAGES) << TAPIO_PAGE_SHIFT,
			   (__u64)tapio_mm_counter(mm, TAPIO_MM_SHMEMPAGES) << TAPIO_PAGE_SHIFT);
}

SEC("tp_btf/rss_stat")
int BPF_PROG(tapio_rss_stat, struct mm_struct *mm, int member)
{
	struct tapio_config *cfg = tapio_config();
	struct task_struct *owner;
	__u64 key = (__u64)mm, anon, file, shmem, total, *last;

	if (!tapio_enabled(cfg, TAPIO_PROBE_MEMORY_RSS_STAT))
		return 0;
	anon = (__u64)tapio_mm_counter(mm, TAPIO_MM_ANONPAGES) << TAPIO_PAGE_SHIFT;
	file = (__u64)tapio_mm_counter(mm, TAPIO_MM_FILEPAGES) << TAPIO_PAGE_SHIFT;
	shmem = (__u64)tapio_mm_counter(mm, TAPIO_MM_SHMEMPAGES) << TAPIO_PAGE_SHIFT;
	total = anon + file + shmem;
	/* Rate limit: only a move of at least the threshold since this mm's last record is news. */
	last = bpf_map_lookup_elem(&rss_last, &key);
	if (last) {
		__u64 prev = *last;
		__u64 delta = total > prev ? total - prev : prev - total;
		if (delta < cfg->rss_threshold_bytes)
			return 0;
		*last = total;
	} else {
		bpf_map_update_elem(&rss_last, &key, &total, BPF_ANY);
	}
	/* The event fires in whichever task changed the counter (possibly another process, e.g. via
	 * process_vm_writev); mm->owner names the process the memory belongs to. */
	owner = BPF_CORE_READ(mm, owner);
	if (!owner)
		return 0;
	if (cfg->ignore_tgid && BPF_CORE_READ(owner, tgid) == cfg->ignore_tgid)
		return 0;
	return emit_memory(owner, mm, TAPIO_MEM_RSS_STAT, cfg, anon, file, shmem);
}

SEC("iter/task")
int tapio_memory_snapshot(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct tapio_config *cfg = tapio_config();
	struct mm_struct *mm;

	if (!task || !tapio_enabled(cfg, TAPIO_PROBE_MEMORY_SNAPSHOT))
		return 0; /* the end of the iteration, or switched off */
	/* One record per process: its leader, with user memory. */
	if (task->pid != task->tgid)
		return 0;
	mm = task->mm;
	if (!mm)
		return 0;
	if (cfg->ignore_tgid && task->tgid == cfg->ignore_tgid)
		return 0;
	return emit_memory(task, mm, TAPIO_MEM_SNAPSHOT, cfg,
			   (__u64)tapio_mm_counter(mm, TAPIO_MM_ANONPAGES) << TAPIO_PAGE_SHIFT,
			   (__u64)tapio_mm_counter(mm, TAPIO_MM_FILEPAGES) << TAPIO_PAGE_SHIFT,
			   (__u64)tapio_mm_counter(mm, TAPIO_MM_SHMEMPAGES) << TAPIO_PAGE_SHIFT);
}
