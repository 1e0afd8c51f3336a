"""kvmtui.commands."""
