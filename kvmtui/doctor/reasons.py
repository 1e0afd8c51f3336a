"""The kernel's drop reasons (``enum skb_drop_reason``) in plain words.

``skb:kfree_skb`` names the reason without the ``SKB_DROP_REASON_`` prefix. Reasons missing here
still show by their kernel name; :func:`words_for` falls back to that name.
"""

from __future__ import annotations

REASON_WORDS: dict[str, str] = {
    "NETFILTER_DROP": "the firewall (nftables rule)",
    "IP_OUTNOROUTES": "no route to the destination",
    "IP_INNOROUTES": "no route for an incoming packet",
    "BRIDGE_INGRESS_STP_STATE": "the bridge port is not forwarding (STP state)",
    "OTHERHOST": "the packet was for another host's MAC",
    "NO_SOCKET": "no program listens on that port",
    "SOCKET_FILTER": "a socket filter refused it",
    "SOCKET_RCVBUFF": "the receiving socket's buffer was full",
    "PKT_TOO_SMALL": "the packet was too short",
    "PKT_TOO_BIG": "the packet was bigger than the MTU",
    "TCP_CSUM": "a bad TCP checksum",
    "UDP_CSUM": "a bad UDP checksum",
    "IP_CSUM": "a bad IP header checksum",
    "IP_INHDR": "a bad IP header",
    "IP_RPFILTER": "reverse-path filtering (rp_filter) refused its source",
    "UNICAST_IN_L2_MULTICAST": "a unicast IP packet in a multicast frame",
    "XFRM_POLICY": "an IPsec policy",
    "IP_NOPROTO": "no handler for its IP protocol",
    "IPV6DISABLED": "IPv6 is disabled on the device",
    "NEIGH_CREATEFAIL": "the neighbour (ARP) entry could not be created",
    "NEIGH_FAILED": "the next hop did not answer ARP",
    "NEIGH_QUEUEFULL": "too many packets waiting for an ARP answer",
    "NEIGH_DEAD": "the neighbour entry was gone",
    "TC_EGRESS": "a tc egress filter",
    "TC_INGRESS": "a tc ingress filter",
    "QDISC_DROP": "the queueing discipline (tc qdisc)",
    "QDISC_OVERLIMIT": "the queue was over its limit",
    "CPU_BACKLOG": "the CPU backlog queue was full",
    "XDP": "an XDP program",
    "UNHANDLED_PROTO": "a protocol nobody handles",
    "DEV_READY": "the device was not ready (down or no carrier)",
    "DEV_HDR": "a bad link-layer header",
    "FULL_RING": "the receive ring was full",
    "NOMEM": "the kernel ran out of memory",
    "HDR_TRUNC": "a truncated header",
    "TAP_FILTER": "the tap's filter",
    "TAP_TXFILTER": "the tap's transmit filter",
    "IP_INADDRERRORS": "an invalid destination address",
    "IP_LOCAL_SOURCE": "its source address is one of this host's",
    "IP_INVALID_SOURCE": "an invalid source address",
    "IP_LOCALNET": "a loopback address from outside (route_localnet off)",
    "IP_INVALID_DEST": "an invalid destination address",
    "SECURITY_HOOK": "a security module (SELinux, AppArmor)",
    "LOCAL_MAC": "its source MAC is the host's own",
    "MAC_INVALID_SOURCE": "an invalid source MAC",
    "NO_TX_TARGET": "no device to send it to",
    "QUEUE_PURGE": "its queue was purged",
    "PACKET_SOCK_ERROR": "a packet socket error",
    "ICMP_CSUM": "a bad ICMP checksum",
    "INVALID_PROTO": "an invalid protocol",
    "MAC_IEEE_MAC_CONTROL": "an Ethernet MAC control frame",
    "ARP_PVLAN_DISABLE": "proxy ARP for private VLANs is off",
    "RECURSION_LIMIT": "too many nested devices",
}

#: frees that say nothing about the path: a promiscuous bridge (a capture) hands the host copies
#: of frames for other MACs, and the host's IP layer frees them as OTHERHOST
BENIGN = frozenset({
    "OTHERHOST",
    "IPV6_NDISC_NS_OTHERHOST",  # a neighbour solicitation for another host's address: normal
})  # fmt: skip

#: frees that are benign at one place only: NO_SOCKET in ping_rcv is an echo reply that reached
#: a stack where no ping waits for it any more (a ping that ended, a duplicate); the same reason
#: in __udp4_lib_rcv for udp 67 is dnsmasq not listening, which is a finding
BENIGN_AT = frozenset({("NO_SOCKET", "ping_rcv")})

#: reasons that are not drops (the packet was used or freed normally)
NOT_DROPS = frozenset({"NOT_DROPPED_YET", "CONSUMED", "NOT_SPECIFIED"})


def words_for(reason: str) -> str:
    """Plain words for a reason name: 'the firewall (nftables rule)', or the name itself."""
    return REASON_WORDS.get(reason, reason.replace("_", " ").lower())


def fate_words(hop: str, reason: str) -> str:
    """'dropped at virbr1 by the firewall (nftables rule)'."""
    words = words_for(reason)
    if words.startswith(("the ", "a ", "an ", "reverse", "too many")):
        return f"dropped at {hop} by {words}"
    return f"dropped at {hop}: {words}"
