"""Themes: the default, and a high-contrast "presenter" theme readable on a projector.

Widgets take every colour from theme variables ($primary, $accent, $warning, ...), so a theme
is all it takes to change them.
"""

from __future__ import annotations

from textual.theme import Theme

DEFAULT_THEME = "textual-dark"
PRESENTER_THEME = "presenter"

PRESENTER = Theme(
    name=PRESENTER_THEME,
    primary="#FFD700",
    secondary="#00E5FF",
    accent="#FFD700",
    warning="#FFA500",
    error="#FF4040",
    success="#00FF66",
    foreground="#FFFFFF",
    background="#000000",
    surface="#000000",
    panel="#202020",
    boost="#303030",
    dark=True,
    luminosity_spread=0.25,
    text_alpha=1.0,
    variables={
        "block-cursor-background": "#FFD700",
        "block-cursor-foreground": "#000000",
        "block-cursor-text-style": "bold",
        "footer-key-foreground": "#FFD700",
        "input-selection-background": "#FFD700 50%",
    },
)

THEMES = {"default": DEFAULT_THEME, PRESENTER_THEME: PRESENTER_THEME}


def theme_name(arg: str | None) -> str:
    """Map the --theme argument to a registered theme name (unknown -> ValueError)."""
    if arg is None or arg == "":
        return DEFAULT_THEME
    if arg in THEMES:
        return THEMES[arg]
    raise ValueError(f"unknown theme {arg!r} (choose: {', '.join(THEMES)})")
