/* A program the verifier always rejects (a map value used without its NULL check). Autoload is off (`?`):
 * the tests switch it on to prove that one optional program failing to load leaves the other probes up. */
#include "tapio_common.bpf.h"

SEC("?tp_btf/sched_process_exit")
int BPF_PROG(tapio_selftest_invalid, struct task_struct *task)
{
	__u32 key = TAPIO_STAT_SAMPLED_OUT;
	__u64 *v = bpf_map_lookup_elem(&tapio_stats, &key);
	/* Deliberately no `if (!v)`: the verifier refuses a possibly-NULL dereference. */
	*v += 1;
	return 0;
}
