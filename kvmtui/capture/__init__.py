"""Live capture of one VM NIC at every hop of its path (headless: no Textual here).

For the UI (and any client)::

    from kvmtui.capture.engine import CaptureSession, PROMISC_EXPLANATION
    from kvmtui.capture.bpf import check_filter          # validate a BPF input field
    from kvmtui.capture import dissect                   # dissect.preload() when a capture
                                                         # starts; dissect.dissect(bytes) in a
                                                         # worker for the detail pane

    s = CaptureSession(path, netns=None, bpf_filter=None, resolve=None,
                       networks=snap.networks, vm_by_mac={...}).start()   # CaptureError/BpfError
    batch = s.poll()     # every ~100 ms, cheap: CaptureBatch (frozen)
    batch.rows           # new PacketRow: .summary, .direction, .hops (Sighting: dev, role,
                         # time_ns, outgoing, data, frame), .offsets_us(), .nat (from_, to,
                         # conntrack), .missing, .stopped ("seen on vnet0, virbr0; never on wan0")
    batch.dhcp           # DhcpTransaction updated: .messages, .server (.name, .role), .outcome
    batch.hops           # HopStatus: dev, role, state, received, dropped (kernel), promisc,
                         # filter, message (PROMISC_EXPLANATION on the bridge hop)
    batch.events         # CaptureEvent: "tap vnet0 vanished ...", "tap is back as vnet5"
    batch.skipped        # frames read but not correlated (flood backlog, or paused)
    s.pause(); s.resume(); s.clear(); s.stop()

Modules: ``ring`` (TPACKET_V3 per hop), ``bpf`` (libpcap compile + SO_ATTACH_FILTER),
``decode`` (struct parse, never raises), ``correlate`` (rows across hops), ``dhcp``
(transactions, server named), ``pcapng`` (export), ``dissect`` (lazy scapy).
"""
