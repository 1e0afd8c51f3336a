"""kvmtui.lab."""
