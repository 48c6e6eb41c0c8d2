/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the network tracers read from a socket the same way: its end points,
 * the cgroup of its owner and its network namespace.
 *
 * Include after huatuo.bpf.h. `direct` (a compile-time constant at every
 * use) selects plain loads for BTF-typed pointers (tp_btf) or probe reads.
 */
#ifndef __HUATUO_SOCK_BPF_H
#define __HUATUO_SOCK_BPF_H

/* A connection's end points, as the socket (or request socket) holds them. */
struct huatuo_conn {
	__u32 saddr[4]; /* local; network order; IPv4 in word 0 */
	__u32 daddr[4]; /* peer */
	__u16 sport;    /* local, host order */
	__u16 dport;    /* peer, host order */
	__u8 family;    /* AF_INET, AF_INET6, or 0 if neither */
	__u8 state;     /* TCP_* (any protocol's skc_state) */
};

static __always_inline bool huatuo_ipv4_mapped(const __u32 *a)
{
	return a[0] == 0 && a[1] == 0 && a[2] == huatuo_ntohl(0x0000ffff);
}

/*
 * Full sockets and request sockets both start with a struct sock_common,
 * which holds the addresses, ports and state. IPv4-mapped IPv6 connections
 * come out as the IPv4 they are on the wire.
 */
static __always_inline void huatuo_read_conn(struct sock_common *skc,
					     struct huatuo_conn *c,
					     const bool direct)
{
	__u16 family = HUATUO_READ(direct, skc, skc_family);

	c->state = HUATUO_READ(direct, skc, skc_state);
	c->sport = HUATUO_READ(direct, skc, skc_num);
	c->dport = huatuo_ntohs(HUATUO_READ(direct, skc, skc_dport));

	if (family == HUATUO_AF_INET) {
		c->family = HUATUO_AF_INET;
		c->saddr[0] = HUATUO_READ(direct, skc, skc_rcv_saddr);
		c->daddr[0] = HUATUO_READ(direct, skc, skc_daddr);
		return;
	}
	/* The IPv6 fields exist only in kernels built with CONFIG_IPV6. */
	if (family != HUATUO_AF_INET6 ||
	    !bpf_core_field_exists(skc->skc_v6_daddr))
		return;
	if (direct) {
		__builtin_memcpy(c->saddr, &skc->skc_v6_rcv_saddr, sizeof(c->saddr));
		__builtin_memcpy(c->daddr, &skc->skc_v6_daddr, sizeof(c->daddr));
	} else {
		bpf_core_read(c->saddr, sizeof(c->saddr), &skc->skc_v6_rcv_saddr);
		bpf_core_read(c->daddr, sizeof(c->daddr), &skc->skc_v6_daddr);
	}
	c->family = HUATUO_AF_INET6;
	if (huatuo_ipv4_mapped(c->daddr)) {
		c->family = HUATUO_AF_INET;
		c->saddr[0] = c->saddr[3];
		c->daddr[0] = c->daddr[3];
		c->saddr[1] = c->saddr[2] = c->saddr[3] = 0;
		c->daddr[1] = c->daddr[2] = c->daddr[3] = 0;
	}
}

/*
 * The v2 cgroup of the process that created the socket, which is what
 * attribution keys on for network records: socket work often runs in
 * softirqs and timers, where the current task is unrelated, so that is only
 * the fallback for kernels whose socket holds no cgroup pointer (before
 * 5.15). Kernel sockets and mini sockets (time-wait, pending requests) have
 * no owner: 0.
 */
static __always_inline __u64 huatuo_sock_cgroup_id(struct sock *sk,
						   const bool direct)
{
	struct kernfs_node *kn;
	struct cgroup *cgrp;
	__u8 state;

	if (!bpf_core_field_exists(sk->sk_cgrp_data) ||
	    !bpf_core_field_exists(struct sock_cgroup_data, cgroup))
		return bpf_get_current_cgroup_id();
	state = HUATUO_READ(direct, sk, __sk_common.skc_state);
	if (state == HUATUO_TCP_TIME_WAIT || state == HUATUO_TCP_NEW_SYN_RECV)
		return 0;
	cgrp = HUATUO_READ(direct, sk, sk_cgrp_data.cgroup);
	if (!cgrp)
		return 0;
	kn = HUATUO_READ(direct, cgrp, kn);
	if (!kn)
		return 0;
	return HUATUO_READ(direct, kn, id);
}

/* Inode of the socket's network namespace (/proc/<pid>/ns/net); 0 if none. */
static __always_inline __u32 huatuo_sock_netns_inum(struct sock *sk,
						    const bool direct)
{
	struct net *net = HUATUO_READ(direct, sk, __sk_common.skc_net.net);

	return net ? HUATUO_READ(direct, net, ns.inum) : 0;
}

#endif /* __HUATUO_SOCK_BPF_H */
