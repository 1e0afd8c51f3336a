"""kvmtui.capture."""
