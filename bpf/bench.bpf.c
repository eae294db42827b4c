/* Benchmark-only producer (autoload off: `?`): run with BPF_PROG_TEST_RUN, it commits `count` memory
 * records in one go so the ring buffer reader can be timed without waiting on real events. */
#include "tapio_common.bpf.h"

struct tapio_bench_args {
	__u32 count;
	__u32 pid;
};

static long bench_one(__u32 index, void *ctx)
{
	struct tapio_bench_args *args = ctx;
	struct tapio_memory_event *e = tapio_reserve(sizeof(*e));
	if (!e)
		return 1; /* full: stop, the reader measures what fitted */
	e->hdr.type = TAPIO_EV_BENCH;
	e->hdr.pid = args->pid;
	e->hdr.ts_ns = bpf_ktime_get_boot_ns();
	e->hdr.cgroup_id = index;
	__builtin_memcpy(e->hdr.comm, "tapio-bench\0\0\0\0", TAPIO_COMM_LEN);
	e->anon_bytes = (__u64)index << 12;
	e->file_bytes = 4096;
	e->shmem_bytes = 0;
	e->source = TAPIO_MEM_PERF;
	e->tid = args->pid;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

SEC("?syscall")
int tapio_bench_fill(struct tapio_bench_args *args)
{
	struct tapio_bench_args local = *args;
	bpf_loop(local.count, bench_one, &local, 0);
	return 0;
}
