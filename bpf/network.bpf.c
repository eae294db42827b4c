/* (The tracepoints pass `const struct sock *`; the programs take it non-const so BPF_CORE_READ
 * temporaries are assignable.)
 * TCP trouble: retransmits, resets sent and received, failed connects and socket errors, with addresses,
 * ports and (where known) the owning process. Most of these fire in softirq context, where `current` is an
 * unrelated task, so the owner is remembered when the connect starts (SYN_SENT runs in the connect() call). */
#include "tapio_common.bpf.h"
#include <bpf/bpf_endian.h>

#define TAPIO_AF_INET 2
#define TAPIO_AF_INET6 10
#define TAPIO_IPPROTO_TCP 6
#define TAPIO_TCP_SYN_SENT 2
#define TAPIO_TCP_SYN_RECV 3
#define TAPIO_TCP_CLOSE 7
#define TAPIO_TCP_LISTEN 10

struct sock_owner {
	__u32 tgid;
	__u32 _pad0;
	__u64 cgroup_id;
	char comm[TAPIO_COMM_LEN];
};

/* Socket (kernel address) -> the process that connected it. LRU: sockets that never close cleanly age out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct sock_owner);
} sock_owners SEC(".maps");

/* Per (cgroup, pid, kind) totals; LRU so a churning node cannot fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tapio_tcp_count_key);
	__type(value, __u64);
} tcp_counts SEC(".maps");

static __always_inline void count_tcp(__u64 cgroup_id, __u32 pid, __u32 kind)
{
	struct tapio_tcp_count_key k = {.cgroup_id = cgroup_id, .pid = pid, .kind = kind};
	__u64 one = 1, *v = bpf_map_lookup_elem(&tcp_counts, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&tcp_counts, &k, &one, BPF_NOEXIST);
}

static __always_inline void remember_owner(struct sock *sk)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct sock_owner o = {};
	__u64 key = (__u64)sk;

	o.tgid = BPF_CORE_READ(task, tgid);
	o.cgroup_id = tapio_memcg_id(task);
	BPF_CORE_READ_STR_INTO(&o.comm, task, group_leader, comm);
	bpf_map_update_elem(&sock_owners, &key, &o, BPF_ANY);
}

/* in_process: the tracepoint runs in the owning process's system call, so `current` is the owner. */
static __always_inline int emit_tcp(struct sock *sk, __u32 kind, int error, int old_state, int new_state,
				    bool in_process)
{
	struct tapio_config *cfg = tapio_config();
	struct tapio_tcp_event *e;
	struct sock_owner *o, who = {};
	__u64 key = (__u64)sk;
	__u16 family, sport;

	if (!tapio_enabled(cfg, TAPIO_PROBE_NETWORK) || !sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != TAPIO_AF_INET && family != TAPIO_AF_INET6)
		return 0;
	/* Who: the remembered owner, else `current` when in the owner's system call, else unknown (pid 0). */
	o = bpf_map_lookup_elem(&sock_owners, &key);
	if (o) {
		who = *o;
	} else if (in_process) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		who.tgid = BPF_CORE_READ(task, tgid);
		who.cgroup_id = tapio_memcg_id(task);
		BPF_CORE_READ_STR_INTO(&who.comm, task, group_leader, comm);
	}
	/* Counted before the reservation, so a full ring buffer loses the record but not the count. */
	count_tcp(who.cgroup_id, who.tgid, kind);
	e = tapio_reserve(sizeof(*e));
	if (!e)
		return 0;
	e->hdr.type = TAPIO_EV_TCP;
	e->hdr.ts_ns = bpf_ktime_get_boot_ns();
	e->hdr.pid = who.tgid;
	e->hdr.cgroup_id = who.cgroup_id;
	__builtin_memcpy(e->hdr.comm, who.comm, TAPIO_COMM_LEN);
	e->kind = kind;
	e->error = error;
	e->family = family;
	/* inet_sport survives the unhash at CLOSE (skc_num is zeroed then, before an active reset is sent). */
	sport = BPF_CORE_READ((struct inet_sock *)sk, inet_sport);
	e->sport = sport ? bpf_ntohs(sport) : BPF_CORE_READ(sk, __sk_common.skc_num);
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	e->_pad0 = 0;
	e->old_state = old_state;
	e->new_state = new_state;
	__builtin_memset(e->saddr, 0, 16);
	__builtin_memset(e->daddr, 0, 16);
	if (family == TAPIO_AF_INET) {
		__u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(e->saddr, &s, 4);
		__builtin_memcpy(e->daddr, &d, 4);
	} else {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
	tapio_submit(e, cfg, false);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tapio_tcp_set_state, struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)sk;

	if (BPF_CORE_READ(sk, sk_protocol) != TAPIO_IPPROTO_TCP)
		return 0;
	if (newstate == TAPIO_TCP_SYN_SENT) {
		/* connect() is running in the owner's context: remember who it is, whatever is enabled now. */
		remember_owner(sk);
		return 0;
	}
	if (newstate == TAPIO_TCP_SYN_RECV || newstate == TAPIO_TCP_LISTEN) {
		/* A new socket (accepted child or listener), maybe at the address of a dead one: forget that. */
		bpf_map_delete_elem(&sock_owners, &key);
		return 0;
	}
	/* The owner is kept past CLOSE: the error report and resets of a dying socket come after it. A later
	 * socket at the same address overwrites or deletes the entry above; the LRU ages out the rest. */
	if (newstate == TAPIO_TCP_CLOSE && oldstate == TAPIO_TCP_SYN_SENT)
		emit_tcp(sk, TAPIO_TCP_CONNECT_FAILED, BPF_CORE_READ(sk, sk_err), oldstate, newstate, false);
	return 0;
}

SEC("tp_btf/inet_sk_error_report")
int BPF_PROG(tapio_tcp_error_report, struct sock *sk)
{
	if (BPF_CORE_READ(sk, sk_protocol) != TAPIO_IPPROTO_TCP)
		return 0;
	return emit_tcp(sk, TAPIO_TCP_SOCKET_ERROR, BPF_CORE_READ(sk, sk_err), 0, 0, false);
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tapio_tcp_retransmit, struct sock *sk, struct sk_buff *skb)
{
	return emit_tcp(sk, TAPIO_TCP_RETRANSMIT, 0, 0, 0, false);
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tapio_tcp_send_reset, struct sock *sk, struct sk_buff *skb)
{
	/* No skb: an active reset (close() with SO_LINGER 0, abort) in the owner's system call. With an skb it
	 * answers a packet in softirq context. A reset for no socket at all (closed port) has no owner. */
	return emit_tcp(sk, TAPIO_TCP_RESET_SENT, 0, 0, 0, skb == 0);
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tapio_tcp_receive_reset, struct sock *sk)
{
	return emit_tcp(sk, TAPIO_TCP_RESET_RECEIVED, 0, 0, 0, false);
}
