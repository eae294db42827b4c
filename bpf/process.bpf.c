/* Process lifecycle: exec, fork (new processes, not threads) and exit of whole processes. */
#include "tapio_common.bpf.h"

/* Processes whose exit was reported, by (tgid, leader's start time): when the last threads of a process exit at the
 * same moment on two CPUs (exit_group() kills the others), each can see signal->live at 0; the first to insert
 * its key reports, the other finds it there (BPF_NOEXIST is checked under the bucket lock). The start time keeps a
 * reused pid a new key; LRU, so old keys age out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u8);
} exits_reported SEC(".maps");

static __always_inline struct tapio_process_event *reserve_process(__u32 type, struct task_struct *task)
{
	struct tapio_process_event *e = tapio_reserve(sizeof(*e));
	if (!e)
		return 0;
	tapio_fill_header(&e->hdr, type, task);
	e->child_pid = 0;
	e->exit_code = 0;
	e->exit_signal = 0;
	e->core_dumped = 0;
	e->peak_rss_bytes = 0;
	return e;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tapio_process_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct tapio_config *cfg = tapio_config();
	struct tapio_process_event *e;

	if (!tapio_enabled(cfg, TAPIO_PROBE_PROCESS))
		return 0;
	e = reserve_process(TAPIO_EV_EXEC, task);
	if (!e)
		return 0;
	tapio_submit(e, cfg, false);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(tapio_process_fork, struct task_struct *parent, struct task_struct *child)
{
	struct tapio_config *cfg = tapio_config();
	struct tapio_process_event *e;

	if (!tapio_enabled(cfg, TAPIO_PROBE_PROCESS))
		return 0;
	/* A new thread shares its parent's tgid: only new processes are lifecycle news. */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	e = reserve_process(TAPIO_EV_FORK, parent);
	if (!e)
		return 0;
	e->child_pid = BPF_CORE_READ(child, tgid);
	tapio_submit(e, cfg, false);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tapio_process_exit, struct task_struct *task)
{
	struct tapio_config *cfg = tapio_config();
	struct tapio_process_event *e;
	struct mm_struct *mm;
	__u64 peak, rss;
	int code;

	if (!tapio_enabled(cfg, TAPIO_PROBE_PROCESS))
		return 0;
	/* Report the process once, when its last thread exits: do_exit() has already decremented
	 * signal->live, so 0 means the thread group is dead (the leader may have left earlier, e.g. with
	 * pthread_exit, while the process went on). */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	{
		__u64 key = ((__u64)BPF_CORE_READ(task, tgid) << 32) ^ BPF_CORE_READ(task, group_leader, start_time);
		__u8 one = 1;
		if (bpf_map_update_elem(&exits_reported, &key, &one, BPF_NOEXIST) != 0)
			return 0;
	}
	e = reserve_process(TAPIO_EV_EXIT, task);
	if (!e)
		return 0;
	/* exit_code is wait(2)'s status: (status << 8) for exit(), the signal number (| 0x80 for a core) when
	 * killed. A group exit started by another thread leaves its code in signal->group_exit_code. */
	code = BPF_CORE_READ(task, exit_code);
	if (code == 0)
		code = BPF_CORE_READ(task, signal, group_exit_code);
	e->exit_code = (code >> 8) & 0xff;
	e->exit_signal = code & 0x7f;
	e->core_dumped = (code & 0x80) ? 1 : 0;
	/* Peak RSS: signal->maxrss keeps the high-water mark of exited threads' mms (pages); the live mm's
	 * hiwater_rss is only updated lazily, so its current RSS counts too. */
	peak = BPF_CORE_READ(task, signal, maxrss);
	mm = BPF_CORE_READ(task, mm);
	if (mm) {
		__u64 hw = BPF_CORE_READ(mm, hiwater_rss);
		rss = tapio_mm_counter(mm, TAPIO_MM_ANONPAGES) + tapio_mm_counter(mm, TAPIO_MM_FILEPAGES) +
		      tapio_mm_counter(mm, TAPIO_MM_SHMEMPAGES);
		if (hw > peak)
			peak = hw;
		if (rss > peak)
			peak = rss;
	}
	e->peak_rss_bytes = peak << TAPIO_PAGE_SHIFT;
	tapio_submit(e, cfg, false);
	return 0;
}
