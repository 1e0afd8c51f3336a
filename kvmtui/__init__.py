"""kvmtui: a terminal network explorer for KVM hosts."""

__version__ = "0.1.0"
