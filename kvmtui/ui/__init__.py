"""kvmtui.ui."""
