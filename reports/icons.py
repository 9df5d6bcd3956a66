"""Making Data Count icons as small inline SVG, each with its words beside it (never colour alone).

The shapes follow NHS England's MDC icons: a circle ringed in the icon's colour. Variation icons carry
a short run of dots (flat for common cause, rising or falling for special cause) and the letter H or L
(the side of the signal); assurance icons carry P (consistently passing), F (consistently failing) or a
wavy line (hit and miss). Colours: grey for common cause and hit and miss, blue for improvement and
passing, orange for concern and failing, purple for "neither" (a KPI with no direction). Every icon is
an ``<svg role="img">`` with a ``<title>``, followed by its label as text, so print, a screen reader
and a colour-blind reader all get the words.
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

from outcomes.spc import ASSURANCE_LABELS, VARIATION_LABELS

GREY, BLUE, ORANGE, PURPLE = "#6f777b", "#005eb8", "#b35806", "#6a3d9a"
VARIATION_COLOURS = {"common": GREY, "improvement": BLUE, "concern": ORANGE, "neither": PURPLE}
ASSURANCE_COLOURS = {"pass": BLUE, "fail": ORANGE, "hit_and_miss": GREY}


def _ring(colour: str, inner: str, label: str, size: int) -> str:
    return (f'<svg class="mdc-icon" role="img" width="{size}" height="{size}" viewBox="0 0 32 32" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
            f'<circle cx="16" cy="16" r="14" fill="#ffffff" stroke="{colour}" stroke-width="3"/>{inner}</svg>')


def variation_svg(icon: str | None, size: int = 22) -> str:
    """The variation icon alone (an SVG string); '' for no icon."""
    if not icon:
        return ""
    kind, _, side = icon.partition("_")
    colour = VARIATION_COLOURS[kind]
    label = VARIATION_LABELS[icon]
    if kind == "common":
        dots = [(8, 18), (12, 18), (16, 18), (20, 18), (24, 18)]
        letter = ""
    else:
        rising = side == "high"
        dots = [(8, 21 if rising else 11), (12, 19 if rising else 13), (16, 17 if rising else 15),
                (20, 15 if rising else 17), (24, 13 if rising else 19)]
        letter = (f'<text x="16" y="{12 if rising else 27}" font-size="9" font-weight="bold" text-anchor="middle" '
                  f'font-family="DejaVu Sans, Arial, sans-serif" fill="{colour}">{"H" if rising else "L"}</text>')
    inner = "".join(f'<circle cx="{x}" cy="{y}" r="1.8" fill="{colour}"/>' for x, y in dots) + letter
    return _ring(colour, inner, label, size)


def assurance_svg(icon: str | None, size: int = 22) -> str:
    """The assurance icon alone (an SVG string); '' for no icon."""
    if not icon:
        return ""
    colour = ASSURANCE_COLOURS[icon]
    label = ASSURANCE_LABELS[icon]
    if icon == "hit_and_miss":
        inner = f'<path d="M7 17 q4.5 -7 9 0 t9 0" fill="none" stroke="{colour}" stroke-width="2.2"/>'
    else:
        inner = (f'<text x="16" y="21" font-size="13" font-weight="bold" text-anchor="middle" '
                 f'font-family="DejaVu Sans, Arial, sans-serif" fill="{colour}">{"P" if icon == "pass" else "F"}</text>')
    return _ring(colour, inner, label, size)


def variation_icon(icon: str | None, size: int = 22) -> Markup:
    """Icon and words, for a template: ``{{ variation_icon(row.variation_icon) }}``."""
    if not icon:
        return Markup('<span class="mdc mdc-none">no SPC (too few months)</span>')
    return Markup(f'<span class="mdc">{variation_svg(icon, size)}<span class="mdc-label">'
                  f'{escape(VARIATION_LABELS[icon])}</span></span>')


def assurance_icon(icon: str | None, size: int = 22) -> Markup:
    if not icon:
        return Markup('<span class="mdc mdc-none">no assurance</span>')
    return Markup(f'<span class="mdc">{assurance_svg(icon, size)}<span class="mdc-label">'
                  f'{escape(ASSURANCE_LABELS[icon])}</span></span>')


def icon_words(variation: str | None, assurance: str | None) -> tuple[str, str]:
    """The icons as words (for the XLSX and plain text)."""
    return (VARIATION_LABELS.get(variation or "", "no SPC (too few months)"),
            ASSURANCE_LABELS.get(assurance or "", "no assurance"))
