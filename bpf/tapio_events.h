/* The wire layout of every record the Tapio BPF programs put on the ring buffer, and of the runtime
 * configuration map. Included by the BPF C (after vmlinux.h) and by the CTapioBPF C target (which Swift
 * imports), so both sides read one definition. Fixed-width fields, explicit padding, 8-byte aligned records;
 * every record starts with struct tapio_event_header whose `type` says which struct follows.
 */
#ifndef TAPIO_EVENTS_H
#define TAPIO_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define TAPIO_COMM_LEN 16

/* The `type` tag of a record. */
enum tapio_event_type {
	TAPIO_EV_MEMORY = 1,  /* struct tapio_memory_event */
	TAPIO_EV_OOM = 2,     /* struct tapio_oom_event */
	TAPIO_EV_EXEC = 3,    /* struct tapio_process_event */
	TAPIO_EV_FORK = 4,    /* struct tapio_process_event (child_pid set) */
	TAPIO_EV_EXIT = 5,    /* struct tapio_process_event (exit fields set) */
	TAPIO_EV_TCP = 6,     /* struct tapio_tcp_event */
	TAPIO_EV_BENCH = 7,   /* struct tapio_memory_event, written by the benchmark program only */
};

/* Which program took a memory sample. */
enum tapio_memory_source {
	TAPIO_MEM_PERF = 1,     /* perf_event sampler: the task on the CPU */
	TAPIO_MEM_RSS_STAT = 2, /* tp_btf/rss_stat: RSS moved by at least the threshold */
	TAPIO_MEM_SNAPSHOT = 3, /* iter/task: every process, sleeping or not, when user space asks */
};

/* What a TCP record reports. */
enum tapio_tcp_kind {
	TAPIO_TCP_RETRANSMIT = 1,
	TAPIO_TCP_RESET_SENT = 2,
	TAPIO_TCP_RESET_RECEIVED = 3,
	TAPIO_TCP_CONNECT_FAILED = 4, /* SYN_SENT -> CLOSE */
	TAPIO_TCP_SOCKET_ERROR = 5,   /* inet_sk_error_report */
};

/* Bits of tapio_config.enabled: each probe can be switched at run time. */
enum tapio_probe_bit {
	TAPIO_PROBE_MEMORY_SAMPLER = 1u << 0,
	TAPIO_PROBE_MEMORY_RSS_STAT = 1u << 1,
	TAPIO_PROBE_OOM = 1u << 2,
	TAPIO_PROBE_PROCESS = 1u << 3,
	TAPIO_PROBE_NETWORK = 1u << 4,
	TAPIO_PROBE_MEMORY_SNAPSHOT = 1u << 5,
};

/* Indices into the `stats` array map (kernel-side counters). */
enum tapio_stat {
	TAPIO_STAT_SUBMITTED = 0,    /* records committed to the ring buffer */
	TAPIO_STAT_RINGBUF_FULL = 1, /* bpf_ringbuf_reserve failed: the record was lost in the kernel */
	TAPIO_STAT_SAMPLED_OUT = 2,  /* perf samples skipped by the sampling divisor */
	TAPIO_STAT_COUNT = 4,
};

/* Value 0 of the `config` ARRAY map; written by user space while the programs run. */
struct tapio_config {
	__u32 enabled;             /* tapio_probe_bit mask */
	__u32 sample_divisor;      /* perf sampler keeps one sample in N per CPU (0 or 1: all) */
	__u64 rss_threshold_bytes; /* rss_stat emits when RSS moved by at least this since the last record */
	__u64 wakeup_bytes;        /* wake the reader once this many bytes are pending (0: every record) */
	__u32 ignore_tgid;         /* drop events of this process (the agent itself); 0: none */
	__u32 _pad0;
};

struct tapio_event_header {
	__u32 type;  /* enum tapio_event_type */
	__u32 pid;   /* thread group id of the subject (the victim for OOM, the parent for fork) */
	__u64 ts_ns; /* bpf_ktime_get_boot_ns(): CLOCK_BOOTTIME */
	__u64 cgroup_id; /* memory cgroup id: the cgroup directory's inode; 0 unknown */
	char comm[TAPIO_COMM_LEN];
}; /* 40 bytes */

struct tapio_memory_event {
	struct tapio_event_header hdr;
	__u64 anon_bytes;
	__u64 file_bytes;
	__u64 shmem_bytes;
	__u32 source; /* enum tapio_memory_source */
	__u32 tid;
}; /* 72 bytes */

struct tapio_oom_event {
	struct tapio_event_header hdr; /* pid/comm/cgroup_id are the victim's */
	__u64 total_vm_bytes;
	__u64 anon_rss_bytes;
	__u64 file_rss_bytes;
	__u64 shmem_rss_bytes;
	__u32 killer_pid; /* the allocating task the OOM killer ran in */
	__u32 _pad0;
}; /* 80 bytes */

struct tapio_process_event {
	struct tapio_event_header hdr;
	__u32 child_pid; /* fork: the new process */
	__s32 exit_code; /* exit: the status passed to exit() (0..255) */
	__s32 exit_signal; /* exit: the signal that killed it, 0 for a normal exit */
	__u32 core_dumped;
	__u64 peak_rss_bytes; /* exit: the process's RSS high-water mark */
}; /* 64 bytes */

struct tapio_tcp_event {
	struct tapio_event_header hdr; /* pid 0 when no process context is known */
	__u32 kind;   /* enum tapio_tcp_kind */
	__s32 error;  /* positive errno for failed connects and socket errors */
	__u16 family; /* AF_INET (2) or AF_INET6 (10) */
	__u16 sport;  /* host order */
	__u16 dport;  /* host order */
	__u16 _pad0;
	__u32 old_state;
	__u32 new_state;
	__u8 saddr[16]; /* v4 in the first 4 bytes */
	__u8 daddr[16];
}; /* 96 bytes */

/* Key of the `tcp_counts` map: TCP trouble counted per process, cgroup and kind in the kernel, so the
 * totals stay right even when the ring buffer or the agent's queue sheds records. */
struct tapio_tcp_count_key {
	__u64 cgroup_id;
	__u32 pid;
	__u32 kind; /* enum tapio_tcp_kind */
}; /* 16 bytes */

#endif
