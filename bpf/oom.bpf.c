/* OOM kills, attributed to the victim. mark_victim runs in the allocating task's context, so neither
 * `current` nor bpf_get_current_cgroup_id() is the victim: tp_btf hands us the victim's task_struct. */
#include "tapio_common.bpf.h"

SEC("tp_btf/mark_victim")
int BPF_PROG(tapio_oom_mark_victim, struct task_struct *victim, uid_t uid)
{
	struct tapio_config *cfg = tapio_config();
	struct tapio_oom_event *e;
	struct mm_struct *mm;

	if (!tapio_enabled(cfg, TAPIO_PROBE_OOM))
		return 0;
	e = tapio_reserve(sizeof(*e));
	if (!e)
		return 0;
	tapio_fill_header(&e->hdr, TAPIO_EV_OOM, victim);
	mm = BPF_CORE_READ(victim, mm);
	if (mm) {
		e->total_vm_bytes = BPF_CORE_READ(mm, total_vm) << TAPIO_PAGE_SHIFT;
		e->anon_rss_bytes = (__u64)tapio_mm_counter(mm, TAPIO_MM_ANONPAGES) << TAPIO_PAGE_SHIFT;
		e->file_rss_bytes = (__u64)tapio_mm_counter(mm, TAPIO_MM_FILEPAGES) << TAPIO_PAGE_SHIFT;
		e->shmem_rss_bytes = (__u64)tapio_mm_counter(mm, TAPIO_MM_SHMEMPAGES) << TAPIO_PAGE_SHIFT;
	} else {
		e->total_vm_bytes = e->anon_rss_bytes = e->file_rss_bytes = e->shmem_rss_bytes = 0;
	}
	e->killer_pid = bpf_get_current_pid_tgid() >> 32;
	e->_pad0 = 0;
	tapio_submit(e, cfg, true); /* rare and urgent: wake the reader now */
	return 0;
}
